// startProcess keeps what a child prints for error reports (output()), but
// only the end of it: a chat service or worker that runs for days must not
// grow the launcher's memory with every line it ever wrote. Each line also
// reaches onOutput as it comes, which is how start.ts shows its children's
// warnings and shutdown reports.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OUTPUT_LIMIT, startProcess } from "../index.js";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "async-streaming-processes-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("output() keeps the last OUTPUT_LIMIT characters; onOutput gets every line, stdout and stderr, as it comes", async () => {
  // Four times the limit before the ready line, a report on stderr after it, then it waits for SIGTERM.
  const script = join(dir, "chatty.ts");
  await writeFile(
    script,
    [
      `for (let i = 0; i < 4; i++) console.log("x".repeat(${OUTPUT_LIMIT}));`,
      `console.log("chatty ready on queue-7");`,
      `console.error("a warning after ready");`,
      `const keepAlive = setInterval(() => undefined, 60_000);`,
      `process.once("SIGTERM", () => { console.error("[shutdown] done"); clearInterval(keepAlive); });`,
      "",
    ].join("\n"),
  );
  const lines: string[] = [];
  let warned: () => void = () => undefined;
  const warning = new Promise<void>((resolve) => {
    warned = resolve;
  });
  const started = await startProcess(script, {
    ready: /chatty ready on (\S+)/,
    onOutput: (line) => {
      lines.push(line);
      if (line === "a warning after ready") warned();
    },
  });
  assert.equal(started.ready, "queue-7");
  await warning;
  assert.equal(await started.stop(), 0);

  const output = started.output();
  assert.ok(output.length <= OUTPUT_LIMIT, `output() holds ${output.length} characters`);
  // Not assert.match: its failure message would quote all 64 KiB.
  // The stderr line written after the ready line may be read before the end of stdout, so it is not checked here.
  assert.ok(output.includes("chatty ready on queue-7\n") && output.endsWith("[shutdown] done\n"), `output() ends with ${JSON.stringify(output.slice(-200))}`);
  const long = "x".repeat(OUTPUT_LIMIT);
  assert.equal(lines.filter((line) => line === long).length, 4);
  // stdout and stderr are separate pipes: their relative order is not kept.
  assert.deepEqual(lines.filter((line) => line !== long).sort(), ["[shutdown] done", "a warning after ready", "chatty ready on queue-7"]);
});
