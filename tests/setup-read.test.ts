// readTrace through the SDK's non-deprecated client.runs.query against the local trace server.
// This file must not call a deprecated SDK method before the warning checks: the SDK warns once
// per process.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { RunTree, uuid7FromTime } from "langsmith";
import { getCurrentRunTree, traceable, withRunTree } from "langsmith/traceable";
import { readTrace, runFromV2 } from "../setup/src/traces/index.js";
import { collect, postJson, sdkClient, segment, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";

function captureWarnings(t: { after: (fn: () => void) => void }): Error[] {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  return warnings;
}

/** process.emitWarning delivers on the next tick. */
const warningsDelivered = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("readTrace reads a trace spread over two projects through client.runs.query, without a deprecation warning", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  let traceId = "";
  const work = traceable(async (n: number) => n * 2, { name: "worker_step", run_type: "tool", client, metadata: { LANGSMITH_SERVICE: "worker" } });
  // The worker continues the trace into its own project: it takes only langsmith-trace, since a
  // baggage header naming the caller's project would outrank its own.
  const worker = (headers: Record<string, string>, n: number): Promise<number> =>
    withRunTree(RunTree.fromHeaders({ "langsmith-trace": headers["langsmith-trace"] ?? "" }, { project_name: "read-worker", client }) as RunTree, () => work(n));
  await traceable(async (n: number) => ({ doubled: await worker(getCurrentRunTree().toHeaders(), n) }), {
    name: "gateway_request",
    client,
    project_name: "read-gateway",
    metadata: { LANGSMITH_SERVICE: "gateway" },
    on_start: (runTree) => {
      traceId = runTree?.trace_id ?? "";
    },
  })(21);

  const warnings = captureWarnings(t);
  const runs = await readTrace(traceId, { client, expectRuns: 2 });
  await warningsDelivered();
  assert.deepEqual(warnings.map((w) => `${w.name}: ${w.message}`), []);

  const byName = new Map(runs.map((r) => [r.name, r]));
  const root = byName.get("gateway_request");
  const step = byName.get("worker_step");
  assert.ok(root && step, `got ${runs.map((r) => r.name).join(", ")}`);
  assert.equal(root.id, traceId);
  assert.equal(root.parent_run_id, undefined);
  assert.equal(step.parent_run_id, root.id);
  assert.equal(step.trace_id, traceId);
  assert.equal(step.run_type, "tool");
  assert.equal(root.status, "success");
  assert.deepEqual(root.outputs, { doubled: 42 });
  assert.equal((step.extra?.metadata as Record<string, unknown>).LANGSMITH_SERVICE, "worker");
  assert.notEqual(root.session_id, step.session_id, "the two runs live in different projects");
  assert.ok(step.dotted_order?.startsWith(`${root.dotted_order}.`));

  const workerOnly = await readTrace(traceId, { client, projectName: "read-worker", settleMs: 0 });
  assert.deepEqual(workerOnly.map((r) => r.name), ["worker_step"]);

  // The capture does see the SDK's deprecation warnings: the v1 call still emits one.
  await collect(client.listRuns({ traceId }));
  await warningsDelivered();
  assert.deepEqual(warnings.map((w) => (w as Error & { code?: string }).code), ["LANGSMITH_DEPRECATED_LIST_RUNS"]);
});

/** A root and a child that started `ageMs` ago, the root's id made by `makeId`. */
function oldTrace(ageMs: number, makeId: (startMs: number) => string): WireRun[] {
  const startMs = Date.now() - ageMs;
  const rootStart = new Date(startMs).toISOString().replace("Z", "000Z");
  const childStart = new Date(startMs + 10).toISOString().replace("Z", "000Z");
  const rootId = makeId(startMs);
  const childId = randomUUID();
  const root: WireRun = { id: rootId, trace_id: rootId, dotted_order: segment(rootStart, rootId), name: "old_root", run_type: "chain", start_time: rootStart, end_time: childStart, inputs: {}, session_name: "old" };
  const child: WireRun = {
    id: childId,
    trace_id: rootId,
    parent_run_id: rootId,
    dotted_order: `${root.dotted_order}.${segment(childStart, childId)}`,
    name: "old_child",
    run_type: "chain",
    start_time: childStart,
    end_time: childStart,
    inputs: {},
    session_name: "old",
  };
  return [root, child];
}

test("readTrace finds a trace older than a day when its id is a UUIDv7, which dates it", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const threeDays = 3 * 24 * 60 * 60 * 1000;
  const dated = oldTrace(threeDays, (ms) => uuid7FromTime(ms));
  const undated = oldTrace(threeDays, () => randomUUID());
  const { status } = await postJson(server, "/runs/batch", { post: [...dated, ...undated] });
  assert.equal(status, 202);

  const runs = await readTrace(dated[0]?.id ?? "", { client, expectRuns: 2 });
  assert.deepEqual(runs.map((r) => r.name).sort(), ["old_child", "old_root"]);
  // A random (v4) trace id says nothing about when the trace began, so runs.query's default window applies.
  await assert.rejects(readTrace(undated[0]?.id ?? "", { client, timeoutMs: 300 }), /No runs of trace .* visible through the given client/);
});

test("runFromV2 maps a v2 run, nulls included, to the SDK's Run shape", () => {
  const run = runFromV2({
    id: "c",
    name: "step",
    run_type: "LLM",
    status: "ERROR",
    start_time: "2026-11-22T10:00:00.000001Z",
    end_time: null as unknown as string,
    error: "boom",
    extra: { runtime: { sdk: "js" }, metadata: { a: 1 } },
    metadata: { LANGSMITH_SERVICE: "worker" },
    parent_run_ids: ["a", "b"],
    project_id: "p",
    trace_id: "a",
    inputs: { q: 1 },
    outputs: null as unknown as Record<string, unknown>,
  });
  assert.deepEqual(run, {
    id: "c",
    name: "step",
    run_type: "llm",
    status: "error",
    start_time: "2026-11-22T10:00:00.000001Z",
    error: "boom",
    extra: { runtime: { sdk: "js" }, metadata: { a: 1, LANGSMITH_SERVICE: "worker" } },
    parent_run_id: "b",
    parent_run_ids: ["a", "b"],
    session_id: "p",
    trace_id: "a",
    inputs: { q: 1 },
  });
  assert.throws(() => runFromV2({ name: "no id" }), /without an id/);
});
