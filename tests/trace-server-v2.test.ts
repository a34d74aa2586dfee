// The v2 read API of the local trace server through the SDK's generated resources
// (client.runs.query / client.runs.retrieve / client.traces.listRuns), as langsmith 0.12 sends it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { Client } from "langsmith";
import { APIError } from "langsmith/error";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { RUN_SELECT_FIELDS } from "../setup/src/trace-server/v2.js";
import { collect, postJson, sdkClient, segment, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** ISO with microseconds, as the SDK sends start times. */
function micros(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "000Z");
}

/** A run starting at `startMs`, a root when there is no parent. */
function runAt(parent: WireRun | undefined, name: string, startMs: number, extra: Partial<WireRun> = {}): WireRun {
  const id = randomUUID();
  const start = micros(startMs);
  const own = segment(start, id);
  return {
    id,
    trace_id: parent?.trace_id ?? id,
    ...(parent ? { parent_run_id: parent.id } : {}),
    dotted_order: parent ? `${parent.dotted_order}.${own}` : own,
    name,
    run_type: "chain",
    start_time: start,
    end_time: micros(startMs + 5),
    inputs: { name },
    session_name: "v2",
    ...extra,
  };
}

async function seed(server: TraceServerHandle, runs: WireRun[]): Promise<void> {
  const { status, json } = await postJson(server, "/runs/batch", { post: runs });
  assert.equal(status, 202, JSON.stringify(json));
}

async function projectId(client: Client, name = "v2"): Promise<string> {
  return (await client.readProject({ projectName: name })).id;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof APIError ? error.status : undefined;
}

test("runs.query pages through one trace's runs, newest first, returning only the selected fields", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (line) => log.push(line) });
  const client = sdkClient(server);
  const now = Date.now();
  const root = runAt(undefined, "root", now - 10 * MINUTE);
  const children = Array.from({ length: 7 }, (_, i) => runAt(root, `step-${i}`, now - 9 * MINUTE + i * 1000));
  const other = runAt(undefined, "other-trace", now - 5 * MINUTE);
  await seed(server, [root, ...children, other]);
  const project = await projectId(client);

  const params = { project_ids: [project], trace_id: root.id, selects: ["NAME", "PARENT_RUN_IDS", "IS_ROOT"] as const, page_size: 3 };
  const first = await client.runs.query({ ...params, selects: [...params.selects] });
  assert.equal(first.items.length, 3);
  assert.ok(first.next_cursor, "a first page of a longer result carries a cursor");
  assert.deepEqual(Object.keys(first.items[0] ?? {}).sort(), ["id", "is_root", "name", "parent_run_ids"]);

  const queriesBefore = log.filter((l) => l.startsWith("POST /api/v2/runs/query")).length;
  const all = await collect(client.runs.query({ ...params, selects: [...params.selects] }));
  assert.equal(log.filter((l) => l.startsWith("POST /api/v2/runs/query")).length - queriesBefore, 3, "8 runs in pages of 3");
  assert.deepEqual(
    all.map((r) => r.name),
    ["step-6", "step-5", "step-4", "step-3", "step-2", "step-1", "step-0", "root"],
  );
  assert.equal(new Set(all.map((r) => r.id)).size, 8);
  assert.deepEqual(all.at(-1), { id: root.id, name: "root", parent_run_ids: [], is_root: true });
  assert.deepEqual(all[0]?.parent_run_ids, [root.id]);

  const idsOnly = await collect(client.runs.query({ project_ids: [project], trace_id: other.id }));
  assert.deepEqual(idsOnly, [{ id: other.id }], "without selects only the id comes back");
});

