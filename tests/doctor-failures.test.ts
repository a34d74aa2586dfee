// The trace doctor on traces made by real processes in each failure mode: two instances of
// tests/support/doctor-service.ts (a "frontend" calling a "backend"), killed, skewed, retried,
// restarted at an edge, writing to another project, losing context in a callback; plus runs posted
// through the SDK's Client that the trace server rejects. Each diagnosis must appear for its
// failure, with no problem of another kind, and none at all for the healthy request.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { RunTree } from "langsmith/run_trees";
import type { Finding, TraceDiagnosis } from "@tracing-patterns/setup";
import { kinds, post, spawnService, startDoctorStack, type DoctorStack, type ServiceProcess } from "./support/doctor-stack.js";

const PROJECT = "doctor";
let stack: DoctorStack;
let frontend: ServiceProcess;
let backend: ServiceProcess;
const extra: ServiceProcess[] = [];

before(async () => {
  stack = await startDoctorStack();
  [frontend, backend] = await Promise.all([
    spawnService(stack.traceServer, { LANGSMITH_SERVICE: "frontend", LANGSMITH_PROJECT: PROJECT, SERVICE_TRUST: "edge" }),
    spawnService(stack.traceServer, { LANGSMITH_SERVICE: "backend", LANGSMITH_PROJECT: PROJECT }),
  ]);
});

after(async () => {
  await Promise.all([frontend, backend, ...extra].map((s) => s?.stop()));
  await stack?.close();
});

async function another(env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const service = await spawnService(stack.traceServer, { LANGSMITH_SERVICE: "backend", LANGSMITH_PROJECT: PROJECT, ...env });
  extra.push(service);
  return service;
}

/** A request to the frontend, which calls `to`; resolves with the frontend's trace id. */
async function request(body: Record<string, unknown>, to: ServiceProcess = backend, headers: Record<string, string> = {}): Promise<string> {
  const response = await post(`${frontend.url}/front`, { to: `${to.url}/work`, ...body }, headers);
  assert.ok(response.traceId, `no x-trace-id (status ${response.status}):\n${frontend.output()}`);
  return response.traceId;
}

function only(d: TraceDiagnosis, kind: Finding["kind"]): Finding[] {
  const problems = d.findings.filter((f) => f.severity === "problem");
  assert.deepEqual([...new Set(problems.map((f) => f.kind))], [kind], `expected only ${kind} problems, got ${kinds(d).join(", ")}:\n${JSON.stringify(d.findings, null, 2)}`);
  assert.equal(d.healthy, false);
  return problems;
}

const names = (f: Finding): string[] => f.runs.map((r) => r.name).sort();

test("a healthy request across two processes: no findings at all", async () => {
  const traceId = await request({}, backend, { "x-request-id": "req-healthy" });
  const d = await stack.diagnose(traceId, 4);
  assert.deepEqual(kinds(d), [], JSON.stringify(d.findings, null, 2));
  assert.equal(d.healthy, true);
  assert.deepEqual(d.services, ["backend", "frontend"]);
  assert.equal(d.report.completeness, 100);
});

test("orphan: the caller's process is killed before it flushes, the callee's runs arrive without their parent", async () => {
  const dying = await spawnService(stack.traceServer, { LANGSMITH_SERVICE: "frontend", LANGSMITH_PROJECT: PROJECT, SERVICE_TRUST: "edge" });
  extra.push(dying);
  const served = backend.nextTrace();
  const response = await post(`${dying.url}/front`, { to: `${backend.url}/work`, die: true });
  assert.equal(response.status, 0, "the frontend died mid-request");
  const traceId = await served;
  const [orphan] = only(await stack.diagnose(traceId, 2), "orphan");
  assert.deepEqual(names(orphan as Finding), ["POST /work", "do_work"]);
  assert.deepEqual(orphan?.services, ["backend"]);
  assert.match(orphan?.cause ?? "", /continued a context that arrived in the langsmith-trace header/);
  assert.match(orphan?.cause ?? "", /crashed or was killed before it flushed/);
});

test("split trace: the caller drops the headers but forwards x-request-id; both halves name each other", async () => {
  const served = backend.nextTrace();
  const traceId = await request({ propagate: false }, backend, { "x-request-id": "req-split-1" });
  const downstream = await served;
  assert.notEqual(downstream, traceId);
  const [up] = only(await stack.diagnose(traceId, 2), "split");
  assert.equal(up?.evidence.requestId, "req-split-1");
  assert.deepEqual(up?.relatedTraces, [downstream]);
  const [down] = only(await stack.diagnose(downstream, 2), "split");
  assert.deepEqual(down?.relatedTraces, [traceId]);
  assert.equal(down?.evidence.direction, "downstream");
});

