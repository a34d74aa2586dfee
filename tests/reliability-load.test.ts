// The trace backend failing while the application is under load (requests 10 to 20 at a time):
// a slow backend (every upload answered 5 s late), and a backend that stops mid-load and comes
// back. Requests must never fail, their latency must not follow the backend's (a generous bound,
// 2 s, against an upload that takes 5 s or never comes), and every run must end up stored: by the
// SDK's own uploads, or by replaying what it saved under LANGSMITH_FAILED_TRACES_DIR.
// Latency figures are printed as diagnostics (docs/reliability.md quotes them), not asserted.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, test, type TestContext } from "node:test";
import { Client } from "langsmith";
import { percentile, replayFailedTraces, startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { startFaultBackend, type FaultBackend } from "./support/fault-backend.js";
import { captureConsole, completeTraces, isolateFromLangSmithEnv, trackUnhandledRejections, type ConsoleCapture } from "./support/reliability.js";
import { startTracedApp, type TracedApp } from "./support/traced-app.js";

isolateFromLangSmithEnv();

const RUNS = 2; // server run + "answer" (no model in these tests)
const LATENCY_BOUND_MS = 2000;

let dir: string;
let traces: TraceServerHandle | undefined;
let backend: FaultBackend | undefined;
let app: TracedApp | undefined;
let sdkOutput: ConsoleCapture;
let rejections: ReturnType<typeof trackUnhandledRejections>;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "reliability-load-"));
  sdkOutput = captureConsole();
  rejections = trackUnhandledRejections();
});

afterEach(async () => {
  sdkOutput.restore();
  rejections.stop();
  delete process.env.LANGSMITH_FAILED_TRACES_DIR;
  await app?.close();
  await backend?.close();
  await traces?.close();
  app = backend = traces = undefined;
  await rm(dir, { recursive: true, force: true });
});

interface Sample {
  phase: string;
  status: number;
  traceId: string;
  ms: number;
  /** Whether an upload was outstanding at the backend when the answer came. */
  uploadOutstanding: boolean;
}

