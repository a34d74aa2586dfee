// A traced express app (the copyable middleware, a traceable child, a real
// ChatOpenAI call) keeps serving while the trace backend hangs or fails, and
// what the langsmith SDK 0.12 then does with the runs: one backend mode per
// test. The backend is a fault-injecting stand-in in front of the real local
// trace server, so "delivered" means stored by the trace server.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { Client } from "langsmith";
import {
  flushTraces,
  startModelServer,
  startTraceServer,
  type ModelServerHandle,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { startFaultBackend, type FaultBackend, type FaultMode } from "./support/fault-backend.js";
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

// Server run, "answer" and the ChatOpenAI run.
const RUNS_WITH_MODEL = 3;
const RUNS_WITHOUT_MODEL = 2;

let model: ModelServerHandle;
let traces: TraceServerHandle | undefined;
let backend: FaultBackend | undefined;
let app: TracedApp | undefined;
let sdkOutput: ConsoleCapture;
let rejections: ReturnType<typeof trackUnhandledRejections>;

before(async () => {
  model = await startModelServer({ port: 0 });
});
after(() => model.close());

beforeEach(() => {
  sdkOutput = captureConsole();
  rejections = trackUnhandledRejections();
});

afterEach(async () => {
  sdkOutput.restore();
  rejections.stop();
  await app?.close();
  await backend?.close();
  await traces?.close();
  app = backend = traces = undefined;
});

/** A trace server behind a fault backend in `mode`; /info is answered by the real server. */
async function stack(mode: FaultMode, clientConfig: ConstructorParameters<typeof Client>[0] = {}, withModel = true) {
  traces = await startTraceServer({ port: 0, log: () => undefined });
  backend = await startFaultBackend({ target: traces.url, mode, info: "pass" });
  const client = new Client({ apiUrl: backend.url, apiKey: "local", ...clientConfig });
  app = await startTracedApp({ client, modelUrl: withModel ? model.url : undefined });
  return { traces, backend, client, app };
}

async function serve(url: string, count: number, path = "/chat"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const served = await get(`${url}${path}?q=request-${i}`);
    assert.equal(served.status, 200, served.body);
    assert.match(served.traceId, /^[0-9a-f-]{36}$/);
    ids.push(served.traceId);
  }
  return ids;
}

const multipart = (b: FaultBackend) => b.requests.filter((r) => r.path === "/runs/multipart");

test("hung backend: requests are served while it holds the SDK's uploads, flushTraces returns at its deadline, and a hang that ends in a reset loses nothing", async () => {
  const { traces, backend, client, app } = await stack("hang");
  const ids = await serve(app.url, 1);
  // From here on the SDK is waiting for an answer that never comes.
  await backend.waitForRequests("/runs/multipart", 1);
  ids.push(...(await serve(app.url, 20)));
  assert.ok(backend.held() >= 1, "the backend still holds an upload after those 20 requests were answered");
  assert.equal(traces.store.counts().runs, 0);

  // awaitPendingTraceBatches() has not resolved by the deadline: a shutdown that awaits it waits
  // as long as the backend hangs (up to timeout_ms, 90 s by default, per wave of 5 uploads).
  const flush = await flushTraces({ client, timeoutMs: 200 });
  assert.equal(flush.flushed, false);
  assert.ok(flush.pending !== undefined && flush.pending.pendingSends >= 1, JSON.stringify(flush));
  assert.deepEqual(flush.errors, []);

  // A reset (not a timeout) is retried by the SDK, so everything arrives once the backend is back.
  backend.setMode("pass");
  backend.releaseHeld();
  const after = await flushTraces({ client, timeoutMs: 60_000 });
  assert.equal(after.flushed, true, JSON.stringify(after));
  assert.deepEqual(after.pending, { queuedBytes: 0, pendingSends: 0 });
  assert.equal(completeTraces(traces.store, ids, RUNS_WITH_MODEL).length, ids.length);
  assert.deepEqual(sdkOutput.lines, [], "a retried upload that succeeds is not logged");
  assert.deepEqual(rejections.seen, []);
});

test("hung backend with the SDK's blockOnRootRunFinalization (LANGSMITH_TRACING_BACKGROUND=false): requests are still not held up", async () => {
  const { backend, client, app } = await stack("hang", { blockOnRootRunFinalization: true });
  await serve(app.url, 1);
  await backend.waitForRequests("/runs/multipart", 1);
  await serve(app.url, 5);
  assert.ok(backend.held() >= 1);
  // The middleware ends its root run after the response and does not await the upload.
  backend.setMode("pass");
  backend.releaseHeld();
  assert.equal((await flushTraces({ client, timeoutMs: 60_000 })).flushed, true);
  assert.deepEqual(rejections.seen, []);
});

