// The read side of the local trace server through the SDK's own Client:
// pagination, filters, projects, trace summaries.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { traceable } from "langsmith/traceable";
import { HttpError } from "../setup/src/trace-server/body.js";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { parseQuery, queryList, queryString } from "../setup/src/trace-server/params.js";
import { childRun, collect, LOCAL_KEY, postJson, rootRun, sdkClient, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";

async function seed(server: TraceServerHandle, runs: WireRun[]): Promise<void> {
  const { status, json } = await postJson(server, "/runs/batch", { post: runs });
  assert.equal(status, 202, JSON.stringify(json));
}

test("listRuns pages through cursors without gaps or repeats, newest first", async (t) => {
  const server = await serverFor(t);
  const runs = Array.from({ length: 230 }, (_, i) => rootRun(`r${i}`, { session_name: "paging" }));
  await seed(server, runs.slice(0, 100));
  await seed(server, runs.slice(100));
  const client = sdkClient(server);
  const listed = await collect(client.listRuns({ projectName: "paging" }));
  assert.equal(listed.length, 230);
  assert.equal(new Set(listed.map((r) => r.id)).size, 230);
  assert.deepEqual(listed.map((r) => r.name), runs.map((r) => r.name).reverse());
  const firstFive = await collect(client.listRuns({ projectName: "paging", limit: 5 }));
  assert.deepEqual(firstFive.map((r) => r.name), ["r229", "r228", "r227", "r226", "r225"]);
  const asc = await collect(client.listRuns({ projectName: "paging", limit: 3, order: "asc" } as Parameters<typeof client.listRuns>[0]));
  assert.deepEqual(asc.map((r) => r.name), ["r0", "r1", "r2"]);

  const page = await postJson(server, "/runs/query", { session: [listed[0]?.session_id], limit: 100, select: ["name", "trace_id"] });
  const body = page.json as unknown as { runs: Array<Record<string, unknown>>; cursors: { next: string | null } };
  assert.equal(body.runs.length, 100);
  assert.deepEqual(Object.keys(body.runs[0] ?? {}).sort(), ["id", "name", "trace_id"]);
  assert.ok(body.cursors.next);
  const bad = await postJson(server, "/runs/query", { cursor: "garbage" });
  assert.equal(bad.status, 400);
});

test("filter expressions select runs the way LangSmith's do", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("agent", { session_name: "filters", tags: ["prod"], extra: { metadata: { customer: "acme", thread_id: "th-1" } } });
  const tool = childRun(root, "search-tool", { session_name: "filters", run_type: "tool", tags: ["beta"], start_time: "2030-01-01T00:00:00.000000Z", end_time: "2030-01-01T00:00:02.500000Z" });
  tool.dotted_order = `${root.dotted_order}.${tool.start_time.replace(/[-:.]/g, "")}${tool.id}`;
  const llm = childRun(root, "model", { session_name: "filters", run_type: "llm", error: "RateLimitError", extra: { metadata: { customer: "globex" } } });
  const other = rootRun("other", { session_name: "filters", extra: { metadata: { customer: "globex", thread_id: "th-2" } } });
  await seed(server, [root, tool, llm, other]);
  const client = sdkClient(server);
  const names = async (props: Parameters<typeof client.listRuns>[0]) => (await collect(client.listRuns({ projectName: "filters", ...props }))).map((r) => r.name).sort();

  assert.deepEqual(await names({ filter: 'eq(name, "model")' }), ["model"]);
  assert.deepEqual(await names({ filter: 'has(tags, "beta")' }), ["search-tool"]);
  assert.deepEqual(await names({ filter: 'and(eq(run_type, "llm"), eq(status, "error"))' }), ["model"]);
  assert.deepEqual(await names({ filter: 'or(eq(name, "agent"), eq(name, "other"))' }), ["agent", "other"]);
  assert.deepEqual(await names({ filter: 'not(eq(run_type, "chain"))' }), ["model", "search-tool"]);
  assert.deepEqual(await names({ filter: "gt(latency, 2)" }), ["search-tool"]);
  assert.deepEqual(await names({ filter: 'and(eq(metadata_key, "customer"), eq(metadata_value, "globex"))' }), ["model", "other"]);
  assert.deepEqual(await names({ filter: 'neq(error, null)' }), ["model"]);
  assert.deepEqual(await names({ filter: 'search("search-")' }), ["search-tool"]);
  assert.deepEqual(await names({ filter: 'gte(start_time, "2030-01-01T00:00:00Z")' }), ["search-tool"]);
  assert.deepEqual(await names({ traceFilter: 'has(tags, "prod")' }), ["agent", "model", "search-tool"]);
  assert.deepEqual(await names({ treeFilter: 'eq(name, "model")', isRoot: true }), ["agent"]);
  assert.deepEqual(await names({ runType: "tool" }), ["search-tool"]);
  assert.deepEqual(await names({ error: false, isRoot: true }), ["agent", "other"]);
  assert.deepEqual(await names({ id: [llm.id, other.id] }), ["model", "other"]);
  const thread = await collect(client.readThread({ threadId: "th-1", projectName: "filters" }));
  assert.deepEqual(thread.map((r) => r.name), ["agent"]);
  await assert.rejects(collect(client.listRuns({ projectName: "filters", filter: "eq(nonsense, 1)" })), /Received status \[400\].*unknown field nonsense/);
});