/** Requests `concurrency` at a time until stopped; each sample is tagged with the phase it started in. */
function startLoad(url: string, concurrency: number, firstPhase: string, outstanding: () => boolean = () => false) {
  const samples: Sample[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let phase = firstPhase;
  let stopping = false;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (!stopping) {
      const started = { phase, at: performance.now(), i: n++ };
      let status = 0;
      let traceId = "";
      try {
        const response = await fetch(`${url}/chat?q=load-${started.i}`);
        await response.arrayBuffer();
        status = response.status;
        traceId = response.headers.get("x-trace-id") ?? "";
      } catch {
        // status 0: the request failed, which the test reports.
      }
      samples.push({ phase: started.phase, status, traceId, ms: performance.now() - started.at, uploadOutstanding: outstanding() });
      for (const w of waiters.filter((w) => samples.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  return {
    samples,
    setPhase(next: string) {
      phase = next;
    },
    /** Resolves once `more` further requests have completed. */
    more(more: number): Promise<void> {
      return new Promise((resolve) => {
        waiters.push({ count: samples.length + more, resolve });
      });
    },
    async stop(): Promise<Sample[]> {
      stopping = true;
      await Promise.all(workers);
      return samples;
    },
  };
}

/** Sends `count` requests, `concurrency` at a time, all in one phase. */
async function drive(url: string, count: number, concurrency: number, phase: string, outstanding?: () => boolean): Promise<Sample[]> {
  const load = startLoad(url, concurrency, phase, outstanding);
  await load.more(count);
  return load.stop();
}

function figures(samples: readonly Sample[]): { requests: number; failed: number; p50: number; p99: number; max: number } {
  const ms = samples.map((s) => s.ms);
  return {
    requests: samples.length,
    failed: samples.filter((s) => s.status !== 200).length,
    p50: Math.round(percentile(ms, 50)),
    p99: Math.round(percentile(ms, 99)),
    max: Math.round(Math.max(...ms)),
  };
}

function assertServed(t: TestContext, samples: readonly Sample[], phase: string): void {
  const inPhase = samples.filter((s) => s.phase === phase);
  const f = figures(inPhase);
  t.diagnostic(`${phase}: ${f.requests} requests, ${f.failed} failed, latency p50 ${f.p50} ms, p99 ${f.p99} ms, max ${f.max} ms`);
  assert.ok(inPhase.length > 0, `no request in phase ${phase}`);
  assert.deepEqual(inPhase.filter((s) => s.status !== 200 || !s.traceId), [], `${phase}: every request served with its trace id`);
  assert.ok(f.p99 < LATENCY_BOUND_MS, `${phase}: p99 ${f.p99} ms, the request path must not wait for the backend`);
}

/** Polls a condition (a file the SDK writes has no event to wait on), failing after `timeoutMs`. */
async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("a slow backend (every upload answered 5 s late): under load every request is served without waiting for it, and every trace arrives", async (t) => {
  traces = await startTraceServer({ port: 0, log: () => undefined });
  backend = await startFaultBackend({ target: traces.url, info: "pass", mode: "pass" });
  const client = new Client({ apiUrl: backend.url, apiKey: "local" });
  app = await startTracedApp({ client });
  const seen = backend.requests;
  const uploadOutstanding = (): boolean => seen.some((r) => r.path.startsWith("/runs") && r.status === undefined);

  // The first requests of a process pay for JIT compilation and new connections.
  const warmUp = await drive(app.url, 50, 20, "warm-up");
  const healthy = await drive(app.url, 200, 20, "healthy backend");
  await client.awaitPendingTraceBatches();
  backend.setMode({ delayMs: 5000 });
  const uploadsBefore = seen.filter((r) => r.path.startsWith("/runs")).length;
  // A first burst makes an upload; the measured load starts once the backend is holding it.
  const burst = await drive(app.url, 20, 20, "slow backend (5 s)");
  await backend.waitForRequests("/runs", uploadsBefore + 1);
  const slow = [...burst, ...(await drive(app.url, 400, 20, "slow backend (5 s)", uploadOutstanding))];
  const flushStart = performance.now();
  await client.awaitPendingTraceBatches();
  const flushMs = performance.now() - flushStart;

  assertServed(t, healthy, "healthy backend");
  assertServed(t, slow, "slow backend (5 s)");
  const overlapped = slow.filter((s) => s.uploadOutstanding).length;
  const slowUploads = seen.filter((r) => r.path.startsWith("/runs")).length - uploadsBefore;
  t.diagnostic(`slow backend: ${overlapped} of ${slow.length} requests answered while an upload was outstanding; ${slowUploads} uploads; the last was answered ${Math.round(flushMs)} ms after the last request`);
  assert.ok(overlapped > slow.length / 2, `the slow uploads overlapped the load (${overlapped} of ${slow.length})`);
  assert.deepEqual(warmUp.filter((s) => s.status !== 200), []);
  const ids = [...warmUp, ...healthy, ...slow].map((s) => s.traceId);
  assert.equal(completeTraces(traces.store, ids, RUNS).length, ids.length, "every trace complete");
  assert.deepEqual(sdkOutput.lines, [], "a slow backend is not an error");
  assert.deepEqual(rejections.seen, []);
});

test("the backend stops mid-load and comes back: no request fails or waits, and with the saved uploads replayed every trace is complete", async (t) => {
  const failedDir = path.join(dir, "failed-traces");
  process.env.LANGSMITH_FAILED_TRACES_DIR = failedDir; // read by the Client's constructor
  const dbPath = path.join(dir, "traces.sqlite");
  traces = await startTraceServer({ port: 0, dbPath, log: () => undefined });
  const { port, url } = traces;
  // One retry instead of four: the outage outlasts the retries sooner, the outcome is the same.
  const client = new Client({ apiUrl: url, apiKey: "local", callerOptions: { maxRetries: 1 } });
  app = await startTracedApp({ client });
  const saved = async (): Promise<string[]> => (await readdir(failedDir).catch(() => [])).filter((f) => f.endsWith(".json"));

  const load = startLoad(app.url, 10, "healthy");
  await load.more(150);
  load.setPhase("backend down");
  await traces.close();
  traces = undefined;
  await until("the SDK to give up on an upload and save it", async () => (await saved()).length >= 1);
  await load.more(150);
  traces = await startTraceServer({ port, dbPath, log: () => undefined });
  load.setPhase("backend restarted");
  await load.more(150);
  const samples = await load.stop();
  await client.awaitPendingTraceBatches();

  for (const phase of ["healthy", "backend down", "backend restarted"]) assertServed(t, samples, phase);
  const ids = samples.map((s) => s.traceId);
  const beforeReplay = completeTraces(traces.store, ids, RUNS).length;
  const files = await saved();
  const replay = await replayFailedTraces({ dir: failedDir, apiUrl: url, apiKey: "local" });
  const afterReplay = completeTraces(traces.store, ids, RUNS).length;
  t.diagnostic(`${ids.length} requests; ${beforeReplay} traces complete before the replay, ${afterReplay} after replaying ${replay.replayed.length} saved uploads`);
  assert.equal(replay.replayed.length, files.length);
  assert.deepEqual(replay.failed, []);
  assert.ok(beforeReplay < ids.length, "the outage outlasted the retries: some runs were only on disk");
  assert.equal(afterReplay, ids.length, "nothing lost after the replay");
  assert.deepEqual(rejections.seen, []);
});
