// The traced app as a real process: it stays up with its trace backend down,
// and installGracefulShutdown lets it exit on SIGTERM within its budget, after
// finishing in-flight requests and flushing what the backend will take.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterEach, test } from "node:test";
import { Client } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import {
  flushTraces,
  installGracefulShutdown,
  readTrace,
  shutdownBudget,
  startModelServer,
  startTraceServer,
  type ShutdownResult,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { closedPort, completeTraces, get, isolateFromLangSmithEnv } from "./support/reliability.js";
import { startTracedApp } from "./support/traced-app.js";

isolateFromLangSmithEnv();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const appScript = path.join(root, "tests", "support", "traced-app.ts");
const cleanup: Array<() => Promise<unknown> | void> = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Lines {
  all: string[];
  /** Resolves with the first line (seen or to come) matching `pattern`. */
  next(pattern: RegExp): Promise<string>;
}

function lines(stream: Readable): Lines {
  const all: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      all.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  return {
    all,
    next(pattern) {
      const seen = all.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
  };
}

interface AppProcess {
  child: ChildProcess;
  url: string;
  stdout: Lines;
  stderr: Lines;
}

async function spawnApp(env: Record<string, string>): Promise<AppProcess> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LANGSMITH_") && !k.startsWith("LANGCHAIN_")));
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", appScript], {
    cwd: root,
    env: { ...clean, NODE_NO_WARNINGS: "1", LANGSMITH_TRACING: "true", LANGSMITH_API_KEY: "local", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const stdout = lines(child.stdout as Readable);
  const stderr = lines(child.stderr as Readable);
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`the app exited with ${String(code)} before listening:\n${stderr.all.join("\n")}`);
  });
  const line = await Promise.race([stdout.next(/^listening on /), exited]);
  exited.catch(() => undefined);
  return { child, url: line.slice("listening on ".length), stdout, stderr };
}

/** A request on a connection of its own (fetch would reuse a kept-alive one). */
function newConnection(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(`${url}/chat?q=late`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once("error", reject);
  });
}

