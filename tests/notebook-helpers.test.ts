// The notebook harness (setup/src/notebook) against real traces in an in-process trace server:
// every check passes on a correct trace and fails, with a readable report, on a wrong expectation.
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { inspect } from "node:util";
import { RunTree } from "langsmith";
import { getCurrentRunTree, traceable, withRunTree } from "langsmith/traceable";
import {
  applyConfig,
  clientCall,
  compareLatency,
  concurrentRequests,
  countTraces,
  expectBrokenTrace,
  expectDiagnosis,
  expectEqual,
  expectIsolated,
  expectLeaks,
  expectMatch,
  expectThrows,
  expectTrace,
  judgeRequests,
  loadConfig,
  percentile,
  postConcurrently,
  serviceMetadata,
  setServiceName,
  startApp,
  startTraceServer,
  timePerCall,
  traceRoot,
  withTracingDisabled,
  type RunningApp,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { checkIsolation, formatIsolation } from "@tracing-patterns/example-async-streaming";

const isolation = { checkIsolation, formatIsolation };
let traces: TraceServerHandle;
let server: RunningApp;
/** Headers the in-process server received, by the request's x-request-tag. */
const received = new Map<string, Record<string, string | string[] | undefined>>();

const greet = traceable(async (text: string) => `hello ${text}`, { name: "server_greet", metadata: { ...serviceMetadata("server"), "trace.inbound": "continued" } });

/** Continues the caller's trace like the docs snippet; answers with x-trace-id. */
async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  received.set(String(req.headers["x-request-tag"] ?? ""), req.headers);
  let body = "";
  for await (const chunk of req) body += String(chunk);
  const parent = RunTree.fromHeaders(req.headers as Record<string, string | string[]>);
  let traceId = parent?.trace_id ?? "";
  const work = async (): Promise<string> => greet(body);
  const reply = parent
    ? await withRunTree(parent, work)
    : await traceable(async () => work(), { name: "server_root", metadata: serviceMetadata("server"), on_start: (run) => void (traceId = run?.trace_id ?? "") })();
  res.setHeader("x-trace-id", traceId);
  res.end(reply);
}

before(async () => {
  traces = await startTraceServer({ port: 0 });
  applyConfig(loadConfig({ env: Object.assign(process.env, { TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: "http://127.0.0.1:9" }), envFile: false }));
  setServiceName("client");
  server = await startApp((req, res) => void handler(req, res));
});
after(async () => {
  await server?.close();
  await traces?.close();
});

