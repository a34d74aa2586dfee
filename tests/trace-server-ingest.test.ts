// Ingest semantics of the local trace server: ordering, merging, validation
// rules and their recorded rejections, and robustness against bad requests.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { readTrace } from "../setup/src/traces/index.js";
import {
  childRun,
  collect,
  encodeMultipart,
  LOCAL_KEY,
  postJson,
  postMultipart,
  rootRun,
  runParts,
  sdkClient,
  segment,
  serverFor,
  type IngestReply,
  type PartSpec,
  type WireRun,
} from "./fixtures/trace-server/helpers.js";

/** The server still answers and still stores runs. */
async function assertServing(server: TraceServerHandle): Promise<void> {
  const info = await fetch(`${server.url}/info`);
  assert.equal(info.status, 200);
  const root = rootRun("still-serving");
  const { status } = await postMultipart(server, runParts("post", root));
  assert.equal(status, 202);
  assert.equal(server.store.getRun(root.id)?.name, "still-serving");
}

async function rejectionsEndpoint(server: TraceServerHandle, query: string): Promise<Array<{ rule: string; run_id: string | null; message: string; payload: string | null; route: string }>> {
  const res = await fetch(`${server.url}/api/rejections?${query}`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { rejections: Array<{ rule: string; run_id: string | null; message: string; payload: string | null; route: string }> }).rejections;
}

test("an update that arrives before its create is merged, and the late create erases nothing", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("late-create", { session_name: "ordering", extra: { metadata: { LANGSMITH_SERVICE: "svc", phase: "create" } } });
  const patch = {
    id: root.id,
    trace_id: root.trace_id,
    dotted_order: root.dotted_order,
    end_time: Date.parse("2025-03-04T05:06:09.500Z"),
    outputs: { answer: 42 },
    extra: { metadata: { phase: "update" } },
  };
  const first = await postMultipart(server, runParts("patch", patch));
  assert.equal(first.status, 202, JSON.stringify(first.json));
  const early = server.store.getRun(root.id);
  assert.deepEqual(early?.outputs, { answer: 42 });
  assert.equal(early?.status, "success");

  // The create repeats fields the update already set; the update's values must survive.
  const second = await postMultipart(server, runParts("post", { ...root, outputs: { answer: "draft" } }));
  assert.equal(second.status, 202, JSON.stringify(second.json));
  const run = server.store.getRun(root.id);
  assert.equal(run?.name, "late-create");
  assert.deepEqual(run?.inputs, { name: "late-create" });
  assert.deepEqual(run?.outputs, { answer: 42 });
  assert.equal(run?.end_time, "2025-03-04T05:06:09.500000Z");
  assert.equal(run?.start_time, root.start_time);
  assert.deepEqual(run?.extra.metadata, { LANGSMITH_SERVICE: "svc", phase: "update" });
  assert.equal(server.store.getProject(run?.session_id ?? "")?.name, "ordering");
  assert.deepEqual(server.store.listTraces({ projectName: "ordering" })[0]?.services, ["svc"]);
});

test("a child whose parent has not arrived yet is stored and counted as an orphan until the parent comes", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("parent-late", { session_name: "orphans" });
  const child = childRun(root, "early-child", { session_name: "orphans" });
  assert.equal((await postMultipart(server, runParts("post", child))).status, 202);
  assert.equal(server.store.listTraces({ projectName: "orphans" })[0]?.orphan_count, 1);
  assert.equal(server.store.listTraces({ projectName: "orphans" })[0]?.root_name, null);
  assert.equal((await postMultipart(server, runParts("post", root))).status, 202);
  const [summary] = server.store.listTraces({ projectName: "orphans" });
  assert.equal(summary?.orphan_count, 0);
  assert.equal(summary?.root_name, "parent-late");
  assert.deepEqual(server.store.getRun(root.id)?.child_run_ids, [child.id]);
});

