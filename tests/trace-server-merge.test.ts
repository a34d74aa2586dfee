// A run's create and update that arrive in one request are merged before the
// store writes the row. These tests hold the merged write to the result of
// applying the same operations one at a time: through the store directly,
// and over HTTP (one multipart request against one request per operation),
// read back from the database, the store and the SDK's Client.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { decodeRun, TraceStore, type RunUpsert, type TraceServerHandle } from "../setup/src/trace-server/index.js";
import { childRun, collect, nextTime, postMultipart, rootRun, runParts, sdkClient, segment, serverFor, type PartSpec, type WireRun } from "./fixtures/trace-server/helpers.js";

interface Op {
  op: "post" | "patch";
  run: Record<string, unknown>;
  attachments?: Array<{ name: string; contentType: string; data: Uint8Array }>;
}

/**
 * The only stored values allowed to differ: the time each write was received.
 * Operations applied in separate requests are received at different times.
 */
const TIMESTAMP_COLUMNS = ["received_at", "updated_at"] as const;

const post = (run: Record<string, unknown>, attachments?: Op["attachments"]): Op => (attachments ? { op: "post", run, attachments } : { op: "post", run });
const patch = (run: Record<string, unknown>): Op => ({ op: "patch", run });

/** What the SDK sends when a run ends: its identity again, plus what the end added. */
function endOf(run: WireRun, fields: Record<string, unknown>): Record<string, unknown> {
  const { id, trace_id, dotted_order, parent_run_id } = run;
  return { id, trace_id, dotted_order, ...(parent_run_id !== undefined ? { parent_run_id } : {}), end_time: nextTime(), ...fields };
}

interface Scenario {
  name: string;
  ops: Op[];
}

function scenarios(): Scenario[] {
  const list: Scenario[] = [];

  const root = rootRun("root", { session_name: "merge-basic", extra: { metadata: { LANGSMITH_SERVICE: "svc-a" } }, tags: ["t1"] });
  const child = childRun(root, "child", { session_name: "merge-basic", serialized: { name: "fn" } });
  list.push({
    name: "create and update of a root and a child, as the SDK batches them",
    ops: [post(root), post(child), patch(endOf(child, { outputs: { out: 1 } })), patch(endOf(root, { outputs: { out: 2 }, session_name: "merge-basic" }))],
  });

  const late = rootRun("late-create", { session_name: "merge-late", outputs: { answer: "draft" }, extra: { metadata: { phase: "create" } } });
  list.push({
    name: "update before create: the create's fields do not overwrite the update's",
    ops: [patch(endOf(late, { outputs: { answer: 42 }, extra: { metadata: { phase: "update" } } })), post(late)],
  });

  const twice = rootRun("twice", { session_name: "merge-twice" });
  list.push({
    name: "create, update, second update: the later update wins, fields it lacks survive",
    ops: [post(twice), patch(endOf(twice, { outputs: { v: 1 }, tags: ["first"] })), patch(endOf(twice, { outputs: { v: 2 }, error: "second update failed" }))],
  });

  const projectOnCreate = rootRun("project-on-create", { session_name: "merge-project-create" });
  const noProject = rootRun("project-on-update");
  const moved = rootRun("moved", { session_name: "merge-from" });
  list.push({
    name: "project on the create only, on the update only, and moved by the update",
    ops: [
      post(projectOnCreate),
      patch(endOf(projectOnCreate, {})),
      post(noProject),
      patch(endOf(noProject, { session_name: "merge-project-update" })),
      post(moved),
      patch(endOf(moved, { session_name: "merge-to" })),
    ],
  });

  const extra = rootRun("extra", {
    session_name: "merge-extra",
    extra: { metadata: { LANGSMITH_SERVICE: "svc-create", a: 1, shared: "create" }, runtime: { sdk: "js", lang: "ts" }, invocation_params: { temperature: 0 } },
  });
  list.push({
    name: "extra and metadata on both: merged key by key, the update's keys win",
    ops: [
      post(extra),
      patch(endOf(extra, { extra: { metadata: { LANGSMITH_SERVICE: "svc-update", b: 2, shared: "update" }, runtime: { lang: "js" }, invocation_params: { temperature: 1 } } })),
    ],
  });

  const failing = rootRun("failing", { session_name: "merge-error" });
  const failingChild = childRun(failing, "failing-child", { session_name: "merge-error" });
  list.push({
    name: "an error on the update",
    ops: [post(failing), post(failingChild), patch(endOf(failingChild, { error: "Error: boom\n    at step" })), patch(endOf(failing, { error: "Error: boom" }))],
  });

  const llmRoot = rootRun("llm-chain", { session_name: "merge-events" });
  const llm = childRun(llmRoot, "llm", { session_name: "merge-events", run_type: "llm", events: [{ name: "start", time: llmRoot.start_time }] });
  list.push({
    name: "events and token usage: the update's events replace the create's, first token and usage follow",
    ops: [
      post(llmRoot),
      post(llm),
      patch(
        endOf(llm, {
          events: [
            { name: "start", time: llm.start_time },
            { name: "new_token", time: nextTime(), kwargs: { token: "Hi" } },
            { name: "end", time: nextTime() },
          ],
          outputs: { generations: [[{ text: "Hi", message: { kwargs: { usage_metadata: { input_tokens: 7, output_tokens: 3, total_tokens: 10 } } } }]] },
        }),
      ),
      patch(endOf(llmRoot, { outputs: { answer: "Hi" } })),
    ],
  });

  const withFiles = rootRun("attachments", { session_name: "merge-attachments" });
  list.push({
    name: "attachments on the create",
    ops: [
      post(withFiles, [
        { name: "image", contentType: "image/png", data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]) },
        { name: "notes.txt", contentType: "text/plain", data: new TextEncoder().encode("notes") },
      ]),
      patch(endOf(withFiles, { outputs: { ok: true } })),
    ],
  });

  const badCreate = rootRun("bad-create", { session_name: "merge-invalid" });
  const badCreateNoOrder = rootRun("bad-create-no-order", { session_name: "merge-invalid" });
  const { dotted_order: _order, ...updateWithoutOrder } = endOf(badCreateNoOrder, { outputs: { lost: true } });
  const conflicting = rootRun("conflicting-update", { session_name: "merge-invalid" });
  list.push({
    name: "an invalid create with a valid update, an update that cannot stand alone, an update that conflicts",
    ops: [
      post({ ...badCreate, dotted_order: "not-a-dotted-order" }),
      patch(endOf(badCreate, { outputs: { kept: true } })),
      post({ ...badCreateNoOrder, dotted_order: `${segment(badCreateNoOrder.start_time, badCreateNoOrder.id)}.${segment(badCreateNoOrder.start_time, badCreate.id)}` }),
      patch(updateWithoutOrder),
      post(conflicting),
      patch({ ...endOf(conflicting, { outputs: { x: 1 } }), trace_id: badCreate.id }),
    ],
  });

  const parent = rootRun("parent", { session_name: "merge-derived" });
  const { dotted_order: _derived, ...derivedChild } = childRun(parent, "derived-child", { session_name: "merge-derived" });
  list.push({
    name: "a child whose dotted_order is derived from a parent created and updated in the same batch",
    ops: [post(parent), patch(endOf(parent, { outputs: { done: true } })), post(derivedChild), patch({ id: derivedChild.id, trace_id: derivedChild.trace_id, parent_run_id: parent.id, end_time: nextTime() })],
  });

  return list;
}

