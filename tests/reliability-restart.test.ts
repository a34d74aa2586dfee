// The trace server going down and coming back on the same port, with a
// file-backed store: what happens to runs sent before, during and after the
// outage, and how LANGSMITH_FAILED_TRACES_DIR plus replayFailedTraces closes
// the gap when the outage outlasts the SDK's retries.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { Client } from "langsmith";
import { replayFailedTraces, startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import {
  absentTraces,
  captureConsole,
  completeTraces,
  get,
  isolateFromLangSmithEnv,
  trackUnhandledRejections,
  type ConsoleCapture,
} from "./support/reliability.js";
import { startTracedApp, type TracedApp } from "./support/traced-app.js";

isolateFromLangSmithEnv();

const RUNS = 2; // server run + "answer" (no model in these tests)

let dir: string;
let traces: TraceServerHandle | undefined;
let app: TracedApp | undefined;
let sdkOutput: ConsoleCapture;
let rejections: ReturnType<typeof trackUnhandledRejections>;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "reliability-restart-"));
  sdkOutput = captureConsole();
  rejections = trackUnhandledRejections();
});

afterEach(async () => {
  sdkOutput.restore();
  rejections.stop();
  delete process.env.LANGSMITH_FAILED_TRACES_DIR;
  await app?.close();
  await traces?.close();
  app = traces = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serve(url: string, count: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const served = await get(`${url}/chat?q=${label}-${i}`);
    assert.equal(served.status, 200, served.body);
    ids.push(served.traceId);
  }
  return ids;
}

/** fetch for the SDK that reports each refused connection to an ingest route. */
function observingFetch(): { fetch: typeof fetch; refused: Promise<void> } {
  let onRefused: () => void = () => undefined;
  const refused = new Promise<void>((resolve) => {
    onRefused = resolve;
  });
  const observed: typeof fetch = async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (error) {
      const url = input instanceof Request ? input.url : String(input);
      if ((error as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED" && url.includes("/runs/")) onRefused();
      throw error;
    }
  };
  return { fetch: observed, refused };
}

test("an outage shorter than the SDK's retries: runs sent during it are retried and delivered; the file-backed store kept the earlier ones", async () => {
  const dbPath = path.join(dir, "traces.sqlite");
  traces = await startTraceServer({ port: 0, dbPath, log: () => undefined });
  const { port } = traces;
  const observer = observingFetch();
  const client = new Client({ apiUrl: traces.url, apiKey: "local", fetchImplementation: observer.fetch });
  app = await startTracedApp({ client });

  const before = await serve(app.url, 3, "before");
  await client.awaitPendingTraceBatches();
  await traces.close();

  const during = await serve(app.url, 3, "during");
  await observer.refused; // the SDK has tried and failed at least once; it is now backing off
  traces = await startTraceServer({ port, dbPath, log: () => undefined });
  const afterwards = await serve(app.url, 3, "after");
  await client.awaitPendingTraceBatches();

  assert.equal(completeTraces(traces.store, before, RUNS).length, 3, "stored before the restart, still there");
  assert.equal(completeTraces(traces.store, during, RUNS).length, 3, "retried into the restarted server");
  assert.equal(completeTraces(traces.store, afterwards, RUNS).length, 3);
  assert.deepEqual(sdkOutput.lines, [], "retries that end in success are not logged");
  assert.deepEqual(rejections.seen, []);
});

test("an outage longer than the SDK's retries: runs sent during it are dropped, unless LANGSMITH_FAILED_TRACES_DIR saved them for replayFailedTraces", async () => {
  const failedDir = path.join(dir, "failed-traces");
  // Read by the Client's constructor.
  process.env.LANGSMITH_FAILED_TRACES_DIR = failedDir;
  const dbPath = path.join(dir, "traces.sqlite");
  traces = await startTraceServer({ port: 0, dbPath, log: () => undefined });
  const { port, url } = traces;
  // One retry instead of four keeps the test short; the outcome is the same, only later.
  const client = new Client({ apiUrl: url, apiKey: "local", callerOptions: { maxRetries: 1 } });
  app = await startTracedApp({ client });

  const before = await serve(app.url, 2, "before");
  await client.awaitPendingTraceBatches();
  await traces.close();

  const during = await serve(app.url, 3, "during");
  // Resolves once the SDK has given up on every batch (it is still down).
  await client.awaitPendingTraceBatches();
  const saved = (await readdir(failedDir)).filter((f) => f.endsWith(".json"));
  assert.ok(saved.length >= 1);
  const savedLines = sdkOutput.lines.filter((l) => l.startsWith("LangSmith trace upload failed; data saved to "));
  assert.equal(savedLines.length, saved.length, sdkOutput.lines.join("\n"));
  assert.equal(sdkOutput.lines.filter((l) => l === "fetch failed").length, saved.length, "one failure line per batch");

  traces = await startTraceServer({ port, dbPath, log: () => undefined });
  const afterwards = await serve(app.url, 2, "after");
  await client.awaitPendingTraceBatches();
  assert.equal(completeTraces(traces.store, before, RUNS).length, 2);
  assert.equal(completeTraces(traces.store, afterwards, RUNS).length, 2);
  assert.deepEqual(absentTraces(traces.store, during), during, "the SDK does not resend a batch it gave up on");

  const replay = await replayFailedTraces({ dir: failedDir, apiUrl: url, apiKey: "local" });
  assert.deepEqual(replay.failed, []);
  assert.deepEqual(replay.skipped, []);
  assert.equal(replay.replayed.length, saved.length);
  assert.equal(completeTraces(traces.store, during, RUNS).length, 3, "replayed from disk");
  assert.deepEqual(await readdir(failedDir), [], "replayed files are deleted");
  assert.deepEqual(await replayFailedTraces({ dir: failedDir, apiUrl: url, apiKey: "local" }), { replayed: [], failed: [], skipped: [] });
  assert.deepEqual(rejections.seen, []);
});

test("replayFailedTraces keeps what it cannot deliver: an unreachable backend skips the rest, a malformed file is reported", async () => {
  const failedDir = path.join(dir, "failed-traces");
  process.env.LANGSMITH_FAILED_TRACES_DIR = failedDir;
  traces = await startTraceServer({ port: 0, log: () => undefined });
  const { port, url } = traces;
  const client = new Client({ apiUrl: url, apiKey: "local", callerOptions: { maxRetries: 0 } });
  app = await startTracedApp({ client });
  await serve(app.url, 1, "warm-up");
  await client.awaitPendingTraceBatches();
  await traces.close();
  // Two flushes while down: two batches, two files.
  const first = await serve(app.url, 1, "first");
  await client.awaitPendingTraceBatches();
  const second = await serve(app.url, 1, "second");
  await client.awaitPendingTraceBatches();
  const during = [...first, ...second];
  const saved = (await readdir(failedDir)).sort();
  assert.ok(saved.length >= 2, `expected a file per outage batch, got ${saved.join(", ")}`);

  const down = await replayFailedTraces({ dir: failedDir, apiUrl: url, apiKey: "local" });
  assert.equal(down.failed.length, 1);
  assert.equal(down.failed[0]?.error, "ECONNREFUSED");
  assert.deepEqual(down.skipped, saved.slice(1));
  assert.deepEqual((await readdir(failedDir)).sort(), saved);

  traces = await startTraceServer({ port, log: () => undefined });
  await writeFile(path.join(failedDir, "trace_1_deadbeef.json"), '{"version":1,"endpoint":"../admin","headers":{},"body_base64":""}');
  const up = await replayFailedTraces({ dir: failedDir, apiUrl: traces.url, apiKey: "local" });
  assert.deepEqual(up.replayed, saved);
  assert.deepEqual(up.failed, [{ file: "trace_1_deadbeef.json", error: 'unexpected endpoint "../admin"' }]);
  assert.equal(completeTraces(traces.store, during, RUNS).length, during.length);
  assert.deepEqual(rejections.seen, []);
});