test("a create merged with its update, and a create and update in one request, both store the finished run", async (t) => {
  const server = await serverFor(t);
  const merged = rootRun("merged", { end_time: Date.parse("2025-03-04T05:06:08.000Z"), outputs: { done: true } });
  const split = rootRun("split");
  const { status, json } = await postMultipart(server, [
    ...runParts("post", merged),
    ...runParts("post", split),
    ...runParts("patch", { id: split.id, trace_id: split.id, dotted_order: split.dotted_order, outputs: { done: "later" }, end_time: Date.parse("2025-03-04T05:06:08.000Z") }),
  ]);
  assert.equal(status, 202, JSON.stringify(json));
  assert.equal(json.accepted, 3);
  assert.deepEqual(server.store.getRun(merged.id)?.outputs, { done: true });
  assert.equal(server.store.getRun(merged.id)?.status, "success");
  assert.deepEqual(server.store.getRun(split.id)?.outputs, { done: "later" });
  assert.deepEqual(server.store.getRun(split.id)?.inputs, { name: "split" });
});

test("a retried create is idempotent", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("retried");
  for (let i = 0; i < 2; i++) assert.equal((await postMultipart(server, runParts("post", root))).status, 202);
  assert.equal(server.store.getTraceRuns(root.id).length, 1);
});

test("JSON routes: POST /runs, PATCH /runs/:id and POST /runs/batch", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("json-root", { session_name: "json" });
  assert.equal((await postJson(server, "/runs", root)).status, 202);
  const patched = await postJson(server, `/runs/${root.id}`, { outputs: { via: "patch" }, end_time: "2025-03-04T06:00:00Z" }, { method: "PATCH" });
  assert.equal(patched.status, 202, JSON.stringify(patched.json));
  assert.deepEqual(server.store.getRun(root.id)?.outputs, { via: "patch" });
  assert.equal(server.store.getRun(root.id)?.end_time, "2025-03-04T06:00:00.000000Z");

  const child = childRun(root, "batched-child", { session_name: "json" });
  const badChild = childRun(root, "bad-child", { session_name: "json", trace_id: randomUUID() });
  const batch = await postJson(server, "/runs/batch", { post: [child, badChild], patch: [{ id: child.id, trace_id: root.id, dotted_order: child.dotted_order, parent_run_id: root.id, outputs: { ok: 1 } }] });
  assert.equal(batch.status, 422);
  assert.equal(batch.json.accepted, 2);
  assert.deepEqual(batch.json.rejected.map((r) => [r.run_id, r.rule]), [[badChild.id, "child_trace_id"]]);
  assert.deepEqual(server.store.getRun(child.id)?.outputs, { ok: 1 });

  // Without trace fields a create is derived from its stored parent, as LangSmith does for legacy clients.
  const legacy = { id: randomUUID(), parent_run_id: root.id, name: "legacy", run_type: "tool", start_time: "2025-03-04T05:07:00.000001Z", inputs: {} };
  assert.equal((await postJson(server, "/runs", legacy)).status, 202);
  const stored = server.store.getRun(legacy.id);
  assert.equal(stored?.trace_id, root.id);
  assert.equal(stored?.dotted_order, `${root.dotted_order}.${segment(legacy.start_time, legacy.id)}`);
});

// --- validation rules: one test each, each checking the 4xx, the precise message,
// that the rejection is recorded, and that valid runs in the same request still land.

async function expectRejected(
  t: TestContext,
  bad: PartSpec[],
  rule: string,
  messagePattern: RegExp,
  runId: string | null,
): Promise<{ server: TraceServerHandle; reply: IngestReply }> {
  const server = await serverFor(t);
  const good = rootRun("good-neighbour");
  const { status, json } = await postMultipart(server, [...runParts("post", good), ...bad]);
  assert.equal(status, 422, JSON.stringify(json));
  assert.equal(json.accepted, 1, "the valid run in the same request must be accepted");
  assert.equal(server.store.getRun(good.id)?.name, "good-neighbour");
  assert.equal(json.rejected.length, 1, JSON.stringify(json.rejected));
  const [rejected] = json.rejected;
  assert.equal(rejected?.rule, rule);
  assert.match(rejected?.message ?? "", messagePattern);
  assert.equal(rejected?.run_id, runId);
  assert.match(json.detail ?? "", new RegExp(`\\[${rule}\\]`));
  const recorded = await rejectionsEndpoint(server, `rule=${rule}`);
  assert.equal(recorded.length, 1);
  assert.equal(recorded[0]?.run_id, runId);
  assert.equal(recorded[0]?.route, "/runs/multipart");
  return { server, reply: json };
}

const parts = (op: "post" | "patch", run: Record<string, unknown>) => runParts(op, run);