/** The parts of one operation, as the SDK lays them out. */
function opParts(op: Op): PartSpec[] {
  const parts = runParts(op.op, op.run);
  for (const a of op.attachments ?? []) parts.push({ name: `attachment.${String(op.run.id)}.${a.name}`, body: a.data, contentType: a.contentType, asFile: true });
  return parts;
}

/**
 * The operations in as few multipart requests as possible, in order. A
 * request names each part once, so it carries at most one create and one
 * update per run: a second update of a run starts the next request.
 */
function packRequests(ops: readonly Op[]): Op[][] {
  const requests: Op[][] = [];
  let current: Op[] = [];
  let keys = new Set<string>();
  for (const op of ops) {
    const key = `${op.op}.${String(op.run.id)}`;
    if (keys.has(key)) {
      requests.push(current);
      current = [];
      keys = new Set();
    }
    current.push(op);
    keys.add(key);
  }
  requests.push(current);
  return requests;
}

/** An operation decoded as the multipart route decodes it, raw JSON text of each field included. */
function toUpsert(op: Op): RunUpsert {
  const raw: Partial<Record<"inputs" | "outputs" | "events" | "extra" | "serialized", string>> = {};
  for (const field of ["inputs", "outputs", "events", "extra", "serialized"] as const) {
    if (op.run[field] !== undefined) raw[field] = JSON.stringify(op.run[field]);
  }
  const decoded = decodeRun(op.op, structuredClone(op.run), String(op.run.id), raw);
  assert.ok(decoded.ok, `scenario operations decode: ${JSON.stringify(decoded)}`);
  const [run] = decoded.runs;
  assert.ok(run);
  if (op.attachments) run.attachments = op.attachments.map((a) => ({ name: a.name, contentType: a.contentType, data: a.data }));
  return run;
}

/**
 * Everything a store holds, in insertion (rowid) order, with the receive
 * timestamps left out and project ids replaced by project names: project ids
 * are random per store.
 */
