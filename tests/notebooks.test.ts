// Every notebook executes top to bottom in real Jupyter with the tslab kernel.
// The notebooks share one local stack started here on ephemeral ports, so a
// developer's running `npm start` stack is neither used nor disturbed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startModelServer, startTraceServer } from "@tracing-patterns/setup";
import { listNotebooks, runNotebook } from "../setup/cli/lib/notebooks.js";

type Handle = { url: string; close(): Promise<void> };
let traceServer: Handle;
let modelServer: Handle;

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  modelServer = await startModelServer({ port: 0 });
});
after(async () => {
  await Promise.all([traceServer?.close(), modelServer?.close()]);
});

describe("notebooks", { concurrency: 1 }, () => {
  for (const path of listNotebooks()) {
    test(path.split("/").slice(-2).join("/"), async () => {
      const result = await runNotebook(path, {
        env: {
          TRACE_SERVER_URL: traceServer.url,
          MODEL_SERVER_URL: modelServer.url,
          // A developer's .env may hold real keys; the test run stays offline.
          LANGSMITH_API_KEY: "",
          OPENAI_API_KEY: "",
        },
      });
      assert.ok(
        result.ok,
        `${result.notebook} failed at cell ${result.failedCell} (executed copy: ${result.executedPath})\n${result.log}`,
      );
      assert.ok(result.verified > 0, `${result.notebook} ran but verified no trace`);
      // The helpers that verify a trace have the trace doctor examine it too (setup/src/notebook/healthy.ts).
      assert.ok(result.doctored > 0, `${result.notebook} verified traces that the trace doctor never examined`);
    });
  }
});