test("rule root_trace_id: a root run's trace_id must be its own id", async (t) => {
  const bad = rootRun("bad", { trace_id: randomUUID() });
  await expectRejected(t, parts("post", bad), "root_trace_id", /root run \(no parent_run_id\) must have trace_id equal to its id/, bad.id);
});

test("rule root_single_segment: a root run's dotted_order has exactly one segment", async (t) => {
  const parent = rootRun("p");
  const bad = childRun(parent, "bad");
  delete bad.parent_run_id;
  await expectRejected(t, parts("post", { ...bad, trace_id: bad.id }), "root_single_segment", /exactly one dotted_order segment, got 2/, bad.id);
});

test("rule child_segments: a child needs its parent's segment in dotted_order", async (t) => {
  const parent = rootRun("p");
  const bad = rootRun("bad", { parent_run_id: parent.id, trace_id: parent.id });
  await expectRejected(t, parts("post", bad), "child_segments", /has parent_run_id .* only one segment/, bad.id);
});

test("rule child_trace_id: a child's first dotted_order segment is its trace", async (t) => {
  const parent = rootRun("p");
  const bad = childRun(parent, "bad", { trace_id: randomUUID() });
  await expectRejected(t, parts("post", bad), "child_trace_id", new RegExp(`first dotted_order segment names run ${parent.id}, but trace_id is`), bad.id);
});

test("rule child_parent_id: a child's second-to-last segment is its parent", async (t) => {
  const parent = rootRun("p");
  const bad = childRun(parent, "bad", { parent_run_id: randomUUID() });
  await expectRejected(t, parts("post", bad), "child_parent_id", new RegExp(`second-to-last dotted_order segment names run ${parent.id}, but parent_run_id is`), bad.id);
});

test("rule dotted_order_self: the last segment is the run itself", async (t) => {
  const other = rootRun("other");
  const bad = { ...rootRun("bad"), dotted_order: other.dotted_order };
  await expectRejected(t, parts("post", bad), "dotted_order_self", new RegExp(`last dotted_order segment names run ${other.id}, but the run id is ${bad.id}`), bad.id);
});

test("rule dotted_order_format: segments are <YYYYMMDDTHHMMSSffffffZ><uuid>", async (t) => {
  const bad = rootRun("bad");
  // Millisecond precision instead of microseconds, as a hand-rolled client might send it.
  const malformed = { ...bad, dotted_order: `20250304T050607123Z${bad.id}` };
  await expectRejected(t, parts("post", malformed), "dotted_order_format", /segment 1 of 1 .* is not <YYYYMMDDTHHMMSSffffffZ><uuid>/, bad.id);
});

test("rule invalid_uuid: ids must be UUIDs", async (t) => {
  const bad = rootRun("bad", { trace_id: "trace-1" });
  await expectRejected(t, parts("post", bad), "invalid_uuid", /trace_id must be a UUID, got "trace-1"/, bad.id);
});

test("rule invalid_field: times must parse", async (t) => {
  const bad = rootRun("bad", { start_time: "yesterday" });
  await expectRejected(t, parts("post", bad), "invalid_field", /start_time must be an ISO-8601 time or epoch milliseconds, got "yesterday"/, bad.id);
});

/** A value nesting `levels` arrays: nested(1) is ["leaf"]. */
function nested(levels: number): unknown {
  return levels === 0 ? "leaf" : [nested(levels - 1)];
}

/** 20,000 nested arrays as JSON text (40 KB): JSON.parse takes it, JSON.stringify overflows the stack. */
const TOO_DEEP = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;

/** A run as JSON text whose `field` holds TOO_DEEP (JSON.stringify cannot build it). */
function withTooDeep(run: Record<string, unknown>, field: string): string {
  return JSON.stringify({ ...run, [field]: "<deep>" }).replace('"<deep>"', `{"deep":${TOO_DEEP}}`);
}

test("rule invalid_field: a field may nest 256 levels, no more", async (t) => {
  const bad = rootRun("bad", { inputs: { a: nested(256) } });
  const { server } = await expectRejected(t, parts("post", bad), "invalid_field", /inputs nests objects\/arrays deeper than 256 levels/, bad.id);
  const [recorded] = await rejectionsEndpoint(server, "rule=invalid_field");
  assert.equal(JSON.parse(recorded?.payload ?? "null").inputs, "<nested deeper than 256 levels>");
  const fits = rootRun("fits", { inputs: { a: nested(255) } });
  assert.equal((await postMultipart(server, runParts("post", fits))).status, 202);
  assert.deepEqual(server.store.getRun(fits.id)?.inputs, fits.inputs);
});