test("hung backend and a client timeout_ms: each upload is abandoned at the timeout, never retried, logged once, and its runs are lost", async () => {
  const { traces, backend, client, app } = await stack("hang", { timeout_ms: 300 }, false);
  const lost = await serve(app.url, 5);
  // Bounded by timeout_ms per wave of uploads, not by the backend.
  await client.awaitPendingTraceBatches();
  const uploads = multipart(backend).length;
  assert.ok(uploads >= 1);
  const timeouts = sdkOutput.lines.filter((l) => l.includes("aborted due to timeout"));
  assert.equal(timeouts.length, uploads, `one attempt and one log line per batch:\n${sdkOutput.lines.join("\n")}`);
  assert.equal(sdkOutput.lines.length, uploads);

  // The same client recovers as soon as the backend answers again.
  backend.setMode("pass");
  const later = await serve(app.url, 3);
  await client.awaitPendingTraceBatches();
  assert.equal(completeTraces(traces.store, later, RUNS_WITHOUT_MODEL).length, 3);
  assert.deepEqual(absentTraces(traces.store, lost), lost);
  assert.deepEqual(rejections.seen, []);
});

test("backend answering 500: requests are served; each batch is tried maxRetries + 1 times, then dropped with one log line", async () => {
  const { traces, backend, client, app } = await stack({ status: 500 }, { callerOptions: { maxRetries: 2 } });
  const ids = await serve(app.url, 5);
  await client.awaitPendingTraceBatches();
  const failures = sdkOutput.lines.filter((l) => l.includes("Received status [500]"));
  assert.ok(failures.length >= 1);
  assert.equal(multipart(backend).length, 3 * failures.length, "1 attempt + 2 retries per batch");
  assert.ok(multipart(backend).every((r) => r.status === 500));
  assert.equal(sdkOutput.lines.length, failures.length, sdkOutput.lines.join("\n"));
  assert.deepEqual(absentTraces(traces.store, ids), ids);
  assert.deepEqual(rejections.seen, []);
});

for (const fault of [
  { status: 500, retryAfterSeconds: undefined },
  { status: 503, retryAfterSeconds: undefined },
  { status: 429, retryAfterSeconds: 1 },
]) {
  test(`backend answering ${fault.status} twice, then recovering: the SDK's retries deliver every run, silently`, async () => {
    const { traces, backend, client, app } = await stack({ ...fault, times: 2 });
    const ids = await serve(app.url, 5);
    await client.awaitPendingTraceBatches();
    const statuses = multipart(backend).map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 2), [fault.status, fault.status]);
    assert.ok(statuses.slice(2).every((s) => s === 202), JSON.stringify(statuses));
    assert.equal(completeTraces(traces.store, ids, RUNS_WITH_MODEL).length, ids.length);
    assert.deepEqual(sdkOutput.lines, []);
    assert.deepEqual(rejections.seen, []);
  });
}

test("413 from the local trace server for an oversized run: the request is served, the batch (the creates) is not retried, the updates and later runs arrive", async () => {
  const serverLog: string[] = [];
  traces = await startTraceServer({ port: 0, maxBodyBytes: 256 * 1024, log: (line) => serverLog.push(line) });
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  app = await startTracedApp({ client });

  const big = await get(`${app.url}/chat?q=big&pad=${600 * 1024}`);
  assert.equal(big.status, 200);
  await client.awaitPendingTraceBatches();
  const refused = serverLog.filter((l) => /POST \/runs\/multipart 413/.test(l));
  assert.equal(refused.length, 1, serverLog.join("\n"));
  assert.deepEqual(
    sdkOutput.lines.filter((l) => l.includes("[413]")).length,
    1,
    `one log line for the refused batch:\n${sdkOutput.lines.join("\n")}`,
  );
  // The refused batch held the runs' creates; their updates came in a later batch, so the runs
  // exist, ended, with outputs but without the inputs only the creates carry.
  const answer = traces.store.getTraceRuns(big.traceId).find((r) => r.name === "answer");
  assert.ok(answer?.end_time, "the answer run arrived through its update");
  assert.deepEqual(answer.inputs, {});
  assert.match(JSON.stringify(answer.outputs), /echo: big/);

  const later = await serve(app.url, 3);
  await client.awaitPendingTraceBatches();
  assert.equal(completeTraces(traces.store, later, RUNS_WITHOUT_MODEL).length, 3);
  assert.equal(serverLog.filter((l) => / 413 /.test(l)).length, 1, "no retry of the refused batch");
  assert.deepEqual(rejections.seen, []);
});
