// The launcher keeps what a service prints for error reports (output()), but
// only the end of it: a service that runs for days must not grow the
// launcher's memory with every line it ever wrote.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { OUTPUT_LIMIT, spawnService } from "../launch.js";
import { stackEnv } from "./helpers.js";

let traceServer: TraceServerHandle;
let modelServer: ModelServerHandle;
let dir: string;

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  modelServer = await startModelServer({ port: 0 });
  dir = await mkdtemp(join(tmpdir(), "multi-service-launch-"));
});

after(async () => {
  await Promise.all([traceServer?.close(), modelServer?.close(), dir ? rm(dir, { recursive: true, force: true }) : undefined]);
});

test("output() keeps the last OUTPUT_LIMIT characters of a service's output, whole lines still reaching onOutput", async () => {
  // Loaded before the service (NODE_OPTIONS), standing in for a chatty dependency: four times the limit,
  // then a marker, on stdout like the "listening on" line, so the order of the three is fixed.
  const chatty = join(dir, "chatty.mjs");
  await writeFile(chatty, `for (let i = 0; i < 4; i++) console.log("x".repeat(${OUTPUT_LIMIT}));\nconsole.log("last chatty line");\n`);
  const lines: string[] = [];
  const retrieval = await spawnService("retrieval", {
    env: { ...stackEnv(traceServer, modelServer, "multi-service-launch"), RETRIEVAL_PORT: "0", NODE_OPTIONS: `--import ${chatty}` },
    onOutput: (_service, line) => lines.push(line),
  });
  try {
    const output = retrieval.output();
    assert.ok(output.length <= OUTPUT_LIMIT, `output() holds ${output.length} characters`);
    // Not assert.match: its failure message would quote all 64 KiB.
    assert.ok(/last chatty line\nretrieval listening on http:\/\/127\.0\.0\.1:\d+\n$/.test(output), `output() ends with ${JSON.stringify(output.slice(-120))}`);
    assert.equal(lines.filter((line) => line === "x".repeat(OUTPUT_LIMIT)).length, 4);
  } finally {
    assert.equal(await retrieval.stop(), 0, retrieval.output());
  }
});
