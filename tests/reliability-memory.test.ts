// 2000 traced requests while the trace backend hangs: the SDK holds every run
// (nothing is dropped for lack of room under its default 1 GiB cap) and
// delivers all of them once the hang ends. Heap figures are reported as
// diagnostics, not asserted: they describe this machine, not a property.
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { test } from "node:test";
import { Client } from "langsmith";
import { flushTraces, startModelServer, startTraceServer } from "@tracing-patterns/setup";
import { startFaultBackend } from "./support/fault-backend.js";
import { captureConsole, completeTraces, get, isolateFromLangSmithEnv, trackUnhandledRejections } from "./support/reliability.js";
import { startTracedApp } from "./support/traced-app.js";

isolateFromLangSmithEnv();
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const REQUESTS = 2000;
const CONCURRENCY = 10;
const RUNS = 3; // server run, "answer", ChatOpenAI

function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

test(`${REQUESTS} requests against a hung backend: all served, all runs kept, all delivered once it answers again`, { timeout: 300_000 }, async (t) => {
  const sdkOutput = captureConsole();
  const rejections = trackUnhandledRejections();
  const model = await startModelServer({ port: 0 });
  const traces = await startTraceServer({ port: 0, log: () => undefined });
  const backend = await startFaultBackend({ target: traces.url, mode: "pass", info: "pass" });
  const client = new Client({ apiUrl: backend.url, apiKey: "local" });
  const app = await startTracedApp({ client, modelUrl: model.url });
  try {
    for (let i = 0; i < 20; i++) await get(`${app.url}/chat?q=warm-up-${i}`);
    assert.equal((await flushTraces({ client, timeoutMs: 30_000 })).flushed, true);
    const baseline = heapMiB();

    backend.setMode("hang");
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          const served = await get(`${app.url}/chat?q=request-${next++}`);
          assert.equal(served.status, 200, served.body);
          ids.push(served.traceId);
        }
      }),
    );
    assert.equal(ids.length, REQUESTS);
    assert.ok(backend.held() >= 1, "the backend was still holding uploads when the last request was answered");
    const hung = await flushTraces({ client, timeoutMs: 0 });
    const heldWhileHung = backend.held();
    const whileHung = heapMiB();
    assert.equal(traces.store.counts().runs, 20 * RUNS, "only the warm-up runs are stored");

    backend.setMode("pass");
    backend.releaseHeld();
    const delivered = await flushTraces({ client, timeoutMs: 120_000 });
    assert.equal(delivered.flushed, true, JSON.stringify(delivered));
    assert.equal(completeTraces(traces.store, ids, RUNS).length, REQUESTS, "every run of every request arrived");
    assert.deepEqual(sdkOutput.lines.filter((l) => /size limit|Dropping run/.test(l)), [], "nothing dropped for lack of room");
    const afterDelivery = heapMiB();
    const uploads = backend.requests.filter((r) => r.path === "/runs/multipart").length;

    t.diagnostic(
      `heap after GC: ${baseline.toFixed(1)} MiB before; ${whileHung.toFixed(1)} MiB with ${REQUESTS} requests' runs held ` +
        `(+${(((whileHung - baseline) * 1024) / REQUESTS).toFixed(1)} KiB per request); ${afterDelivery.toFixed(1)} MiB after delivery`,
    );
    t.diagnostic(
      `right after the last request: ${hung.pending?.queuedBytes ?? "?"} bytes of runs queued, ${hung.pending?.pendingSends ?? "?"} uploads pending ` +
        `(${heldWhileHung} of them held by the backend); ${uploads} multipart uploads in all; ` +
        `delivered ${REQUESTS * RUNS} runs in ${delivered.elapsedMs} ms after the hang ended; SDK log lines: ${JSON.stringify(sdkOutput.lines)}`,
    );
    assert.deepEqual(rejections.seen, []);
  } finally {
    sdkOutput.restore();
    rejections.stop();
    await app.close();
    await backend.close();
    await traces.close();
    await model.close();
  }
});