function snapshot(store: TraceStore): unknown {
  const projectNames = new Map((store.db.prepare("SELECT id, name FROM projects").all() as Array<{ id: string; name: string }>).map((p) => [p.id, p.name]));
  const byName = (text: string): string => {
    let out = text;
    for (const [id, name] of projectNames) out = out.replaceAll(id, `<project ${name}>`);
    return out;
  };
  const rows = (store.db.prepare("SELECT rowid, * FROM runs ORDER BY rowid").all() as Array<Record<string, unknown>>).map((row) => {
    const copy: Record<string, unknown> = { ...row };
    for (const column of TIMESTAMP_COLUMNS) {
      assert.equal(typeof copy[column], "string");
      delete copy[column];
    }
    return copy;
  });
  const runIds = rows.map((r) => String(r.id));
  const read = {
    rows,
    runs: runIds.map((id) => store.getRun(id)),
    traces: store.listTraces({ limit: 1000 }),
    attachments: store.db.prepare("SELECT rowid, run_id, name, content_type, hex(data) AS data FROM attachments ORDER BY rowid").all(),
    rejections: store.listRejections({ limit: 1000 }).map(({ seq: _seq, received_at: _received, ...r }) => r),
    projects: [...projectNames.values()].sort(),
  };
  return JSON.parse(byName(JSON.stringify(read)));
}

for (const scenario of scenarios()) {
  test(`store: ${scenario.name}: one batch stores what one batch per operation stores`, () => {
    const merged = new TraceStore();
    const sequential = new TraceStore();
    try {
      const batch = merged.upsertRuns(scenario.ops.map(toUpsert), { route: "test" });
      const one = scenario.ops.map((op) => sequential.upsertRuns([toUpsert(op)], { route: "test" }));
      assert.deepEqual(batch.accepted, one.flatMap((r) => r.accepted));
      assert.deepEqual(batch.rejected, one.flatMap((r) => r.rejected));
      assert.ok(batch.accepted.length > 0);
      assert.deepEqual(snapshot(merged), snapshot(sequential));
    } finally {
      merged.close();
      sequential.close();
    }
  });

  test(`http: ${scenario.name}: one request stores what one request per operation stores`, async (t: TestContext) => {
    const together = await serverFor(t);
    const apart = await serverFor(t);
    type Reply = Awaited<ReturnType<typeof postMultipart>>;
    const grouped: Reply[] = [];
    for (const request of packRequests(scenario.ops)) grouped.push(await postMultipart(together, request.flatMap(opParts)));
    const replies: Reply[] = [];
    for (const op of scenario.ops) replies.push(await postMultipart(apart, opParts(op)));
    const total = (list: Reply[]): number => list.reduce((n, r) => n + r.json.accepted, 0);
    assert.equal(total(grouped), total(replies));
    const sortRejected = (list: Reply[]): string[] => list.flatMap((r) => r.json.rejected.map((x) => JSON.stringify(x))).sort();
    assert.deepEqual(sortRejected(grouped), sortRejected(replies));
    assert.deepEqual(snapshot(together.store), snapshot(apart.store));
    assert.deepEqual(await readBack(together), await readBack(apart));
  });
}

/** Every stored run as the SDK's Client reads it, one by one and by project, with server-specific values replaced. */
async function readBack(server: TraceServerHandle): Promise<unknown> {
  const client = sdkClient(server);
  const ids = (server.store.db.prepare("SELECT id FROM runs ORDER BY rowid").all() as Array<{ id: string }>).map((r) => r.id);
  // Projects are listed newest first, and a project's creation time is a receive time: order them by name.
  const projects = server.store.listProjects({ limit: 100 }).sort((a, b) => a.name.localeCompare(b.name));
  const read = {
    runs: await Promise.all(ids.map((id) => client.readRun(id))),
    byProject: await Promise.all(projects.map(async (p) => [p.name, await collect(client.listRuns({ projectName: p.name }))] as const)),
  };
  let text = JSON.stringify(read).replaceAll(server.url, "<server>");
  for (const p of projects) text = text.replaceAll(p.id, `<project ${p.name}>`);
  return JSON.parse(text);
}

test("a token count SQLite cannot read back is written at once, so the next operation on the run fails as it did unmerged", () => {
  const run = rootRun("huge-usage", { run_type: "llm", outputs: { usage_metadata: { input_tokens: 2 ** 60, output_tokens: 1 } } });
  const ops = [post(run), patch(endOf(run, { tags: ["after"] }))].map(toUpsert);
  const merged = new TraceStore();
  const sequential = new TraceStore();
  try {
    assert.throws(() => merged.upsertRuns(ops), /too large to be represented/);
    assert.equal(merged.counts().runs, 0, "the failed batch is rolled back");
    assert.deepEqual(sequential.upsertRuns([ops[0] as RunUpsert]).accepted, [run.id]);
    assert.throws(() => sequential.upsertRuns([ops[1] as RunUpsert]), /too large to be represented/);
  } finally {
    merged.close();
    sequential.close();
  }
});