test("a run nested 20,000 levels deep is refused on every ingest route, and its trace stays readable", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const root = rootRun("deep-root", { session_name: "deep", start_time: new Date().toISOString().replace("Z", "000Z"), end_time: Date.now(), inputs: { a: nested(255) } });
  root.dotted_order = segment(root.start_time, root.id);
  assert.equal((await postJson(server, "/runs", root)).status, 202);
  const child = (): WireRun => {
    const run = childRun(root, "deep-child", { session_name: "deep" });
    return { ...run, start_time: root.start_time, dotted_order: `${root.dotted_order}.${segment(root.start_time, run.id)}` };
  };

  const [multi, single, batched] = [child(), child(), child()];
  const { inputs: _inputs, ...multiMain } = multi;
  const attempts: Array<[string, string, { status: number; json: IngestReply }]> = [
    ["/runs/multipart", multi.id, await postMultipart(server, [{ name: `post.${multi.id}`, body: JSON.stringify(multiMain) }, { name: `post.${multi.id}.inputs`, body: `{"deep":${TOO_DEEP}}` }])],
    ["/runs", single.id, await postJson(server, "/runs", withTooDeep(single, "inputs"))],
    ["/runs/batch", batched.id, await postJson(server, "/runs/batch", `{"post":[${withTooDeep(batched, "inputs")}]}`)],
    ["PATCH /runs/:id", root.id, await postJson(server, `/runs/${root.id}`, withTooDeep({ end_time: Date.now() }, "outputs"), { method: "PATCH" })],
  ];
  for (const [route, id, { status, json }] of attempts) {
    assert.equal(status, 422, `${route}: ${JSON.stringify(json)}`);
    assert.deepEqual(json.rejected.map((r) => [r.run_id, r.rule]), [[id, "invalid_field"]], route);
    assert.match(json.rejected[0]?.message ?? "", /(inputs|outputs) nests objects\/arrays deeper than 256 levels/);
  }
  assert.equal((await rejectionsEndpoint(server, "rule=invalid_field")).length, 4);

  // Every read that includes the trace: v1, v2, readTrace's path and the viewer's page.
  const headers = { "x-api-key": LOCAL_KEY };
  assert.equal((await fetch(`${server.url}/runs/${root.id}`, { headers })).status, 200);
  const project = (await client.readProject({ projectName: "deep" })).id;
  const v1 = await collect(client.listRuns({ projectId: project }));
  assert.deepEqual(v1.map((r) => r.id), [root.id]);
  assert.deepEqual(v1[0]?.inputs, root.inputs);
  const v2 = await collect(client.runs.query({ project_ids: [project], trace_id: root.id, selects: ["INPUTS", "OUTPUTS"] }));
  assert.deepEqual(v2.map((r) => [r.id, r.inputs, r.outputs]), [[root.id, root.inputs, null]]);
  assert.deepEqual((await readTrace(root.id, { client, expectRuns: 1, settleMs: 0 })).map((r) => r.inputs), [root.inputs]);
  assert.equal((await fetch(`${server.url}/traces/${root.id}`, { headers })).status, 200);
});