/** A dependency for GET /slow that answers only once released, so a request stays in flight. */
async function gatedDependency(): Promise<{ url: string; called: Promise<void>; release(): void }> {
  let arrived: () => void = () => undefined;
  const called = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const answering = new Set<Promise<unknown>>();
  const server = http.createServer((_req, res) => {
    arrived();
    answering.add(once(res, "close"));
    void released.then(() => res.end("dependency answered"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(async () => {
    // Answered before closing, so an app handler still waiting on it (its request cut off) ends
    // normally instead of failing in the next test.
    release();
    await Promise.all(answering);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, called, release };
}

/**
 * The trace server behind a gate that holds run uploads until released (other requests, such as
 * GET /info, pass at once): a backend slow to accept uploads, whose slowness the test controls.
 */
async function gatedTraceBackend(target: string): Promise<{ url: string; held: Promise<void>; release(): void }> {
  let arrived: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const server = http.createServer((req, res) => {
    const forward = (): void => {
      const upstream = http.request(new URL(req.url ?? "/", target), { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.once("error", (error) => res.destroy(error));
      req.pipe(upstream);
    };
    if (req.method === "POST" && req.url?.startsWith("/runs")) {
      arrived();
      void released.then(forward);
    } else {
      forward();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(() => {
    release();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held, release };
}

/** GET /slow on a connection of its own; resolves once the server cuts it off, rejects if it answers. */
function cutOffRequest(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/slow`, { agent: false }, (res) => reject(new Error(`answered ${String(res.statusCode)}, expected to be cut off`)))
      .once("error", () => resolve());
  });
}

/**
 * Lets a cut-off request's handler finish (its dependency answers) and waits until the handler's
 * child run has ended and is stored: an upload of it still retrying after the trace server has
 * closed would print failures and hold this process for the SDK's retries.
 */
async function finishCutOffHandler(dependency: { release(): void }, traceId: string, traces: TraceServerHandle): Promise<void> {
  dependency.release();
  const runs = await readTrace(traceId, { client: new Client({ apiUrl: traces.url, apiKey: "local" }), expectRuns: 2, settleMs: 0 });
  assert.deepEqual(runs.map((run) => [run.name, Boolean(run.end_time)]).sort(), [["GET /slow", true], ["call_dependency", true]]);
}

async function shutdownResult(app: AppProcess): Promise<{ code: number | null; result: ShutdownResult }> {
  const [code] = (await once(app.child, "exit")) as [number | null];
  const line = app.stdout.all.find((l) => l.startsWith("shutdown-result "));
  assert.ok(line, `no shutdown result; stderr:\n${app.stderr.all.join("\n")}`);
  return { code, result: JSON.parse(line.slice("shutdown-result ".length)) as ShutdownResult };
}

test("trace backend down (closed port): the app process serves every request, stays alive, and SIGTERM exits within the shutdown budget", { timeout: 60_000 }, async () => {
  const model = await startModelServer({ port: 0 });
  cleanup.push(() => model.close());
  const app = await spawnApp({
    LANGSMITH_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
    TRACED_APP_MODEL_URL: model.url,
    TRACED_APP_SHUTDOWN_MS: "500",
  });
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const served = await get(`${app.url}/chat?q=${i}`);
    assert.equal(served.status, 200, served.body);
    assert.match(JSON.parse(served.body).answer as string, /^\[local-model\]/);
    ids.push(served.traceId);
  }
  assert.equal(new Set(ids).size, 20, "every request got its own trace id");
  assert.equal(app.child.exitCode, null, "still running");

  app.child.kill("SIGTERM");
  const { code, result } = await shutdownResult(app);
  assert.equal(code, 0);
  assert.equal(result.drained, true);
  assert.equal(result.flush.flushed, false, "nothing can be delivered to a closed port");
  assert.ok((result.flush.pending?.queuedBytes ?? 0) > 0, JSON.stringify(result.flush));
  const unexpected = app.stderr.all.filter((l) => l && !l.startsWith("[shutdown] ") && !/LANGSMITH|fetch failed/.test(l));
  assert.deepEqual(unexpected, [], "no crash, stack trace or unhandled rejection");
  assert.ok(app.stderr.all.length < ids.length, `no line per request:\n${app.stderr.all.join("\n")}`);
  assert.match(app.stderr.all.join("\n"), /traces NOT flushed after \d+ ms \(\d+ bytes of runs queued, \d+ uploads pending\), they are lost on exit/);
});

test("SIGTERM with a healthy backend: an in-flight request finishes, new connections are refused, every trace is flushed before exit", { timeout: 60_000 }, async () => {
  const traces: TraceServerHandle = await startTraceServer({ port: 0, log: () => undefined });
  cleanup.push(() => traces.close());
  const dependency = await gatedDependency();
  const app = await spawnApp({
    LANGSMITH_ENDPOINT: traces.url,
    TRACED_APP_DEPENDENCY_URL: dependency.url,
    TRACED_APP_SHUTDOWN_MS: "20000",
  });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await get(`${app.url}/chat?q=${i}`)).traceId);
  const slow = get(`${app.url}/slow`);
  await dependency.called;

  app.child.kill("SIGTERM");
  await app.stderr.next(/^\[shutdown\] SIGTERM: not accepting connections; finishing 1 in-flight request/);
  await assert.rejects(newConnection(app.url), { code: "ECONNREFUSED" });
  dependency.release();
  const inFlight = await slow;
  assert.equal(inFlight.status, 200);
  assert.match(inFlight.body, /dependency answered/);

  const { code, result } = await shutdownResult(app);
  assert.equal(code, 0);
  assert.equal(result.drained, true);
  assert.equal(result.flush.flushed, true, JSON.stringify(result.flush));
  assert.deepEqual(result.flush.pending, { queuedBytes: 0, pendingSends: 0 });
  assert.equal(completeTraces(traces.store, [...ids, inFlight.traceId], 2).length, 4, "the in-flight request's trace too");
  const names = traces.store.getTraceRuns(inFlight.traceId).map((r) => r.name);
  assert.deepEqual(names, ["GET /slow", "call_dependency"]);
});

test("flushTraces: true at once with a healthy backend; rejects a deadline that is not a finite number", async () => {
  const traces = await startTraceServer({ port: 0, log: () => undefined });
  cleanup.push(() => traces.close());
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  const app = await startTracedApp({ client });
  cleanup.push(() => app.close());
  const { traceId } = await get(`${app.url}/chat?q=flush`);
  const result = await flushTraces({ client, timeoutMs: 30_000 });
  assert.equal(result.flushed, true);
  assert.deepEqual(result.pending, { queuedBytes: 0, pendingSends: 0 });
  assert.ok(result.clients >= 1);
  assert.equal(completeTraces(traces.store, [traceId], 2).length, 1);
  await assert.rejects(flushTraces({ client, timeoutMs: Number.POSITIVE_INFINITY }), RangeError);
  await assert.rejects(flushTraces({ client, timeoutMs: -1 }), RangeError);
});

test("installGracefulShutdown: shutdown() without a signal closes the in-flight request's kept-alive connection, reports to exit once, and uninstalls", async () => {
  const before = process.listenerCount("SIGTERM");
  const traces = await startTraceServer({ port: 0, log: () => undefined });
  cleanup.push(() => traces.close());
  const dependency = await gatedDependency();
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  const app = await startTracedApp({ client, dependencyUrl: dependency.url });
  cleanup.push(() => (app.server.listening ? app.close() : undefined));
  const exits: Array<[number, ShutdownResult | undefined]> = [];
  const logged: string[] = [];
  const handle = installGracefulShutdown(app.server, {
    timeoutMs: 30_000,
    client,
    log: (line) => logged.push(line),
    exit: (code, result) => exits.push([code, result]),
  });
  assert.equal(process.listenerCount("SIGTERM"), before + 1);

  // fetch keeps connections alive; the one carrying this request must not outlive it.
  const slow = fetch(`${app.url}/slow`);
  await dependency.called;
  const shutdowns = Promise.all([handle.shutdown("test"), handle.shutdown("again")]);
  assert.equal(app.server.listening, false);
  dependency.release();
  const response = await slow;
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("connection"), "close");
  await response.text();

  const [first, second] = await shutdowns;
  assert.equal(first, second, "one shutdown, shared");
  assert.equal(first.drained, true);
  assert.equal(first.flush.flushed, true);
  assert.equal(completeTraces(traces.store, [response.headers.get("x-trace-id") ?? ""], 2).length, 1);
  assert.deepEqual(exits, [[0, first]]);
  assert.match(logged[0] ?? "", /^\[shutdown\] test: not accepting connections; finishing 1 in-flight request/);
  assert.match(logged[1] ?? "", /^\[shutdown\] in-flight requests finished; traces flushed in \d+ ms$/);
  assert.equal(process.listenerCount("SIGTERM"), before, "uninstalled after the shutdown");
});

test("installGracefulShutdown keeps a flush reserve: a request that never finishes is cut off at timeoutMs - flushReserveMs, and the runs a slow backend was still taking, the cut-off request's included, are flushed before exit", async () => {
  const traces = await startTraceServer({ port: 0, log: () => undefined });
  cleanup.push(() => traces.close());
  const backend = await gatedTraceBackend(traces.url);
  const dependency = await gatedDependency();
  const client = new Client({ apiUrl: backend.url, apiKey: "local" });
  const ended: RunTree[] = [];
  const app = await startTracedApp({ client, dependencyUrl: dependency.url, onRunEnd: (run) => ended.push(run) });
  cleanup.push(() => (app.server.listening ? app.close() : undefined));
  const exits: Array<[number, ShutdownResult | undefined]> = [];
  const logged: string[] = [];
  const handle = installGracefulShutdown(app.server, {
    timeoutMs: 4_000,
    flushReserveMs: 3_000,
    client,
    signals: [],
    log: (line) => logged.push(line),
    exit: (code, result) => exits.push([code, result]),
  });

  const earlier = await get(`${app.url}/chat?q=earlier`);
  assert.equal(earlier.status, 200);
  // Its runs are on their way, and the backend takes them only once the drain has given up.
  await backend.held;
  const cutOff = cutOffRequest(app.url);
  void cutOff.then(backend.release);
  await dependency.called;

  const result = await handle.shutdown("test");
  await cutOff;
  assert.equal(result.drained, false, "the hung request was cut off");
  assert.equal(result.flush.flushed, true, JSON.stringify(result));
  assert.deepEqual(result.flush.pending, { queuedBytes: 0, pendingSends: 0 });
  assert.deepEqual(exits, [[0, result]]);
  assert.equal(completeTraces(traces.store, [earlier.traceId], 2).length, 1, "the earlier request's trace is stored, complete");
  const slow = ended.find((run) => run.name === "GET /slow");
  assert.ok(slow, `the cut-off request's run ended; ended: ${ended.map((r) => r.name).join(", ")}`);
  const stored = traces.store.getTraceRuns(slow.trace_id).find((run) => run.id === slow.id);
  assert.equal(stored?.error, "client disconnected");
  assert.ok(stored.end_time, "stored with its end");
  assert.match(logged[0] ?? "", /^\[shutdown\] test: not accepting connections; finishing 1 in-flight request\(s\) within 1000 ms, then flushing traces \(budget 4000 ms, at least 3000 ms for the flush\)$/);
  assert.match(logged[1] ?? "", /^\[shutdown\] in-flight requests cut off at the deadline; traces flushed in \d+ ms$/);
  await finishCutOffHandler(dependency, slow.trace_id, traces);
});

test("installGracefulShutdown with a flush reserve larger than the budget: nothing is drained, the in-flight request is cut off at once and its run is flushed", async () => {
  const traces = await startTraceServer({ port: 0, log: () => undefined });
  cleanup.push(() => traces.close());
  const dependency = await gatedDependency();
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  const ended: RunTree[] = [];
  const app = await startTracedApp({ client, dependencyUrl: dependency.url, onRunEnd: (run) => ended.push(run) });
  cleanup.push(() => (app.server.listening ? app.close() : undefined));
  const logged: string[] = [];
  const handle = installGracefulShutdown(app.server, {
    timeoutMs: 2_000,
    flushReserveMs: 60_000,
    client,
    signals: [],
    log: (line) => logged.push(line),
    exit: () => undefined,
  });
  const cutOff = cutOffRequest(app.url);
  await dependency.called;

  const result = await handle.shutdown("test");
  await cutOff;
  assert.equal(result.drained, false);
  assert.equal(result.flush.flushed, true, JSON.stringify(result));
  const slow = ended.find((run) => run.name === "GET /slow");
  assert.ok(slow);
  assert.equal(traces.store.getTraceRuns(slow.trace_id).find((run) => run.id === slow.id)?.error, "client disconnected");
  assert.match(logged[0] ?? "", /finishing 1 in-flight request\(s\) within 0 ms, then flushing traces \(budget 2000 ms, at least 2000 ms for the flush\)$/);
  await finishCutOffHandler(dependency, slow.trace_id, traces);
});

test("shutdownBudget: the default reserve is a quarter of the budget, at most 5 s; a reserve above the budget takes all of it; bad values are refused", () => {
  assert.deepEqual(shutdownBudget(25_000), { drainMs: 20_000, flushReserveMs: 5_000 });
  assert.deepEqual(shutdownBudget(60_000), { drainMs: 55_000, flushReserveMs: 5_000 });
  assert.deepEqual(shutdownBudget(2_000), { drainMs: 1_500, flushReserveMs: 500 });
  assert.deepEqual(shutdownBudget(2_000, 0), { drainMs: 2_000, flushReserveMs: 0 });
  assert.deepEqual(shutdownBudget(1_000, 5_000), { drainMs: 0, flushReserveMs: 1_000 });
  assert.deepEqual(shutdownBudget(0), { drainMs: 0, flushReserveMs: 0 });
  assert.throws(() => shutdownBudget(1_000, -1), RangeError);
  assert.throws(() => shutdownBudget(1_000, Number.NaN), RangeError);
  assert.throws(() => shutdownBudget(Number.POSITIVE_INFINITY), RangeError);
  const server = http.createServer();
  assert.throws(() => installGracefulShutdown(server, { timeoutMs: 1_000, flushReserveMs: -1, signals: [] }), RangeError);
});