test("split trace without a shared id: found from the time window and the caller's run name", async () => {
  const served = backend.nextTrace();
  const traceId = await request({ propagate: false });
  const downstream = await served;
  const [up] = only(await stack.diagnose(traceId, 2), "split");
  assert.equal(up?.evidence.via, "time window");
  assert.equal(up?.evidence.nameMatch, true);
  assert.deepEqual(names(up as Finding), ["POST /work", "call_backend"]);
  assert.match(up?.cause ?? "", /trace\.inbound=none/);
  const [down] = only(await stack.diagnose(downstream, 2), "split");
  assert.deepEqual(down?.relatedTraces, [traceId]);
});

test("split trace: a callee with trust 'edge' restarts the caller's trace and records the claim", async () => {
  const edge = await another({ SERVICE_TRUST: "edge" });
  const served = edge.nextTrace();
  const traceId = await request({}, edge);
  const downstream = await served;
  const [down] = only(await stack.diagnose(downstream, 2), "split");
  assert.equal(down?.evidence.via, "untrusted_parent_trace_id");
  assert.equal(down?.evidence.reason, "untrusted-caller");
  assert.deepEqual(down?.relatedTraces, [traceId]);
  assert.match(down?.fix ?? "", /trust: "mesh"/);
  const [up] = only(await stack.diagnose(traceId, 2), "split");
  assert.equal(up?.evidence.direction, "upstream");
  assert.deepEqual(names(up as Finding), ["POST /work", "call_backend"]);
});

test("unended: the callee is killed mid-request, its runs stay open after the caller gave up", async () => {
  const hanging = await another({});
  const served = hanging.nextTrace();
  const responded = post(`${frontend.url}/front`, { to: `${hanging.url}/work`, work: { task: "hang", hang: true } });
  const traceId = await served;
  // Kill it once the starts of its runs are stored, as a crash mid-request would find them.
  await stack.visible(traceId, 2, ["POST /work", "do_work"]);
  hanging.child.kill("SIGKILL");
  assert.equal((await responded).status, 502);
  const [open] = only(await stack.diagnose(traceId, 4, {}, { open: true }), "unended");
  assert.deepEqual(names(open as Finding), ["POST /work", "do_work"]);
  assert.ok(Number(open?.evidence.afterParentEndedMs) >= 0);
  assert.match(open?.title ?? "", /"POST \/work" \[backend\] never ended: open for .*after its parent "call_backend" \[frontend\] ended/);
});

test("clock skew: a callee whose clock is 3 s behind starts its runs before their parent", async () => {
  const skewed = await another({ CLOCK_OFFSET_MS: "-3000" });
  const traceId = await request({}, skewed);
  const [skew] = only(await stack.diagnose(traceId, 4), "clock-skew");
  assert.ok(Number(skew?.evidence.skewMs) > 2500 && Number(skew?.evidence.skewMs) < 3500, String(skew?.evidence.skewMs));
  assert.deepEqual(skew?.services, ["backend", "frontend"]);
  assert.match(skew?.title ?? "", /service "backend" starts runs before their parent in "frontend".*its clock is about [23]\.\d\d s behind/);
});

test("duplicate runs: a caller's retry after its timeout makes the callee do the work twice", async () => {
  const traceId = await request({ retryTimeoutMs: 300, work: { task: `dup-${randomUUID()}`, slowFirstMs: 900 } });
  const [dup] = only(await stack.diagnose(traceId, 6), "duplicate");
  assert.equal(dup?.evidence.attempts, 2);
  assert.equal(dup?.evidence.didWork, 2);
  assert.deepEqual(names(dup as Finding), ["POST /work", "POST /work", "call_backend"]);
  assert.match(dup?.title ?? "", /first error: client disconnected/);
});

test("oversized payload: a 1.5 MB input is reported above the limit and not below it", async () => {
  const traceId = await request({ payloadBytes: 1_500_000 });
  const [big] = only(await stack.diagnose(traceId, 5), "oversized");
  assert.deepEqual(names(big as Finding), ["summarize"]);
  assert.ok(Number(big?.evidence.inputsBytes) > 1_500_000);
  const relaxed = await stack.diagnose(traceId, 5, { maxPayloadBytes: 2 * 1024 * 1024 });
  assert.deepEqual(kinds(relaxed), []);
});