test("projects: create, read by name and id, conflict, upsert, stats, delete", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const created = await client.createProject({ projectName: "made-by-client", description: "from a test", metadata: { team: "qa" } });
  assert.equal(created.name, "made-by-client");
  assert.deepEqual(created.extra, { metadata: { team: "qa" } });
  await assert.rejects(client.createProject({ projectName: "made-by-client" }), /409/);
  assert.equal((await client.createProject({ projectName: "made-by-client", upsert: true })).id, created.id);
  assert.equal((await client.readProject({ projectName: "made-by-client" })).id, created.id);
  assert.equal((await client.readProject({ projectId: created.id })).name, "made-by-client");
  assert.equal(await client.hasProject({ projectName: "made-by-client" }), true);
  assert.equal(await client.hasProject({ projectName: "never-made" }), false);
  await assert.rejects(client.readProject({ projectName: "never-made" }), /not found/);

  const f = traceable(async () => "x", { name: "counted", client, project_name: "made-by-client" });
  await f();
  await client.awaitPendingTraceBatches();
  const withStats = (await client.readProject({ projectId: created.id, includeStats: true })) as unknown as Record<string, unknown>;
  assert.equal(withStats.run_count, 1);
  assert.equal(withStats.error_rate, 0);
  const all = await collect(client.listProjects());
  assert.deepEqual(all.map((p) => p.name).sort(), ["made-by-client"]);
  const byFragment = await collect(client.listProjects({ nameContains: "BY-CLI" }));
  assert.equal(byFragment.length, 1);

  await client.deleteProject({ projectId: created.id });
  assert.equal(await client.hasProject({ projectName: "made-by-client" }), false);
  assert.equal(server.store.counts().runs, 0);
});

test("list filters keep every value of a parameter repeated more than 20 times (projects by id, feedback by run)", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const projects = await Promise.all(Array.from({ length: 23 }, (_, i) => client.createProject({ projectName: `many-${i}` })));
  const asked = projects.slice(0, 21).map((p) => p.id);
  const listed = await collect(client.listProjects({ projectIds: asked }));
  assert.deepEqual(listed.map((p) => p.id).sort(), [...asked].sort());

  const runIds = Array.from({ length: 23 }, () => randomUUID());
  for (const runId of runIds) await client.createFeedback(runId, "seen", { score: 1 });
  const feedback = await collect(client.listFeedback({ runIds: runIds.slice(0, 21) }));
  assert.deepEqual(feedback.map((f) => f.run_id).sort(), runIds.slice(0, 21).sort());
});