test("feedback and projects nested too deep are refused, and feedback stays listable", async (t) => {
  const server = await serverFor(t);
  const run = rootRun("scored");
  const feedbackId = randomUUID();
  const multipart = await postMultipart(server, [...runParts("post", run), { name: `feedback.${feedbackId}`, body: `{"run_id":"${run.id}","key":"deep","value":${TOO_DEEP}}` }]);
  assert.equal(multipart.status, 422, JSON.stringify(multipart.json));
  assert.equal(multipart.json.accepted, 1);
  assert.deepEqual(multipart.json.rejected.map((r) => r.rule), ["invalid_field"]);
  assert.match(multipart.json.rejected[0]?.message ?? "", /feedback field value nests objects\/arrays deeper than 256 levels/);
  const direct = await postJson(server, "/feedback", `{"run_id":"${run.id}","key":"deep","value":${TOO_DEEP}}`);
  assert.equal(direct.status, 422);
  assert.match(String(direct.json.detail), /feedback: value nests objects\/arrays deeper than 256 levels/);
  assert.equal((await postJson(server, "/feedback", { run_id: run.id, key: "shallow", value: nested(255) })).status, 200);
  const listed = await fetch(`${server.url}/feedback?run=${run.id}`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(listed.status, 200);
  assert.deepEqual(((await listed.json()) as Array<{ key: string }>).map((f) => f.key), ["shallow"]);

  const project = await postJson(server, "/sessions", `{"name":"deep-extra","extra":{"metadata":${TOO_DEEP}}}`);
  assert.equal(project.status, 422);
  assert.match(String(project.json.detail), /project: extra nests objects\/arrays deeper than 256 levels/);
  const made = await postJson(server, "/sessions", { name: "shallow-extra" });
  const update = await postJson(server, `/sessions/${String(made.json.id)}`, `{"extra":{"metadata":${TOO_DEEP}}}`, { method: "PATCH" });
  assert.equal(update.status, 422);
  assert.match(String(update.json.detail), /project update: extra nests/);
});

test("rule invalid_json: every part must be JSON", async (t) => {
  const bad = rootRun("bad");
  const broken = runParts("post", bad).map((p) => (p.name.endsWith(".inputs") ? { ...p, body: "{not json" } : p));
  await expectRejected(t, broken, "invalid_json", new RegExp(`part post\\.${bad.id}\\.inputs is not valid JSON`), bad.id);
});

test("rule missing_field: field parts without their run part", async (t) => {
  const bad = rootRun("bad");
  const orphanParts = runParts("post", bad).filter((p) => p.name !== `post.${bad.id}`);
  await expectRejected(t, orphanParts, "missing_field", new RegExp(`part post\\.${bad.id} is missing; only post\\.${bad.id}\\.inputs arrived`), bad.id);
});

test("rule missing_field: a child without dotted_order whose parent is unknown", async (t) => {
  const bad = { id: randomUUID(), parent_run_id: randomUUID(), name: "bad", run_type: "chain", start_time: "2025-03-04T05:06:07.000001Z" };
  await expectRejected(t, parts("post", bad), "missing_field", /dotted_order is required: parent run .* is not stored/, bad.id);
});

test("rule conflict: an update cannot move a stored run to another trace", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("stored");
  assert.equal((await postMultipart(server, runParts("post", root))).status, 202);
  const other = rootRun("other-trace");
  const moved = { id: root.id, trace_id: other.id, dotted_order: root.dotted_order, outputs: { x: 1 } };
  const { status, json } = await postMultipart(server, runParts("patch", moved));
  assert.equal(status, 422);
  assert.equal(json.rejected[0]?.rule, "conflict");
  assert.match(json.rejected[0]?.message ?? "", new RegExp(`trace_id ${other.id} differs from the stored run's ${root.id}`));
  assert.equal(server.store.getRun(root.id)?.outputs, null, "a rejected update must not touch the stored run");
  assert.equal(server.store.listRejections({ traceId: root.id })[0]?.rule, "conflict");
  assert.equal(server.store.listTraces()[0]?.rejected_count, 1);
});

test("rule unknown_project: session_id must name an existing project", async (t) => {
  const bad = rootRun("bad", { session_id: randomUUID() });
  await expectRejected(t, parts("post", bad), "unknown_project", /session_id .* names no project/, bad.id);
});

test("rule unknown_part: part names follow <op>.<uuid>[.<field>]", async (t) => {
  const { server } = await expectRejected(t, [{ name: "posts.not-a-run", body: "{}" }], "unknown_part", /part "posts\.not-a-run": expected <post\|patch\|attachment\|feedback>\.<uuid>/, null);
  const [recorded] = server.store.listRejections();
  assert.equal(recorded?.payload, "{}");
});

test("rejections are recorded with the offending payload and can be filtered by trace", async (t) => {
  const server = await serverFor(t);
  const parent = rootRun("p");
  const bad = childRun(parent, "bad", { parent_run_id: randomUUID(), inputs: { secret: "visible-in-payload" } });
  await postMultipart(server, runParts("post", bad));
  const [r] = await rejectionsEndpoint(server, `trace_id=${parent.id}`);
  assert.equal(r?.rule, "child_parent_id");
  assert.match(r?.payload ?? "", /visible-in-payload/);
  assert.deepEqual(await rejectionsEndpoint(server, `trace_id=${randomUUID()}`), []);
});