test("project mismatch: a callee writing to another project is a problem against the expected project, a note without one", async () => {
  const elsewhere = await another({ LANGSMITH_PROJECT: "doctor-elsewhere" });
  const traceId = await request({}, elsewhere);
  const [mismatch] = only(await stack.diagnose(traceId, 4, { expectProject: PROJECT }), "project-mismatch");
  assert.deepEqual(names(mismatch as Finding), ["POST /work", "do_work"]);
  assert.deepEqual(mismatch?.runs.map((r) => r.project), ["doctor-elsewhere", "doctor-elsewhere"]);
  const plain = await stack.diagnose(traceId, 4);
  assert.deepEqual(kinds(plain), ["project-mismatch:note"]);
  assert.equal(plain.healthy, true);
});

test("flat tree: work done by a listener the request's timer calls lands beside the run that waited for it", async () => {
  const traceId = await request({ work: { task: "flat", flatten: "request" } });
  const [flat] = only(await stack.diagnose(traceId, 6), "flat");
  assert.deepEqual(names(flat as Finding), ["POST /work", "format_reply", "wait_for_reply"]);
  assert.match(flat?.title ?? "", /"format_reply" \[backend\]\) ran while "wait_for_reply" \[backend\] was waiting/);
});

test("lost context: a listener of a poller started at startup runs the work as a trace of its own", async () => {
  const traceId = await request({ work: { task: "lost", flatten: "startup" } });
  const [lost] = only(await stack.diagnose(traceId, 5), "flat");
  assert.deepEqual(names(lost as Finding), ["format_reply", "wait_for_reply"]);
  assert.equal(lost?.relatedTraces.length, 1);
  const detachedId = lost?.relatedTraces[0] as string;
  const detached = await stack.settle(detachedId, 1);
  assert.deepEqual(detached.map((r) => r.name), ["format_reply"]);
  assert.match(lost?.cause ?? "", /AsyncLocalStorage/);
  // From the detached trace's side: the one run that waited for it, not the "do_work" left open
  // by the killed process earlier in this file (an open run has no window to contain anything).
  const fromDetached = only(await stack.diagnose(detachedId, 1), "flat");
  assert.equal(fromDetached.length, 1);
  assert.deepEqual(names(fromDetached[0] as Finding), ["format_reply", "wait_for_reply"]);
  assert.deepEqual(fromDetached[0]?.relatedTraces, [traceId]);
});

test("rejected runs: a run whose trace_id disagrees with its dotted_order is refused, its child is orphaned", async () => {
  const root = new RunTree({ name: "checkout", client: stack.client, project_name: PROJECT });
  await root.postRun();
  const charge = root.createChild({ name: "charge-card" });
  charge.trace_id = randomUUID();
  await charge.postRun();
  const bank = charge.createChild({ name: "call-bank" });
  bank.trace_id = root.trace_id;
  await bank.postRun();
  for (const run of [bank, charge, root]) {
    await run.end({ ok: true });
    await run.patchRun();
  }
  await stack.client.awaitPendingTraceBatches();
  const d = await stack.diagnose(root.trace_id, 2);
  assert.deepEqual(kinds(d).sort(), ["orphan:problem", "rejected:problem"], JSON.stringify(d.findings, null, 2));
  const rejected = d.findings.find((f) => f.kind === "rejected") as Finding;
  assert.equal(rejected.evidence.rule, "child_trace_id");
  assert.deepEqual(names(rejected), ["charge-card"]);
  const orphan = d.findings.find((f) => f.kind === "orphan") as Finding;
  assert.deepEqual(names(orphan), ["call-bank"]);
  assert.match(orphan.cause, /The parent was rejected by the trace server \(\[child_trace_id\]/);
});

test("rejected runs: a trace id stamped on one run by hand, inherited by its child, names both refused runs", async () => {
  const root = new RunTree({ name: "checkout", client: stack.client, project_name: PROJECT });
  await root.postRun();
  const charge = root.createChild({ name: "charge-card" });
  charge.trace_id = randomUUID();
  await charge.postRun();
  // createChild copies the parent's trace_id, so the child carries the stamped id too.
  const bank = charge.createChild({ name: "call-bank" });
  await bank.postRun();
  for (const run of [bank, charge, root]) {
    await run.end({ ok: true });
    await run.patchRun();
  }
  await stack.client.awaitPendingTraceBatches();
  const d = await stack.diagnose(root.trace_id, 1);
  const [rejected] = only(d, "rejected");
  assert.equal(rejected?.evidence.rule, "child_trace_id");
  assert.equal(rejected?.evidence.rejections, 4);
  assert.deepEqual(names(rejected as Finding), ["call-bank", "charge-card"]);
  assert.equal(d.runCount, 1);
});
