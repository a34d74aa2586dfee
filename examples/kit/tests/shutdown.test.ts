// The one shutdown: a keep-alive connection does not hold the close, a flush
// that never finishes ends at the deadline, bad budgets are refused at install,
// a second signal is reported and ignored (never an exit 1), and the drains run
// in order within one budget, each outcome in the summary line.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { BackgroundTasks, describeShutdown, drainAndFlush, installShutdown, trackConnections, type ShutdownResult } from "../index.js";
import { isolateFromLangSmithEnv } from "./helpers.js";

isolateFromLangSmithEnv();

const servers: http.Server[] = [];

after(() => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

async function listening(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A gate a handler waits on: `arrived` once it is waiting, `release()` to let it answer. */
function gate(): { arrived: Promise<void>; wait: () => Promise<void>; release: () => void } {
  let arrive: () => void = () => undefined;
  let release: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    arrived,
    wait: () => {
      arrive();
      return released;
    },
    release,
  };
}

const noFlush = { awaitPendingTraceBatches: async () => undefined };
const quiet = { signals: [] as NodeJS.Signals[], log: () => undefined, exit: () => undefined };

describe("installShutdown", () => {
  test("a keep-alive connection whose request finishes during the drain does not hold the close", async () => {
    const request = gate();
    const { server, url } = await listening((_req, res) => void request.wait().then(() => res.end("done")));
    // Far beyond the drain budget: if the idle connection were left open, the drain would time out.
    server.keepAliveTimeout = 600_000;
    const { shutdown } = installShutdown({ ...quiet, timeoutMs: 4_000, flushReserveMs: 1_000, client: noFlush, drain: [server] });
    const response = fetch(url);
    await request.arrived;
    const result = shutdown();
    request.release();
    const answered = await response;
    assert.equal(await answered.text(), "done");
    assert.equal(answered.headers.get("connection"), "close");
    const { drained, outcomes, flush } = await result;
    assert.deepEqual({ drained, outcomes, flushed: flush.flushed }, { drained: true, outcomes: ["in-flight requests finished"], flushed: true });
    assert.equal(shutdown(), result, "a second call is the same shutdown");
  });

  test("a flush that never finishes ends at the deadline with flushed: false", async () => {
    const { server } = await listening((_req, res) => res.end());
    const { shutdown } = installShutdown({ ...quiet, timeoutMs: 200, client: { awaitPendingTraceBatches: () => new Promise<void>(() => undefined) }, drain: [server] });
    const result = await shutdown();
    assert.equal(result.drained, true);
    assert.equal(result.flush.flushed, false);
    assert.match(describeShutdown(result), /^in-flight requests finished; traces NOT flushed after \d+ ms, they are lost on exit$/);
  });

  test("rejects a budget that is not a finite number >= 0", async () => {
    const { server } = await listening((_req, res) => res.end());
    for (const timeoutMs of [Number.NaN, -1, Infinity]) assert.throws(() => installShutdown({ ...quiet, timeoutMs, client: noFlush, drain: [server] }), RangeError);
    assert.throws(() => installShutdown({ ...quiet, timeoutMs: 1000, flushReserveMs: -5, client: noFlush, drain: [server] }), RangeError);
  });

  test("a second signal while stopping is reported and ignored: the stop finishes and exits 0 once", async () => {
    const request = gate();
    const { server, url } = await listening((_req, res) => void request.wait().then(() => res.end("done")));
    const logged: string[] = [];
    const exits: Array<[number, ShutdownResult]> = [];
    const before = process.listenerCount("SIGUSR2");
    installShutdown({
      timeoutMs: 5_000,
      client: noFlush,
      drain: [server],
      signals: ["SIGUSR2"],
      log: (line) => logged.push(line),
      exit: (code, result) => exits.push([code, result]),
    });
    const response = fetch(url);
    await request.arrived;
    process.emit("SIGUSR2", "SIGUSR2");
    process.emit("SIGUSR2", "SIGUSR2");
    assert.match(logged[1] ?? "", /^\[shutdown\] SIGUSR2 while stopping: ignored, the stop in progress ends within 5000 ms of the first signal$/);
    request.release();
    assert.equal(await (await response).text(), "done");
    while (exits.length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(exits.map(([code]) => code), [0]);
    assert.match(logged[0] ?? "", /^\[shutdown\] SIGUSR2: not accepting connections; finishing 1 in-flight request\(s\) within 3750 ms, then flushing traces \(budget 5000 ms, at least 1250 ms for the flush\)$/);
    assert.match(logged[2] ?? "", /^\[shutdown\] in-flight requests finished; traces flushed in \d+ ms$/);
    assert.equal(process.listenerCount("SIGUSR2"), before, "uninstalled after the shutdown");
  });
});

describe("drainAndFlush", () => {
  test("drains in order within one budget: requests, then the background work they started", async () => {
    const background = new BackgroundTasks();
    const task = gate();
    const { server, url } = await listening((_req, res) => {
      background.run(task.wait);
      res.end("ok");
    });
    const connections = trackConnections(server);
    const logged: string[] = [];
    assert.equal(await (await fetch(url)).text(), "ok");
    await task.arrived;
    const result = drainAndFlush({ timeoutMs: 10_000, client: noFlush, drain: [connections, background], log: (line) => logged.push(line), reason: "test" });
    setTimeout(task.release, 100);
    const { drained, outcomes } = await result;
    assert.deepEqual({ drained, outcomes }, { drained: true, outcomes: ["in-flight requests finished", "background tasks finished"] });
    assert.match(logged[0] ?? "", /^\[shutdown\] test: not accepting connections; finishing 0 in-flight request\(s\); finishing 1 background task\(s\) within 7500 ms, then flushing traces/);
    assert.match(logged[1] ?? "", /^\[shutdown\] in-flight requests finished; background tasks finished; traces flushed in \d+ ms$/);
  });

  test("a background task that never ends is left behind at the drain deadline, and the flush still gets its reserve", async () => {
    const background = new BackgroundTasks();
    background.run(() => new Promise(() => undefined));
    const started = performance.now();
    const result = await drainAndFlush({ timeoutMs: 400, flushReserveMs: 100, client: noFlush, drain: [background] });
    assert.equal(result.drained, false);
    assert.deepEqual(result.outcomes, ["background tasks still running at the deadline"]);
    assert.equal(result.flush.flushed, true);
    assert.ok(performance.now() - started < 2_000, "returned at its deadline");
  });
});