test("the query parser makes only strings and string lists, and the list helpers refuse anything else", () => {
  const query = parseQuery(`${"id=a&".repeat(1500)}__proto__=p&a%5Bb%5D=c&one=1`);
  assert.equal(queryList(query, "id").length, 1500);
  assert.deepEqual(Object.keys(query), ["id", "__proto__", "a[b]", "one"]);
  assert.equal(queryString(query, "__proto__"), "p");
  assert.equal(queryString(query, "a[b]"), "c");
  assert.deepEqual(queryList(query, "one"), ["1"]);
  assert.deepEqual(queryList(query, "none"), []);
  // What qs ("extended") made of a 21st repeat: an object, once read as no filter at all.
  const nestedQuery = { id: { 0: "a", 20: "b" } } as unknown as Parameters<typeof queryList>[0];
  assert.throws(() => queryList(nestedQuery, "id"), (e) => e instanceof HttpError && e.status === 422 && /query parameter id must be id=<value>/.test(e.message));
});

test("listTraces summarizes services, errors, orphans and rejections per trace", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("front", { session_name: "summaries", extra: { metadata: { LANGSMITH_SERVICE: "web" } } });
  const down = childRun(root, "back", { session_name: "summaries", error: "boom", extra: { metadata: { LANGSMITH_SERVICE: "api" } } });
  const lost = childRun(down, "lost-parent-child", { session_name: "summaries" });
  lost.parent_run_id = randomUUID();
  lost.dotted_order = `${root.dotted_order}.${lost.dotted_order.split(".").at(-1)}`;
  const dangling = childRun(rootRun("never-sent"), "dangling", { session_name: "summaries", extra: { metadata: { LANGSMITH_SERVICE: "worker" } } });
  const { status } = await postJson(server, "/runs/batch", { post: [root, down, lost, dangling] });
  assert.equal(status, 422);

  const res = await fetch(`${server.url}/api/traces?project=summaries`, { headers: { "x-api-key": LOCAL_KEY } });
  const { traces } = (await res.json()) as { traces: Array<Record<string, unknown>> };
  assert.equal(traces.length, 2);
  const front = traces.find((tr) => tr.trace_id === root.id);
  assert.deepEqual(front, {
    trace_id: root.id,
    root_run_id: root.id,
    root_name: "front",
    project_ids: [server.store.getProjectByName("summaries")?.id],
    project_names: ["summaries"],
    services: ["api", "web"],
    run_count: 2,
    start_time: root.start_time,
    end_time: null,
    error_count: 1,
    orphan_count: 0,
    rejected_count: 1,
    status: "error",
  });
  const other = traces.find((tr) => tr.trace_id === dangling.trace_id);
  assert.equal(other?.root_name, null);
  assert.equal(other?.orphan_count, 1);
  assert.deepEqual(server.store.listTraces({ service: "worker" }).map((s) => s.trace_id), [dangling.trace_id]);

  const one = await fetch(`${server.url}/api/traces/${root.id}`, { headers: { "x-api-key": LOCAL_KEY } });
  const detail = (await one.json()) as { runs: Array<{ name: string }>; rejections: Array<{ rule: string }> };
  assert.deepEqual(detail.runs.map((r) => r.name), ["front", "back"]);
  assert.deepEqual(detail.rejections.map((r) => r.rule), ["child_parent_id"]);
});

test("token counts come from LLM outputs and add up on the runs above them", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("chain", { session_name: "tokens" });
  const a = childRun(root, "llm-a", { session_name: "tokens", run_type: "llm", outputs: { usage_metadata: { input_tokens: 10, output_tokens: 5, total_tokens: 15 } } });
  const b = childRun(root, "llm-b", {
    session_name: "tokens",
    run_type: "llm",
    outputs: { llm_output: { tokenUsage: { promptTokens: 3, completionTokens: 4, totalTokens: 7 } } },
  });
  await seed(server, [root, a, b]);
  const client = sdkClient(server);
  const chain = await client.readRun(root.id);
  assert.deepEqual([chain.prompt_tokens, chain.completion_tokens, chain.total_tokens], [13, 9, 22]);
  const llmB = await client.readRun(b.id);
  assert.deepEqual([llmB.prompt_tokens, llmB.completion_tokens, llmB.total_tokens], [3, 4, 7]);
  assert.equal(server.store.projectStats(chain.session_id ?? "").total_tokens, 22);
});