/** Collects what the helpers print, so assertions can read it and the test output stays quiet. */
function captureLog(t: TestContext): string[] {
  const lines: string[] = [];
  t.mock.method(console, "log", (...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  return lines;
}

describe("expectTrace", () => {
  test("a client/server trace verifies: report printed, runs and metadata returned", async (t) => {
    const log = captureLog(t);
    const call = await clientCall(server.url, { text: "there", headers: { "x-request-tag": "ok" } });
    assert.equal(call.status, 200);
    assert.equal(call.xTraceId, call.traceId, "the server continued the client's trace");
    assert.match(String(received.get("ok")?.["langsmith-trace"]), new RegExp(`${call.traceId}$`));
    const trace = await expectTrace(call.traceId, { rootName: "client_call", services: ["client", "server"], minRuns: 2, metadata: { server_greet: { "trace.inbound": "continued" } } });
    assert.equal(trace.report.ok, true);
    assert.equal(trace.run("server_greet").outputs?.outputs, "hello there");
    assert.equal(trace.metadata("server_greet").LANGSMITH_SERVICE, "server");
    assert.ok(log.some((l) => l.startsWith(`trace ${call.traceId}: OK`)), log.join("\n"));
    assert.ok(log.some((l) => l.includes("server_greet")), "the trace tree is shown");
    assert.equal(inspect(trace), "", "a cell ending in `await expectTrace(...)` prints nothing more");
    assert.equal(trace.runs.length, 2);
  });

  test("a wrong expectation fails with the report naming it", async (t) => {
    captureLog(t);
    const call = await clientCall(server.url, { text: "x" });
    await assert.rejects(expectTrace(call.traceId, { services: ["client", "server", "billing"], show: "none" }), (e: Error) => {
      assert.match(e.message, new RegExp(`^trace ${call.traceId}: FAILED`));
      assert.match(e.message, /no run from service "billing"/);
      return true;
    });
    await assert.rejects(expectTrace(call.traceId, { metadata: { server_greet: { "trace.inbound": "restarted" } }, show: "none" }), /metadata trace\.inbound is "continued", expected "restarted"/);
    await assert.rejects(expectTrace(call.traceId, { errors: { server_greet: /boom/ }, show: "none" }), /run "server_greet" .*error is null, expected \/boom\//);
    await assert.rejects(expectTrace(call.traceId, { metadata: { nowhere: { a: 1 } }, show: "none" }), /no run named "nowhere"/);
    await assert.rejects(expectTrace("", {}), /no trace id/);
  });

  test("errors of named runs are checked, and null means no error", async (t) => {
    captureLog(t);
    const failing = traceable(async () => {
      throw new Error("boom: disk full");
    }, { name: "failing_step" });
    const { traceId } = await traceRoot("with_failure", async () => failing().catch(() => "recovered"));
    const trace = await expectTrace(traceId, { rootName: "with_failure", minRuns: 2, errors: { failing_step: /disk full/, with_failure: null }, show: "none" });
    assert.equal(trace.report.errorCount, 1);
    await assert.rejects(expectTrace(traceId, { errors: { with_failure: "boom" }, show: "none" }), /run "with_failure" .*error is null/);
  });

  test("a relaxed time window says what the default one reports", async (t) => {
    const log = captureLog(t);
    // A root that ends while its child still runs, as a request run does under background work.
    const root = new RunTree({ name: "short_root", run_type: "chain" });
    await root.postRun();
    const lateStep = traceable(async () => new Promise((resolve) => setTimeout(resolve, 120)), { name: "late_step" });
    const late = withRunTree(root, () => lateStep());
    await root.end();
    await root.patchRun();
    await late;
    const traceId = root.trace_id;
    await assert.rejects(expectTrace(traceId, { minRuns: 2, show: "none" }), /"late_step" .* ends .* after its parent/);
    await expectTrace(traceId, { minRuns: 2, skewMs: Infinity, show: "line" });
    assert.ok(log.some((l) => l.startsWith("time window relaxed (skewMs Infinity)") && l.includes("late_step")), log.join("\n"));
  });
});

describe("clients", () => {
  test("with tracing disabled a client call sends no trace headers and makes no trace; the setting is restored, also after a throw", async () => {
    const before = process.env.LANGSMITH_TRACING;
    const call = await withTracingDisabled(() => clientCall(server.url, { text: "off", headers: { "x-request-tag": "off" } }));
    assert.equal(call.traceId, "");
    assert.equal(call.status, 200);
    assert.equal(received.get("off")?.["langsmith-trace"], undefined);
    assert.equal(process.env.LANGSMITH_TRACING, before);
    await assert.rejects(withTracingDisabled(() => Promise.reject(new Error("inside"))), /inside/);
    assert.equal(process.env.LANGSMITH_TRACING, before);
  });

  test("a baggage header given to clientCall is added to the trace's own members", async () => {
    const call = await clientCall(server.url, { text: "b", headers: { "x-request-tag": "baggage", baggage: "othervendor=1" } });
    assert.equal(received.get("baggage")?.baggage, "langsmith-project=default,othervendor=1");
    assert.equal(call.xTraceId, call.traceId);
  });
});

describe("expectBrokenTrace", () => {
  test("passes when the trace fails with the named problem, and fails otherwise", async (t) => {
    captureLog(t);
    const call = await clientCall(server.url, { text: "y" });
    const broken = await expectBrokenTrace(call.traceId, { services: ["client", "server", "billing"], problem: 'no run from service "billing"', show: "none" });
    assert.equal(broken.report.ok, false);
    await assert.rejects(expectBrokenTrace(call.traceId, { services: ["client", "server"], problem: "anything", show: "none" }), /expected trace .* to be broken \(anything\), and it verified OK/);
    await assert.rejects(expectBrokenTrace(call.traceId, { services: ["billing"], problem: /orphan/, show: "none" }), /expected a problem matching \/orphan\/; the report says:\n.*FAILED/);
  });

  test("a trace of which nothing arrived is a finding, not a crash", async (t) => {
    const log = captureLog(t);
    const missing = "01a00000-0000-7000-8000-000000000000";
    await expectBrokenTrace(missing, { problem: "no runs", read: { timeoutMs: 300 } });
    assert.ok(log.some((l) => l.startsWith(`trace ${missing}: FAILED`)), log.join("\n"));
  });
});

describe("expectDiagnosis", () => {
  test("passes on exactly the problems the doctor finds, prints the diagnosis, and throws it otherwise", async (t) => {
    const log = captureLog(t);
    const healthy = await clientCall(server.url, { text: "doctor" });
    const d = await expectDiagnosis(healthy.traceId, [], { waitMs: 1000 });
    assert.equal(d.healthy, true);
    assert.ok(log.some((l) => l.includes("healthy: no problems found.")), log.join("\n"));
    assert.equal(inspect(d), "", "a cell ending in `await expectDiagnosis(...)` prints nothing more");
    await assert.rejects(expectDiagnosis(healthy.traceId, ["orphan"], { waitMs: 1000, show: "none" }), /expected the doctor to find orphan, it found none:\n.*\n.*\n\nhealthy: no problems found\./);
    // The server's run posted without the client's: an orphan, as when a caller dies before it flushes.
    const caller = new RunTree({ name: "lost_caller", run_type: "chain" });
    const orphan = caller.createChild({ name: "server_work", run_type: "chain", metadata: serviceMetadata("server") });
    await orphan.postRun();
    await orphan.end({ ok: true });
    await orphan.patchRun();
    const titles = captureLog(t);
    const found = await expectDiagnosis(caller.trace_id, ["orphan", "orphan"], { waitMs: 1000, show: "titles" });
    assert.deepEqual(found.findings.map((f) => f.kind), ["orphan"]);
    assert.match(titles.join("\n"), new RegExp(`^trace ${caller.trace_id}: 1 problem\n  - orphan: 1 run of server is orphaned`, "m"));
    await assert.rejects(expectDiagnosis(caller.trace_id, [], { waitMs: 1000, show: "none" }), /expected the doctor to find no problem, it found orphan:/);
    await assert.rejects(expectDiagnosis("", []), /no trace id/);
  });
});

describe("value checks", () => {
  test("expectEqual, expectMatch and expectThrows pass quietly and fail naming the difference", async (t) => {
    const log = captureLog(t);
    expectEqual("tags", { a: 1, b: ["x"] }, { a: 1, b: ["x"] });
    assert.throws(() => expectEqual("table", { a: 1, b: 2 }, { a: 1, b: 3 }), /^Error: table: b is 2, expected 3$/);
    assert.throws(() => expectEqual("status", 500, 200), /status: got 500, expected 200/);
    expectMatch("header", "00-abc-01", /abc/);
    assert.throws(() => expectMatch("header", null, /abc/), /header: null does not match \/abc\//);
    await expectThrows("bad call", () => Promise.reject(new TypeError("x.toHeaders is not a function")), /toHeaders/);
    await assert.rejects(expectThrows("no error", () => 1, /x/), /no error: expected an error matching \/x\/, and the call succeeded/);
    await assert.rejects(expectThrows("wrong error", () => { throw new Error("other"); }, /x/), /got Error: other/);
    assert.deepEqual(log, ["ok  tags", "ok  header", "ok  bad call: TypeError: x.toHeaders is not a function"]);
  });
});

describe("load drivers and judges", () => {
  const step = traceable(async (input: { request_id: string }) => new Promise((resolve) => setTimeout(resolve, 1 + (input.request_id.charCodeAt(6) % 5))), { name: "step" });

  test("isolated requests pass expectIsolated and fail expectLeaks", async (t) => {
    const log = captureLog(t);
    const requests = await concurrentRequests(12, (request_id) => Promise.all([step({ request_id }), step({ request_id })]));
    assert.equal(requests.size, 12);
    await expectIsolated(requests, { runNames: ["step"], ownRuns: 3, services: ["client"], ...isolation });
    const verdicts = await judgeRequests(requests, { runNames: ["step"], ownRuns: 3, services: ["client"], ...isolation });
    assert.deepEqual(verdicts.map((v) => [v.requestId, v.ok, v.runs.length]), [...requests.keys()].map((id) => [id, true, 3]));
    assert.ok(log.some((l) => l.startsWith("12/12 requests")), log.join("\n"));
    await assert.rejects(expectLeaks(requests, { runNames: ["step"], ownRuns: 3, ...isolation }), /expected the broken variant to mix runs between requests, and all 12 requests were isolated/);
    await assert.rejects(expectIsolated(requests, { runNames: ["step"], ownRuns: 4, ...isolation }), /12 of 12 requests failed/);
  });

  test("runs parented from shared state are caught as leaks, and the worst trace is returned", async (t) => {
    captureLog(t);
    let shared: RunTree | undefined;
    const requests = await concurrentRequests(8, async (request_id) => {
      shared = getCurrentRunTree();
      await new Promise((resolve) => setTimeout(resolve, 5));
      return withRunTree(shared, () => step({ request_id }));
    });
    await assert.rejects(expectIsolated(requests, { runNames: ["step"], ownRuns: 2, ...isolation }), /requests failed/);
    const worst = await expectLeaks(requests, { runNames: ["step"], ownRuns: 2, ...isolation });
    assert.ok(worst.runs.length > 2, `the worst trace holds other requests' steps (${worst.runs.length} runs)`);
    assert.match(worst.isolation, /belongs to request req-/);
  });

  test("postConcurrently collects each response's x-trace-id", async () => {
    const map = await postConcurrently(server.url, 5);
    assert.deepEqual([...map.keys()], ["req-000", "req-001", "req-002", "req-003", "req-004"]);
    assert.equal(new Set(map.values()).size, 5);
    for (const id of map.values()) assert.match(id, /^[0-9a-f-]{36}$/);
  });
});

describe("timing and projects", () => {
  test("percentile is nearest-rank; compareLatency alternates variants and keeps only measured rounds", async () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 51);
    assert.equal(percentile(values, 95), 96);
    assert.equal(percentile(values, 100), 100);
    assert.ok(Number.isNaN(percentile([], 50)));
    const order: string[] = [];
    const cmp = await compareLatency({ a: async () => void order.push("a"), b: async () => void order.push("b") }, { requests: 4, warmup: 2 });
    assert.deepEqual(order, ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]);
    assert.equal(cmp.samples.a.length, 4);
    assert.equal(cmp.table.b.requests, 4);
    const row = timePerCall("noop", 100, () => 1);
    assert.equal(row.operation, "noop");
    assert.ok(row["µs per call"] >= 0);
  });

  test("countTraces counts root runs by project and name", async (t) => {
    captureLog(t);
    const since = new Date(Date.now() - 1000);
    for (let i = 0; i < 3; i++) await traceRoot("counted_root", async () => i, { project_name: "helpers-count" });
    const { traceId } = await traceRoot("other_root", async () => 0, { project_name: "helpers-count" });
    await expectTrace(traceId, { project: "helpers-count", show: "none" });
    assert.equal(await countTraces("helpers-count", { rootName: "counted_root", since }), 3);
    assert.equal(await countTraces("helpers-count", { since }), 4);
    assert.equal(await countTraces("helpers-no-such-project"), 0);
    await assert.rejects(expectTrace(traceId, { project: "default", show: "none", read: { timeoutMs: 300 } }), /No runs of trace/);
  });
});
