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
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";

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

/** A root (not ended yet) started now with a UUIDv7 id, in `project`, and its patch ending it. */
function liveRoot(project: string): { root: WireRun; end: WireRun } {
  const startMs = Date.now();
  const start = new Date(startMs).toISOString().replace("Z", "000Z");
  const id = uuid7FromTime(startMs);
  const root: WireRun = { id, trace_id: id, dotted_order: segment(start, id), name: "live_root", run_type: "chain", start_time: start, inputs: {}, session_name: project };
  return { root, end: { ...root, end_time: new Date(startMs + 1).toISOString(), outputs: { done: true } } };
}

/** An ended child of `parent` in `project`. */
function liveChild(parent: WireRun, name: string, project: string): WireRun {
  const start = new Date().toISOString().replace("Z", "000Z");
  const id = randomUUID();
  return {
    id,
    trace_id: parent.trace_id,
    parent_run_id: parent.id,
    dotted_order: `${parent.dotted_order}.${segment(start, id)}`,
    name,
    run_type: "chain",
    start_time: start,
    end_time: start,
    inputs: {},
    session_name: project,
  };
}

type RequestKind = "listing" | "query";

/** Counts the project listings and run queries the trace server logs, and acts on the n-th. */
function requestCounter(): { log: (line: string) => void; count: (kind: RequestKind) => number; on: (kind: RequestKind, n: number, fn: () => void) => void } {
  const counts: Record<RequestKind, number> = { listing: 0, query: 0 };
  const waiting: Array<{ kind: RequestKind; n: number; fn: () => void }> = [];
  return {
    log: (line) => {
      const kind: RequestKind | undefined = line.startsWith("GET /sessions?") ? "listing" : line.startsWith("POST /api/v2/runs/query ") ? "query" : undefined;
      if (!kind) return;
      counts[kind]++;
      for (const w of waiting.splice(0)) {
        if (w.kind === kind && counts[kind] === w.n) w.fn();
        else waiting.push(w);
      }
    },
    count: (kind) => counts[kind],
    on: (kind, n, fn) => void waiting.push({ kind, n, fn }),
  };
}

/** Posts `body` to the server's batch route when the counter sees the n-th request of `kind`; resolves to the status. */
function postOn(counter: ReturnType<typeof requestCounter>, kind: RequestKind, n: number, server: TraceServerHandle, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    counter.on(kind, n, () => void postJson(server, "/runs/batch", body).then(({ status }) => resolve(status), reject));
  });
}

test("readTrace without projectName lists the projects per call, not per poll", async (t) => {
  const counter = requestCounter();
  const server = await serverFor(t, { log: counter.log });
  const client = sdkClient(server);
  const { root, end } = liveRoot("per-call-a");
  const others = ["per-call-b", "per-call-c", "per-call-d"].map((project) => liveChild(root, `step_in_${project}`, project));
  assert.equal((await postJson(server, "/runs/batch", { post: [root, ...others] })).status, 202);

  // The root ends only once readTrace has polled a dozen times, so that many polls are certain.
  const POLLS = 12;
  const ended = postOn(counter, "query", POLLS, server, { patch: [end] });
  const SETTLE_MS = 1000;
  const started = performance.now();
  const runs = await readTrace(root.id, { client, pollMs: 5, settleMs: SETTLE_MS });
  const elapsed = performance.now() - started;
  assert.equal(await ended, 202);

  assert.equal(runs.length, 4, `got ${runs.map((r) => r.name).join(", ")}`);
  assert.ok(runs.find((r) => r.id === root.id)?.end_time, "read after the root ended");
  assert.equal(new Set(runs.map((r) => r.session_id)).size, 4, "one run in each of four projects");
  assert.ok(counter.count("query") > POLLS, `${counter.count("query")} polls`);
  // One listing at the start, one per relisting interval the call outlasted (they start at settleMs
  // and double: at 1x, 3x, 7x settleMs), and one to confirm once settled; never one per poll.
  const relistings = Math.floor(Math.log2(elapsed / SETTLE_MS + 1));
  const bound = 1 + relistings + 1;
  assert.ok(counter.count("listing") <= bound, `${counter.count("listing")} project listings for ${counter.count("query")} polls in ${Math.round(elapsed)} ms (at most ${bound})`);
  assert.ok(counter.count("listing") < counter.count("query") / 4, "listings are not per poll");
});

test("readTrace without projectName finds runs in a project created while it polls", async (t) => {
  const counter = requestCounter();
  const server = await serverFor(t, { log: counter.log });
  const client = sdkClient(server);
  const { root, end } = liveRoot("late-a");
  assert.equal((await postJson(server, "/runs/batch", { post: [end] })).status, 202);

  // The child's project does not exist yet when readTrace first lists the projects.
  const posted = postOn(counter, "query", 3, server, { post: [liveChild(root, "late_step", "late-b")] });
  const runs = await readTrace(root.id, { client, expectRuns: 2, pollMs: 5, settleMs: 100 });
  assert.equal(await posted, 202);
  assert.deepEqual(runs.map((r) => r.name).sort(), ["late_step", "live_root"]);
});

test("readTrace with projectName looks the project up until it exists, then not again", async (t) => {
  const counter = requestCounter();
  const server = await serverFor(t, { log: counter.log });
  const client = sdkClient(server);
  const { end } = liveRoot("named-late");
  const posted = postOn(counter, "listing", 3, server, { post: [end] });
  const runs = await readTrace(end.id, { client, projectName: "named-late", pollMs: 5, settleMs: 200 });
  assert.equal(await posted, 202);
  assert.deepEqual(runs.map((r) => r.name), ["live_root"]);
  assert.ok(counter.count("listing") >= 4, "looked up on every poll while it did not exist");

  const before = counter.count("listing");
  await readTrace(end.id, { client, projectName: "named-late", pollMs: 5, settleMs: 200 });
  assert.equal(counter.count("listing") - before, 1, "one lookup for a whole call once the project exists");
  await assert.rejects(readTrace(end.id, { client, projectName: "no-such-project", timeoutMs: 200 }), /project "no-such-project" does not exist/);
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