test("runs.query returns v2 field values: upper-case run_type and status, project_id, metadata, tokens", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const now = Date.now();
  const root = runAt(undefined, "agent", now - MINUTE, { tags: ["prod"], extra: { metadata: { LANGSMITH_SERVICE: "gateway", thread_id: "th-1" } } });
  const llm = runAt(root, "model", now - MINUTE + 10, {
    run_type: "llm",
    outputs: { usage_metadata: { input_tokens: 10, output_tokens: 5, total_tokens: 15 } },
    events: [{ name: "new_token", time: micros(now - MINUTE + 12) }],
  });
  const failed = runAt(root, "tool", now - MINUTE + 20, { run_type: "tool", error: "ValueError: boom" });
  const pending = runAt(root, "still-running", now - MINUTE + 30, { end_time: undefined });
  await seed(server, [root, llm, failed, pending]);
  const project = await projectId(client);
  const selects = ["NAME", "RUN_TYPE", "STATUS", "PROJECT_ID", "TRACE_ID", "METADATA", "THREAD_ID", "TAGS", "ERROR", "END_TIME", "LATENCY_SECONDS", "TOTAL_TOKENS", "FIRST_TOKEN_TIME", "TOTAL_COST"] as const;
  const byName = new Map((await collect(client.runs.query({ project_ids: [project], trace_id: root.id, selects: [...selects] }))).map((r) => [r.name, r]));

  const agent = byName.get("agent");
  assert.equal(agent?.run_type, "CHAIN");
  assert.equal(agent?.status, "SUCCESS");
  assert.equal(agent?.project_id, project);
  assert.equal(agent?.trace_id, root.id);
  assert.deepEqual(agent?.metadata, { LANGSMITH_SERVICE: "gateway", thread_id: "th-1" });
  assert.equal(agent?.thread_id, "th-1");
  assert.deepEqual(agent?.tags, ["prod"]);
  assert.equal(agent?.total_tokens, 0, "a chain's own usage: subtree sums only with include_subtree_usage");
  assert.equal(agent?.total_cost, null, "nothing is priced locally");
  assert.equal(byName.get("model")?.run_type, "LLM");
  assert.equal(byName.get("model")?.total_tokens, 15);
  assert.equal(byName.get("model")?.first_token_time, micros(now - MINUTE + 12));
  assert.equal(byName.get("model")?.latency_seconds, 0.005);
  assert.equal(byName.get("tool")?.status, "ERROR");
  assert.equal(byName.get("tool")?.error, "ValueError: boom");
  assert.equal(byName.get("still-running")?.status, "PENDING");
  assert.equal(byName.get("still-running")?.end_time, null);

  const [withSubtree] = await collect(client.runs.query({ project_ids: [project], ids: [root.id], include_subtree_usage: true, selects: ["TOTAL_TOKENS", "FIRST_TOKEN_TIME"] }));
  assert.deepEqual(withSubtree, { id: root.id, total_tokens: 15, first_token_time: micros(now - MINUTE + 12) });
});

test("runs.query filters: is_root, has_error, run_type, ids, filter expressions, and the project list", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const now = Date.now();
  const root = runAt(undefined, "agent", now - 3 * MINUTE, { tags: ["prod"] });
  const tool = runAt(root, "search", now - 3 * MINUTE + 10, { run_type: "tool" });
  const llm = runAt(root, "model", now - 3 * MINUTE + 20, { run_type: "llm", error: "RateLimitError" });
  const elsewhere = runAt(undefined, "elsewhere", now - 2 * MINUTE, { session_name: "v2-other" });
  await seed(server, [root, tool, llm, elsewhere]);
  const project = await projectId(client);
  const other = await projectId(client, "v2-other");
  const names = async (params: Omit<Parameters<Client["runs"]["query"]>[0], "project_ids" | "selects"> & { project_ids?: string[] }): Promise<string[]> =>
    (await collect(client.runs.query({ project_ids: [project], selects: ["NAME"], ...params }))).map((r) => r.name ?? "").sort();

  assert.deepEqual(await names({}), ["agent", "model", "search"]);
  assert.deepEqual(await names({ project_ids: [project, other] }), ["agent", "elsewhere", "model", "search"]);
  assert.deepEqual(await names({ project_ids: [other] }), ["elsewhere"]);
  assert.deepEqual(await names({ is_root: true }), ["agent"]);
  assert.deepEqual(await names({ is_root: false }), ["model", "search"]);
  assert.deepEqual(await names({ has_error: true }), ["model"]);
  assert.deepEqual(await names({ run_type: "TOOL" }), ["search"]);
  assert.deepEqual(await names({ ids: [tool.id, llm.id] }), ["model", "search"]);
  assert.deepEqual(await names({ filter: 'eq(name, "search")' }), ["search"]);
  assert.deepEqual(await names({ trace_filter: 'has(tags, "prod")' }), ["agent", "model", "search"]);
  assert.deepEqual(await names({ tree_filter: 'eq(run_type, "llm")', is_root: true }), ["agent"]);
});

