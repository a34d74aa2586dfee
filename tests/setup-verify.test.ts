// verifyTrace / assertTrace / formatReport on hand-built trees: each kind of breakage must be named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertTrace, formatReport, verifyTrace, type TraceRun } from "@tracing-patterns/setup";

const T0 = Date.parse("2025-01-01T00:00:00.000Z");
const TRACE = "00000000-0000-4000-8000-000000000001";

function run(id: string, name: string, parent: string | undefined, startOffset: number, endOffset: number | undefined, service?: string, traceId = TRACE): TraceRun {
  return {
    id,
    name,
    run_type: name === "ChatOpenAI" ? "llm" : "chain",
    trace_id: traceId,
    parent_run_id: parent,
    start_time: new Date(T0 + startOffset).toISOString(),
    end_time: endOffset === undefined ? undefined : new Date(T0 + endOffset).toISOString(),
    extra: service ? { metadata: { LANGSMITH_SERVICE: service } } : {},
  };
}

/** gateway -> (retrieve) + (call_worker -> worker_handle [worker] -> llm) */
function healthyTrace(): TraceRun[] {
  return [
    run(TRACE, "handle_request", undefined, 0, 100, "gateway"),
    run("r-retrieve", "retrieve", TRACE, 5, 20),
    run("r-call", "call_worker", TRACE, 25, 95),
    run("r-worker", "worker_handle", "r-call", 30, 90, "worker"),
    run("r-llm", "ChatOpenAI", "r-worker", 35, 80),
  ];
}

test("a healthy distributed trace verifies ok with full completeness and propagation", () => {
  const report = verifyTrace(healthyTrace(), {
    services: ["gateway", "worker"],
    runNames: ["retrieve", "ChatOpenAI"],
    rootName: "handle_request",
    minRuns: 5,
  });
  assert.deepEqual(report.problems, []);
  assert.equal(report.ok, true);
  assert.equal(report.traceId, TRACE);
  assert.equal(report.runCount, 5);
  assert.equal(report.rootCount, 1);
  assert.equal(report.orphanCount, 0);
  assert.equal(report.completeness, 100);
  assert.equal(report.propagation, 100);
  assert.deepEqual(report.services, ["gateway", "worker"]);
  assert.deepEqual(report.hops, [{ from: "gateway", to: "worker", count: 1 }]);
});

test("an orphan (parent not in the set) is detected and lowers completeness", () => {
  const runs = healthyTrace().filter((r) => r.id !== "r-call");
  const report = verifyTrace(runs, { services: ["gateway", "worker"] });
  assert.equal(report.ok, false);
  assert.equal(report.orphanCount, 1);
  assert.ok(report.problems.some((p) => p.includes("orphan run \"worker_handle\"") && p.includes("r-call")), formatReport(report));
  // Only handle_request and retrieve still reach the root: 2 of 4 runs.
  assert.equal(report.completeness, 50);
  // The worker's runs exist but are not connected to the root.
  assert.equal(report.propagation, 50);
  assert.ok(report.problems.some((p) => p.includes(`service "worker" has runs, but none connected to the root`)));
});

test("two roots are detected", () => {
  const runs = [...healthyTrace(), run("r-second-root", "stray_root", undefined, 10, 20, "worker")];
  const report = verifyTrace(runs);
  assert.equal(report.rootCount, 2);
  assert.ok(report.problems.some((p) => p.startsWith("expected exactly one root run, found 2")), formatReport(report));
});

test("a child outside its parent's time window (beyond the skew allowance) is detected", () => {
  const runs = healthyTrace().map((r) => (r.id === "r-llm" ? run("r-llm", "ChatOpenAI", "r-worker", 35, 300) : r));
  const report = verifyTrace(runs);
  assert.ok(report.problems.some((p) => p.includes(`"ChatOpenAI"`) && p.includes("after its parent") && p.includes(`"worker_handle"`)), formatReport(report));
  const early = healthyTrace().map((r) => (r.id === "r-retrieve" ? run("r-retrieve", "retrieve", TRACE, -200, 20) : r));
  assert.ok(verifyTrace(early).problems.some((p) => p.includes(`"retrieve"`) && p.includes("before its parent")));
});

test("small clock skew within skewMs is tolerated, and skewMs is configurable", () => {
  const runs = healthyTrace().map((r) => (r.id === "r-llm" ? run("r-llm", "ChatOpenAI", "r-worker", 35, 120) : r));
  assert.equal(verifyTrace(runs).ok, true, "30 ms over is within the default 50 ms");
  assert.equal(verifyTrace(runs, { skewMs: 10 }).ok, false);
});

test("a run from another trace is detected", () => {
  const runs = healthyTrace().map((r) => (r.id === "r-retrieve" ? { ...r, trace_id: "00000000-0000-4000-8000-0000000000ff" } : r));
  const report = verifyTrace(runs);
  assert.equal(report.foreignCount, 1);
  assert.ok(report.problems.some((p) => p.includes(`"retrieve"`) && p.includes("belongs to trace 00000000-0000-4000-8000-0000000000ff")), formatReport(report));
});

test("a missing expected service, run name, root name and run count are each reported", () => {
  const report = verifyTrace(healthyTrace(), { services: ["gateway", "worker", "billing"], runNames: ["rerank"], rootName: "main", minRuns: 9 });
  assert.ok(report.problems.includes(`no run from service "billing"`));
  assert.ok(report.problems.includes(`no run named "rerank"`));
  assert.ok(report.problems.includes(`root is "handle_request", expected "main"`));
  assert.ok(report.problems.includes("expected at least 9 runs, found 5"));
  // billing is expected but absent: 2 of 3 services are connected.
  assert.equal(report.propagation, 66.7);
});

test("an unended run is reported and does not count as complete", () => {
  const runs = healthyTrace().map((r) => (r.id === "r-llm" ? run("r-llm", "ChatOpenAI", "r-worker", 35, undefined) : r));
  const report = verifyTrace(runs);
  assert.equal(report.unendedCount, 1);
  assert.equal(report.completeness, 80);
  assert.ok(report.problems.some((p) => p.includes(`"ChatOpenAI"`) && p.includes("has not ended")));
});

test("a run's service falls back to its nearest labeled ancestor", () => {
  const report = verifyTrace(healthyTrace());
  // retrieve and call_worker inherit gateway; ChatOpenAI inherits worker.
  assert.deepEqual(report.connectedServices, ["gateway", "worker"]);
});

test("no services anywhere gives propagation null, not a made-up number", () => {
  const runs = healthyTrace().map((r) => ({ ...r, extra: {} }));
  assert.equal(verifyTrace(runs).propagation, null);
});

test("an empty run set is not ok", () => {
  const report = verifyTrace([]);
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems, ["no runs"]);
});

test("assertTrace throws with the full report, and returns the report when ok", () => {
  assert.equal(assertTrace(healthyTrace()).ok, true);
  const broken = healthyTrace().filter((r) => r.id !== "r-call");
  assert.throws(
    () => assertTrace(broken, { services: ["worker"] }),
    (error: Error) => error.message.includes("FAILED") && error.message.includes("orphan run") && error.message.includes("completeness 50%"),
  );
});