// --- robustness: every bad request gets a clear 4xx and the server keeps serving.

async function rawPost(server: TraceServerHandle, path: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; detail: string }> {
  const payload = typeof body === "string" ? body : new Uint8Array(body);
  const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "x-api-key": LOCAL_KEY, ...headers }, body: payload });
  const json = (await res.json()) as { detail: string };
  return { status: res.status, detail: json.detail };
}

test("malformed multipart bodies get 400 and store nothing", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("half");
  const { body, contentType } = await encodeMultipart(runParts("post", root));
  const truncated = await rawPost(server, "/runs/multipart", body.subarray(0, body.length - 20), { "content-type": contentType });
  assert.equal(truncated.status, 400);
  assert.match(truncated.detail, /malformed multipart body: the body ended before the closing boundary/);
  assert.equal(server.store.getRun(root.id), undefined);
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1] ?? "";
  const nameless = `--${boundary}\r\nContent-Disposition: form-data\r\n\r\n{}\r\n--${boundary}--\r\n`;
  const noName = await rawPost(server, "/runs/multipart", nameless, { "content-type": contentType });
  assert.equal(noName.status, 400);
  assert.match(noName.detail, /malformed multipart body: a part's Content-Disposition has no name/);
  const noBoundary = await rawPost(server, "/runs/multipart", body, { "content-type": "multipart/form-data" });
  assert.equal(noBoundary.status, 400);
  assert.match(noBoundary.detail, /expected Content-Type multipart\/form-data with a boundary/);
  const notMultipart = await rawPost(server, "/runs/multipart", "{}", { "content-type": "application/json" });
  assert.equal(notMultipart.status, 400);
  await assertServing(server);
});

// Found by review and fuzzing of multipasta (see readMultipart): each of
// these crashed the server, or lost or corrupted runs, before the guards.
test("hostile multipart: a bad filename* escape, parts after the closing boundary, a flood of parts, a huge part header", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("hostile");
  const { contentType } = await encodeMultipart(runParts("post", root));
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1] ?? "";
  const head = (name: string, extra = ""): string => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\nContent-Type: application/json\r\n\r\n`;

  // A malformed percent-escape in filename* makes the parser throw: a 400 for the request, as for
  // any malformed body (nothing stored), never an exception that takes the server down.
  const badEscape = `${head(`post.${root.id}`)}${JSON.stringify(root)}\r\n${head(`attachment.${root.id}.f`, "; filename*=UTF-8''%E0%A4%A")}abc\r\n--${boundary}--\r\n`;
  const escaped = await rawPost(server, "/runs/multipart", badEscape, { "content-type": contentType });
  assert.equal(escaped.status, 400);
  assert.match(escaped.detail, /malformed multipart body: URI malformed/);
  assert.equal(server.store.getRun(root.id), undefined);

  // Everything after the closing boundary is epilogue (RFC 2046): ignored, and the part before it intact.
  const first = rootRun("before-the-end");
  const late = rootRun("after-the-end");
  const withEpilogue = `${head(`post.${first.id}`)}${JSON.stringify(first)}\r\n--${boundary}--\r\n${head(`post.${late.id}`)}${JSON.stringify(late)}\r\n--${boundary}--\r\n`;
  const epilogue = await rawPost(server, "/runs/multipart", withEpilogue, { "content-type": contentType });
  assert.equal(epilogue.status, 202, epilogue.detail);
  assert.equal(server.store.getRun(first.id)?.name, "before-the-end");
  assert.equal(server.store.getRun(late.id), undefined);

  // 20,000 tiny parts: refused as a whole, nothing stored, no rejection recorded per part.
  const flood = `${Array.from({ length: 20_000 }, (_, i) => `${head(`junk${i}`)}{}\r\n`).join("")}--${boundary}--\r\n`;
  const before = (await rejectionsEndpoint(server, "limit=1000")).length;
  const flooded = await rawPost(server, "/runs/multipart", flood, { "content-type": contentType });
  assert.equal(flooded.status, 413);
  assert.match(flooded.detail, /more than 10000 parts/);
  assert.equal((await rejectionsEndpoint(server, "limit=1000")).length, before);

  // A 1 MB part header.
  const hugeHeader = `${head(`post.${root.id}`, `; x="${"x".repeat(1_000_000)}"`)}{}\r\n--${boundary}--\r\n`;
  const huge = await rawPost(server, "/runs/multipart", hugeHeader, { "content-type": contentType });
  assert.equal(huge.status, 400);
  assert.match(huge.detail, /malformed multipart body: a part has malformed headers \(HeaderTooLarge\)/);
  await assertServing(server);
});

test("a valid body parses the same wherever the network splits it, including between the closing dashes", async (t) => {
  const server = await serverFor(t);
  for (const from of [3, 2, 1, 200]) {
    const root = rootRun(`split-${from}`);
    const { body, contentType } = await encodeMultipart(runParts("post", root));
    const at = body.length - from;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/runs/multipart`, { method: "POST", headers: { "content-type": contentType, "content-length": body.length, "x-api-key": LOCAL_KEY } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      // Two writes with the socket flushed between them: the server sees two chunks.
      req.write(body.subarray(0, at), () => req.end(body.subarray(at)));
    });
    assert.equal(status, 202, `split ${from} bytes before the end`);
    assert.equal(server.store.getRun(root.id)?.name, `split-${from}`);
  }
});