test("runs.query looks at the last day unless min_start_time / max_start_time say otherwise", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const now = Date.now();
  const old = runAt(undefined, "three-days-ago", now - 3 * DAY);
  const recent = runAt(undefined, "an-hour-ago", now - 60 * MINUTE);
  const future = runAt(undefined, "in-ten-minutes", now + 10 * MINUTE);
  await seed(server, [old, recent, future]);
  const project = await projectId(client);
  const names = async (window: { min_start_time?: string; max_start_time?: string }): Promise<string[]> =>
    (await collect(client.runs.query({ project_ids: [project], selects: ["NAME"], ...window }))).map((r) => r.name ?? "");

  assert.deepEqual(await names({}), ["an-hour-ago"]);
  assert.deepEqual(await names({ min_start_time: new Date(now - 4 * DAY).toISOString() }), ["an-hour-ago", "three-days-ago"]);
  assert.deepEqual(await names({ max_start_time: new Date(now + DAY).toISOString() }), ["in-ten-minutes", "an-hour-ago"]);
  assert.deepEqual(await names({ min_start_time: new Date(now - 4 * DAY).toISOString(), max_start_time: new Date(now - 2 * DAY).toISOString() }), ["three-days-ago"]);
});

test("runs.retrieve reads one run of the given project; another project's run is a 404", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const now = Date.now();
  const root = runAt(undefined, "agent", now - MINUTE);
  const child = runAt(root, "step", now - MINUTE + 10, { outputs: { answer: 42 } });
  const elsewhere = runAt(undefined, "elsewhere", now - MINUTE, { session_name: "v2-other" });
  await seed(server, [root, child, elsewhere]);
  const project = await projectId(client);

  const run = await client.runs.retrieve(child.id, { project_id: project, selects: ["NAME", "OUTPUTS", "PARENT_RUN_IDS", "DOTTED_ORDER"], start_time: child.start_time });
  assert.deepEqual(run, { id: child.id, name: "step", outputs: { answer: 42 }, parent_run_ids: [root.id], dotted_order: child.dotted_order });
  assert.deepEqual(await client.runs.retrieve(root.id, { project_id: project }), { id: root.id });
  await assert.rejects(client.runs.retrieve(elsewhere.id, { project_id: project }), (e) => statusOf(e) === 404);
  await assert.rejects(client.runs.retrieve(randomUUID(), { project_id: project }), (e) => statusOf(e) === 404);
});

test("traces.listRuns returns a trace's runs of one project in execution order", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const now = Date.now();
  const root = runAt(undefined, "agent", now - MINUTE);
  const a = runAt(root, "first", now - MINUTE + 10, { run_type: "llm" });
  const b = runAt(root, "second", now - MINUTE + 20);
  const remote = runAt(root, "remote", now - MINUTE + 30, { session_name: "v2-other" });
  await seed(server, [b, root, remote, a]);
  const project = await projectId(client);

  const { items } = await client.traces.listRuns(root.id, { project_id: project, selects: ["NAME"] });
  assert.deepEqual(items?.map((r) => r.name), ["agent", "first", "second"]);
  const llms = await client.traces.listRuns(root.id, { project_id: project, selects: ["NAME"], filter: 'eq(run_type, "llm")' });
  assert.deepEqual(llms.items?.map((r) => r.name), ["first"]);
});

test("traces.listRuns and runs.retrieve return every selected field, however many are selected", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const root = runAt(undefined, "agent", Date.now() - MINUTE);
  await seed(server, [root]);
  const project = await projectId(client);
  // More than qs's 20-item array limit, past which the query string once read as no selects at all.
  const selects = RUN_SELECT_FIELDS.slice(0, 30);
  const expected = selects.map((f) => f.toLowerCase()).sort();
  assert.ok(expected.includes("id"));
  const { items } = await client.traces.listRuns(root.id, { project_id: project, selects: [...selects] });
  assert.deepEqual(items?.map((r) => Object.keys(r).sort()), [expected]);
  assert.equal(items?.[0]?.name, "agent");
  const one = await client.runs.retrieve(root.id, { project_id: project, selects: [...RUN_SELECT_FIELDS] });
  assert.deepEqual(Object.keys(one).sort(), RUN_SELECT_FIELDS.map((f) => f.toLowerCase()).sort());
});

