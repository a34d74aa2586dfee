// `npm run notebooks:outputs` copies an executed notebook's outputs into the committed one:
// cleaned for reading, and refused when they hold a secret or an absolute path of this machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveOutputs, withOutputs, type Notebook, type OutputContext } from "../setup/cli/lib/notebook-outputs.js";

const context: OutputContext = { root: "/srv/repo", secrets: ["lsv2_pt_0123456789abcdef0123456789abcdef_0123456789"], privatePaths: ["/home/dev/", "/tmp/"] };

function source(): Notebook {
  return {
    metadata: { kernelspec: { name: "tslab" } },
    nbformat: 4,
    nbformat_minor: 5,
    cells: [
      { cell_type: "markdown", id: "m1", metadata: {}, source: ["# Title"] },
      { cell_type: "code", id: "c1", metadata: {}, execution_count: null, outputs: [], source: ["console.log(1);"] },
    ],
  };
}

function executed(outputs: Array<Record<string, unknown>>): Notebook {
  const nb = source();
  const cell = nb.cells[1];
  assert.ok(cell);
  Object.assign(cell, { execution_count: 3, metadata: { execution: { "iopub.status.busy": "2026-01-01T00:00:00Z" } }, outputs });
  return nb;
}

const stream = (text: string | string[]): Record<string, unknown> => ({ output_type: "stream", name: "stdout", text });

test("outputs are copied cleaned: ANSI removed, repository paths relative, stream messages merged, timings dropped", () => {
  const ran = executed([
    stream("\u001b[32mok\u001b[39m  x-trace-id\n"),
    stream(["loaded /srv/repo/examples/async-streaming/server.ts\n"]),
    { output_type: "display_data", metadata: {}, data: { "text/html": "<div>tree</div>" } },
    stream("after\n"),
  ]);
  const { notebook, findings } = withOutputs(source(), ran, context);
  assert.deepEqual(findings, []);
  const cell = notebook.cells[1];
  assert.equal(cell?.execution_count, 3);
  assert.deepEqual(cell?.metadata, {});
  assert.deepEqual(cell?.source, ["console.log(1);"]);
  assert.deepEqual(cell?.outputs, [
    { output_type: "stream", name: "stdout", text: ["ok  x-trace-id\n", "loaded examples/async-streaming/server.ts\n"] },
    { output_type: "display_data", metadata: {}, data: { "text/html": ["<div>tree</div>"] } },
    { output_type: "stream", name: "stdout", text: ["after\n"] },
  ]);
  assert.deepEqual(notebook.metadata, { kernelspec: { name: "tslab" } });
});

test("the run's own stack origins are shown as the default ones; other ports stay as they were", () => {
  const ran = executed([stream("trace viewer http://127.0.0.1:40123/traces/x, model http://127.0.0.1:40124/v1, gateway http://127.0.0.1:40999\n")]);
  const { notebook } = withOutputs(source(), ran, { ...context, origins: { "http://127.0.0.1:40123": "http://127.0.0.1:1984", "http://127.0.0.1:40124": "http://127.0.0.1:1985" } });
  assert.deepEqual(notebook.cells[1]?.outputs?.[0]?.text, ["trace viewer http://127.0.0.1:1984/traces/x, model http://127.0.0.1:1985/v1, gateway http://127.0.0.1:40999\n"]);
});

test("a secret, an API-key shape or a machine path in an output is refused, naming the cell", () => {
  const cases: Array<[string, RegExp]> = [
    [`key ${context.secrets[0]}`, /cell 1: an API key from the environment/],
    ["OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz123456", /cell 1: an OpenAI-style API key/],
    ["see /home/dev/.cache/x", /cell 1: an absolute path under \/home\/dev\//],
    ["wrote /tmp/langsmith-failed/batch.json", /cell 1: an absolute path under \/tmp\//],
    ["root is /srv/repo", /cell 1: the repository's absolute path \/srv\/repo/],
  ];
  for (const [text, expected] of cases) {
    const { findings } = withOutputs(source(), executed([stream(text)]), context);
    assert.ok(findings.some((f) => expected.test(f)), `${text}: ${findings.join("; ")}`);
  }
});

test("an executed notebook whose cells differ from the source is refused", () => {
  const ran = executed([]);
  const cell = ran.cells[1];
  assert.ok(cell);
  cell.source = ["console.log(2);"];
  assert.deepEqual(withOutputs(source(), ran, context).findings, ["cell 1: differs between the source and the executed notebook"]);
  const shorter = { ...ran, cells: ran.cells.slice(0, 1) };
  assert.match(withOutputs(source(), shorter, context).findings[0] ?? "", /has 1 cells, the source 2/);
});

test("saveOutputs writes the source notebook only when nothing was found", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nb-outputs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, "a.ipynb");
  const ran = join(dir, "a.executed.ipynb");
  writeFileSync(src, JSON.stringify(source()));
  writeFileSync(ran, JSON.stringify(executed([stream("fine\n")])));
  const ok = saveOutputs(src, ran, context);
  assert.equal(ok.saved, true);
  const saved = readFileSync(src, "utf8");
  assert.ok(saved.endsWith("}\n"));
  assert.deepEqual((JSON.parse(saved) as Notebook).cells[1]?.outputs, [{ output_type: "stream", name: "stdout", text: ["fine\n"] }]);

  writeFileSync(ran, JSON.stringify(executed([stream("/home/dev/secret\n")])));
  const refused = saveOutputs(src, ran, context);
  assert.equal(refused.saved, false);
  assert.equal(readFileSync(src, "utf8"), saved, "the committed notebook is left as it was");
});