test("corrupt gzip or zstd and unknown encodings get 4xx", async (t) => {
  const server = await serverFor(t);
  const { body, contentType } = await encodeMultipart(runParts("post", rootRun("x")));
  const gz = await promisify(zlib.gzip)(body);
  const badGzip = await rawPost(server, "/runs/multipart", Buffer.concat([gz.subarray(0, 30), Buffer.from("garbage-garbage-garbage")]), { "content-type": contentType, "content-encoding": "gzip" });
  assert.equal(badGzip.status, 400);
  assert.match(badGzip.detail, /could not read the gzip request body/);
  const notZstd = await rawPost(server, "/runs/multipart", body, { "content-type": contentType, "content-encoding": "zstd" });
  assert.equal(notZstd.status, 400);
  assert.match(notZstd.detail, /could not read the zstd request body/);
  const badJsonGzip = await rawPost(server, "/runs/batch", Buffer.from("not gzip"), { "content-type": "application/json", "content-encoding": "gzip" });
  assert.equal(badJsonGzip.status, 400);
  const unknown = await rawPost(server, "/runs/multipart", body, { "content-type": contentType, "content-encoding": "lzma" });
  assert.equal(unknown.status, 415);
  assert.match(unknown.detail, /unsupported Content-Encoding "lzma"/);
  await assertServing(server);
});

test("bad JSON gets 400 with the parser's reason", async (t) => {
  const server = await serverFor(t);
  for (const path of ["/runs", "/runs/batch", "/runs/query"]) {
    const r = await rawPost(server, path, '{"post": [', { "content-type": "application/json" });
    assert.equal(r.status, 400, path);
    assert.match(r.detail, /request body is not valid JSON/);
  }
  const notObject = await rawPost(server, "/runs/batch", "[1,2]", { "content-type": "application/json" });
  assert.equal(notObject.status, 422);
  await assertServing(server);
});