test("requests outside the documented shape are refused with a reason; missing features are a 501 the SDK does not retry", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (line) => log.push(line) });
  const client = sdkClient(server);
  await seed(server, [runAt(undefined, "agent", Date.now())]);
  const project = await projectId(client);
  const query = (body: unknown) => postJson(server, "/api/v2/runs/query", body);

  const missing = await query({ trace_id: randomUUID() });
  assert.equal(missing.status, 422);
  assert.match(String(missing.json.detail), /project_ids is required/);
  assert.match(String((await query({ project_ids: [] })).json.detail), /project_ids is required/);
  const invented = await query({ project_ids: [project], session: [project] });
  assert.equal(invented.status, 422);
  assert.match(String(invented.json.detail), /unknown parameter "session"/);
  assert.match(String((await query({ project_ids: [project], run_type: "llm" })).json.detail), /run_type must be one of TOOL, CHAIN, LLM/);
  assert.match(String((await query({ project_ids: [project], selects: ["name"] })).json.detail), /selects: unknown field "name"/);
  assert.match(String((await query({ project_ids: [project], min_start_time: "yesterday" })).json.detail), /min_start_time must be an RFC 3339 time/);
  assert.equal((await query({ project_ids: [project], cursor: "garbage" })).status, 400);

  const res = await fetch(`${server.url}/api/v2/runs/query`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "local" },
    body: JSON.stringify({ project_ids: [project], ai_search: "runs that apologise" }),
  });
  assert.equal(res.status, 501);
  assert.equal(res.headers.get("x-should-retry"), "false");
  const before = log.length;
  await assert.rejects(collect(client.runs.query({ project_ids: [project], ai_search: "runs that apologise" })), (e) => statusOf(e) === 501);
  assert.equal(log.slice(before).filter((l) => l.startsWith("POST /api/v2/runs/query 501")).length, 1, "one request, no retries");

  await assert.rejects(client.runs.retrieve(randomUUID(), {} as { project_id: string }), (e) => statusOf(e) === 422);
  const unknownParam = await fetch(`${server.url}/api/v2/runs/${randomUUID()}?project_id=${project}&select=NAME`, { headers: { "x-api-key": "local" } });
  assert.equal(unknownParam.status, 422);
  await assert.rejects(client.traces.listRuns(randomUUID(), { project_id: project, min_start_time: new Date().toISOString() }), (e) => statusOf(e) === 422);
});

test("the v2 routes require the API key when one is configured", async (t) => {
  const server = await serverFor(t, { apiKey: "secret-key" });
  const project = randomUUID();
  await assert.rejects(collect(sdkClient(server, "wrong-key").runs.query({ project_ids: [project] })), (e) => statusOf(e) === 401);
  assert.deepEqual(await collect(sdkClient(server, "secret-key").runs.query({ project_ids: [project] })), []);
});

/** Exposes the SDK's own /info fetch so the test can wait for its version check to finish. */
class InfoClient extends Client {
  serverInfo(): Promise<Record<string, unknown>> {
    return this._ensureServerInfo();
  }
}

test("/info reports 0.16.0+local: client.runs and client.traces pass the SDK's version check, client.sessions (0.18) does not", async (t) => {
  const server = await serverFor(t);
  const info = (await (await fetch(`${server.url}/info`)).json()) as { version: string };
  assert.equal(info.version, "0.16.0+local");

  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(" "));
  t.after(() => {
    console.warn = original;
  });
  sdkClient(server);
  const client = new InfoClient({ apiUrl: server.url, apiKey: "local" });
  assert.ok(client.runs && client.traces);
  await client.serverInfo();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(warnings, []);

  assert.ok(client.sessions);
  await client.serverInfo();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? "", /Backend version "0\.16\.0\+local" is older than the minimum version required by this SDK \("0\.18\.0"\)/);
});