test("bodies over the limit get 413, also when only the decompressed size is over (compression bomb)", async (t) => {
  const server = await serverFor(t, { maxBodyBytes: 64 * 1024 });
  const big = Buffer.alloc(100 * 1024, "a");
  const declared = await rawPost(server, "/runs/batch", big, { "content-type": "application/json" });
  assert.equal(declared.status, 413);
  assert.match(declared.detail, /exceeds the limit of 65536 bytes/);

  // 64 MiB of zeros compress to ~64 KiB of gzip, and far less as zstd: both must stop at 64 KiB decoded.
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  for (const [encoding, packed] of [["gzip", await promisify(zlib.gzip)(zeros, { level: 9 })], ["zstd", await promisify(zlib.zstdCompress)(zeros)]] as const) {
    const bomb = Buffer.from(packed);
    assert.ok(bomb.length < 64 * 1024 * 2, `${encoding} bomb is ${bomb.length} bytes`);
    const r = await rawPost(server, "/runs/multipart", bomb, { "content-type": "multipart/form-data; boundary=x", "content-encoding": encoding });
    assert.equal(r.status, 413, `${encoding}: ${r.detail}`);
    assert.match(r.detail, new RegExp(`decompressed \\(${encoding}\\) request body exceeds the limit of 65536 bytes`));
  }

  // A chunked body (no Content-Length) is cut off while streaming.
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${server.url}/runs/batch`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": LOCAL_KEY } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.write(Buffer.alloc(40 * 1024, " "));
    req.end(Buffer.alloc(40 * 1024, " "));
  });
  assert.equal(status, 413);
  await assertServing(server);
});

test("a client that disconnects mid-upload leaves nothing behind and the server keeps serving", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("cut-off");
  const { body, contentType } = await encodeMultipart(runParts("post", root));
  await new Promise<void>((resolve) => {
    const req = request(`${server.url}/runs/multipart`, {
      method: "POST",
      headers: { "content-type": contentType, "content-length": String(body.length), "x-api-key": LOCAL_KEY },
    });
    req.on("error", () => resolve());
    req.write(body.subarray(0, body.length >> 1), () => {
      req.destroy();
      resolve();
    });
  });
  await assertServing(server);
  assert.equal(server.store.getRun(root.id), undefined);
});

test("an API key, when set, is required on API routes but not on /info", async (t) => {
  const server = await serverFor(t, { apiKey: "s3cret" });
  const body = { post: [rootRun("auth")] };
  const missing = await postJson(server, "/runs/batch", body, { headers: { "x-api-key": "" } });
  assert.equal(missing.status, 401);
  const wrong = await postJson(server, "/runs/batch", body, { headers: { "x-api-key": "wrong" } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.detail, "invalid API key");
  const reads = await fetch(`${server.url}/sessions`, { headers: { "x-api-key": "wrong" } });
  assert.equal(reads.status, 401);
  const rejections = await fetch(`${server.url}/api/rejections`);
  assert.equal(rejections.status, 401);
  assert.equal(server.store.counts().runs, 0);
  assert.equal((await fetch(`${server.url}/info`)).status, 200);
  assert.equal((await postJson(server, "/runs/batch", body, { headers: { "x-api-key": "s3cret" } })).status, 202);
  const viaBearer = { post: [rootRun("bearer")] };
  assert.equal((await postJson(server, "/runs/batch", viaBearer, { headers: { "x-api-key": "", authorization: "Bearer s3cret" } })).status, 202);
  assert.equal(server.store.counts().runs, 2);
});

test("the request log never shows the API key given in a URL", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { apiKey: "sekret-key-123", log: (line) => log.push(line) });
  const viewer = await fetch(`${server.url}/?key=sekret-key-123`, { redirect: "manual" });
  assert.equal(viewer.status, 303);
  // Unknown routes are logged (as errors) too; %6B is "k", + is a space in a query.
  await fetch(`${server.url}/sessions?name=a+b&api_key=sekret-key-123&x-api-key=sekret-key-123&%6Bey=sekret-key-123`);
  await fetch(`${server.url}/nope?token=sekret-key-123`);
  const lines = log.join("\n");
  assert.doesNotMatch(lines, /sekret/);
  assert.match(lines, /^GET \/\?key=\[redacted\] 303 /m);
  assert.match(lines, /^GET \/sessions\?name=a\+b&api_key=\[redacted\]&x-api-key=\[redacted\]&%6Bey=\[redacted\] 401 /m);
  assert.match(lines, /^GET \/nope\?token=\[redacted\] 404 /m);
});

test("unknown routes and bad ids get JSON errors", async (t) => {
  const server = await serverFor(t);
  const notFound = await fetch(`${server.url}/nope`);
  assert.equal(notFound.status, 404);
  assert.match(((await notFound.json()) as { detail: string }).detail, /no route for GET \/nope/);
  const badId = await fetch(`${server.url}/runs/not-a-uuid`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(badId.status, 422);
  const missingRun = await fetch(`${server.url}/runs/${randomUUID()}`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(missingRun.status, 404);
  await assertServing(server);
});

test("/api/v1 is an alias base URL, as on self-hosted LangSmith", async (t) => {
  const server = await serverFor(t);
  const root: WireRun = rootRun("v1");
  const res = await fetch(`${server.url}/api/v1/runs`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": LOCAL_KEY }, body: JSON.stringify(root) });
  assert.equal(res.status, 202);
  assert.equal((await fetch(`${server.url}/api/v1/info`)).status, 200);
  const read = await fetch(`${server.url}/api/v1/runs/${root.id}`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(((await read.json()) as { name: string }).name, "v1");
});
