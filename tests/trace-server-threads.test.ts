// Threads, traces queries, createRun without an id and listProjects by metadata,
// through langsmith 0.12's own Client methods against the local trace server.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Client } from "langsmith";
import { APIError } from "langsmith/error";
import { collect, postJson, sdkClient, serverFor } from "./fixtures/trace-server/helpers.js";
import { DAY, micros, MINUTE, seedConversations, type Conversations } from "./fixtures/trace-server/conversations.js";

async function projectId(client: Client, name = "chat"): Promise<string> {
  return (await client.readProject({ projectName: name })).id;
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return undefined;
  } catch (e) {
    return e instanceof APIError ? e.status : -1;
  }
}

test("runs carry thread_id from thread_id, session_id or conversation_id metadata, in v1 and v2 reads", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const seed = await seedConversations(server);
  const pid = await projectId(client);

  const v2 = await collect(client.runs.query({ project_ids: [pid], is_root: true, selects: ["NAME", "THREAD_ID"] }));
  assert.deepEqual(
    Object.fromEntries(v2.map((r) => [r.name, r.thread_id])),
    { "turn one": "t-1", "turn two": "t-1", "turn three": "t-1", "support chat": "t-2", "small talk": "t-3", "no thread": null },
  );
  // listRuns is v1 (/runs/query), the route listThreads and readThread use.
  // The SDK's Run type has no thread_id, though LangSmith's run schema (and listThreads) has it.
  const threadOf = (run: object | undefined): unknown => (run as { thread_id?: unknown } | undefined)?.thread_id;
  const v1 = await collect(client.listRuns({ projectName: "chat", isRoot: true, select: ["id", "name", "thread_id"] }));
  assert.equal(threadOf(v1.find((r) => r.id === seed.t2.root.id)), "t-2", "session_id outranks conversation_id");
  assert.equal(threadOf(v1.find((r) => r.id === seed.loose.id)), null);
  assert.equal(threadOf(await client.readRun(seed.t1[1]?.root.id as string)), "t-1");
});

test("client.listThreads and readThread group a project's root runs by thread", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const seed = await seedConversations(server);

  const threads = await client.listThreads({ projectName: "chat" });
  // Newest activity first; the default window of one day leaves out t-1's old turn.
  assert.deepEqual(threads.map((th) => [th.thread_id, th.count]), [["t-3", 1], ["t-2", 1], ["t-1", 3]]);
  assert.deepEqual(threads[2]?.runs.map((r) => r.name), ["turn one", "turn two", "turn three"]);

  const all = await collect(client.readThread({ threadId: "t-1", projectName: "chat" }));
  assert.deepEqual(all.map((r) => r.id), seed.t1.map((x) => x.root.id), "every turn of t-1 in this project, oldest first");
});

test("client.threads.query summarises each thread of the window, paging with the SDK's cursor", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const seed = await seedConversations(server);
  const pid = await projectId(client);

  const threads = await collect(client.threads.query({ project_id: pid, page_size: 1 }));
  assert.deepEqual(threads.map((th) => th.thread_id), ["t-3", "t-2", "t-1"]);
  const t1 = threads[2];
  const [, one, , three] = seed.t1 as [unknown, Conversations["t2"], unknown, Conversations["t2"]];
  assert.equal(t1?.count, 3);
  assert.equal(t1?.first_trace_id, one.root.id);
  assert.equal(t1?.last_trace_id, three.root.id);
  assert.equal(t1?.min_start_time, one.root.start_time);
  assert.equal(t1?.max_start_time, three.root.start_time);
  assert.equal(t1?.num_errored_turns, 1);
  assert.equal(t1?.last_error, "boom");
  assert.equal(t1?.total_tokens, 15 + 30 + 45);
  // Latencies 2, 4 and 1 s; nearest rank: sorted [1, 2, 4], p50 at index 1, p99 at index 2.
  assert.equal(t1?.latency_p50, 2);
  assert.equal(t1?.latency_p99, 4);
  assert.equal(t1?.first_inputs, JSON.stringify(one.root.inputs));
  assert.equal(t1?.last_outputs, JSON.stringify(three.root.outputs));
  assert.equal(t1?.last_error !== undefined && threads[0]?.last_error, undefined, "no error, no last_error");

  const wide = await collect(client.threads.query({ project_id: pid, min_start_time: micros(seed.now - 4 * DAY) }));
  assert.equal(wide.find((th) => th.thread_id === "t-1")?.count, 4, "a wider window takes in the old turn");
  const filtered = await collect(client.threads.query({ project_id: pid, filter: 'eq(name, "turn two")' }));
  assert.deepEqual(filtered.map((th) => [th.thread_id, th.count]), [["t-1", 1]]);
  const byTrace = await collect(client.threads.query({ project_id: pid, trace_filter: 'eq(status, "error")' }));
  assert.deepEqual(byTrace.map((th) => [th.thread_id, th.count]), [["t-1", 3]], "trace_filter keeps the whole thread");
  const byTree = await collect(client.threads.query({ project_id: pid, tree_filter: 'eq(run_type, "llm")' }));
  assert.deepEqual(byTree.map((th) => th.thread_id), ["t-2", "t-1"]);
});

test("client.threads.listTraces lists every turn in order; client.threads.stats totals them", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const seed = await seedConversations(server);
  const pid = await projectId(client);

  const bare = await collect(client.threads.listTraces("t-1", { project_id: pid }));
  assert.deepEqual(bare, seed.t1.map((x) => ({ trace_id: x.root.id })), "without selects only trace_id, all time, oldest first");

  const turns = await collect(
    client.threads.listTraces("t-1", { project_id: pid, page_size: 3, selects: ["TURN_NUMBER", "NAME", "TOTAL_TOKENS", "PROMPT_TOKENS", "LATENCY", "ERROR", "FIRST_TOKEN_TIME", "THREAD_ID"] }),
  );
  assert.deepEqual(
    turns.map((x) => [x.turn_number, x.name, x.total_tokens, x.prompt_tokens, x.latency, x.error, x.thread_id]),
    [
      [1, "old turn", 2, 1, 1, null, "t-1"],
      [2, "turn one", 15, 10, 2, null, "t-1"],
      [3, "turn two", 30, 20, 4, "boom", "t-1"],
      [4, "turn three", 45, 30, 1, null, "t-1"],
    ],
  );
  assert.equal(turns[3]?.first_token_time, micros(seed.now - 30 * MINUTE + 500));
  assert.equal(turns[0]?.first_token_time, null);
  const filtered = await collect(client.threads.listTraces("t-1", { project_id: pid, filter: 'gte(latency, 2)', selects: ["TURN_NUMBER"] }));
  assert.deepEqual(filtered.map((x) => x.turn_number), [2, 3], "turn numbers count the whole thread, before filtering");
  assert.deepEqual(await collect(client.threads.listTraces("no-such-thread", { project_id: pid })), []);

  const stats = await client.threads.stats("t-1", {
    session_id: pid,
    selects: ["TURNS", "FIRST_START_TIME", "LAST_START_TIME", "LAST_END_TIME", "LATENCY_P50", "LATENCY_P99", "TOTAL_TOKENS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "TOTAL_COST"],
  });
  const last = seed.t1[3]?.root;
  assert.deepEqual(stats, {
    turns: 4,
    first_start_time: seed.t1[0]?.root.start_time,
    last_start_time: last?.start_time,
    last_end_time: last?.end_time,
    // Latencies 1, 2, 4, 1 s -> sorted [1, 1, 2, 4]: p50 at index 2, p99 at index 3.
    latency_p50_seconds: 2,
    latency_p99_seconds: 4,
    total_tokens: 2 + 15 + 30 + 45,
    prompt_tokens: 1 + 10 + 20 + 30,
    completion_tokens: 1 + 5 + 10 + 15,
    total_cost: null,
  });
});

test("client.threads.aggregateStats counts threads and traces of the window", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  await seedConversations(server);
  const pid = await projectId(client);
  const stats = await client.threads.aggregateStats({
    project_id: pid,
    select: ["THREAD_COUNT", "TRACE_COUNT", "TOTAL_TOKENS", "ERROR_RATE", "LATENCY_P50", "STREAMING_RATE", "MEDIAN_TOKENS"],
  });
  // Five traces in threads in the window: t-1 (2, 4, 1 s; 15, 30, 45 tokens), t-2 (3 s, 20), t-3 (0.5 s, 0).
  assert.deepEqual(stats, {
    thread_count: 3,
    trace_count: 5,
    total_tokens: 15 + 30 + 45 + 20,
    error_rate: 1 / 5,
    latency_p50_seconds: 2,
    streaming_rate: 1 / 5,
    median_tokens: 20,
  });
});

test("thread routes refuse what the local server cannot answer with a 501 the SDK does not retry", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (line) => log.push(line) });
  const client = sdkClient(server);
  await seedConversations(server);
  const pid = await projectId(client);
  assert.equal(await statusOf(collect(client.threads.query({ project_id: pid, thread_filter: "gt(count, 1)" }))), 501);
  assert.equal(await statusOf(collect(client.threads.listTraces("t-1", { project_id: pid, selects: ["OP"] }))), 501);
  assert.equal(await statusOf(client.threads.share.create("t-1", { project_id: pid })), 501);
  assert.equal(log.filter((l) => l.startsWith("POST /api/v2/threads/query")).length, 1, "no retries");
  assert.equal(await statusOf(client.threads.stats("t-1", { session_id: pid, selects: [] })), 422);
  assert.equal(await statusOf(collect(client.threads.query({ project_id: pid, page_size: 0 }))), 422);
  assert.equal(await statusOf(collect(client.threads.query({ project_id: pid, cursor: "nonsense" }))), 422);
  const { status } = await postJson(server, "/api/v2/threads/query", { project_id: pid, bogus: 1 });
  assert.equal(status, 422);
  const inherited = await fetch(`${server.url}/api/v2/threads/t-1/stats?session_id=${pid}&selects=toString`, { headers: { "x-api-key": "local" } });
  assert.equal(inherited.status, 422, "a select name is an own field, not an inherited one");
});

test("client.traces.query lists root runs with trace-wide aggregates", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const seed = await seedConversations(server);
  const pid = await projectId(client);

  const bare = await collect(client.traces.query({ project_id: pid }));
  assert.equal(bare.length, 6, "the roots of the last day: three of t-1, t-2, t-3 and the loose one");
  assert.deepEqual(bare[0], { root_run: { id: seed.loose.id }, query_metadata: null });

  const one = seed.t1[3];
  const items = await collect(client.traces.query({ project_id: pid, trace_ids: [one?.root.id as string], selects: ["NAME", "STATUS", "TOTAL_TOKENS", "FIRST_TOKEN_TIME"] }));
  assert.deepEqual(items, [
    {
      root_run: { id: one?.root.id, name: "turn three", status: "SUCCESS" },
      trace_aggregates: { total_tokens: 45, first_token_time: micros(seed.now - 30 * MINUTE + 500) },
      query_metadata: null,
    },
  ]);
  const errors = await collect(client.traces.query({ project_id: pid, trace_filter: 'eq(status, "error")', selects: ["NAME"] }));
  assert.deepEqual(errors.map((i) => i.root_run?.name), ["turn two"]);
  const withLlm = await collect(client.traces.query({ project_id: pid, tree_filter: 'eq(run_type, "llm")', page_size: 2, selects: ["NAME"] }));
  assert.deepEqual(withLlm.map((i) => i.root_run?.name), ["support chat", "turn three", "turn two", "turn one"]);
  assert.equal(await statusOf(collect(client.traces.query({ project_id: pid, ai_search: "angry users" }))), 501);
});

test("client.createRun without an id: the server assigns one, as LangSmith does", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  await client.createRun({ name: "no id given", run_type: "chain", inputs: { q: 1 }, project_name: "no-ids" });
  const [root] = await collect(client.listRuns({ projectName: "no-ids" }));
  assert.ok(root?.id, "stored under an id the server chose");
  assert.equal(root.trace_id, root.id);
  assert.equal(root.name, "no id given");

  await client.createRun({ name: "child without id", run_type: "tool", inputs: {}, parent_run_id: root.id, project_name: "no-ids" });
  const runs = await collect(client.listRuns({ projectName: "no-ids", traceId: root.id }));
  const child = runs.find((r) => r.name === "child without id");
  assert.equal(child?.parent_run_id, root.id);
  assert.equal(child?.trace_id, root.id);
  assert.ok(child?.dotted_order?.startsWith(`${root.dotted_order}.`));
});

test("client.listProjects({ metadata }) returns the projects whose metadata has every pair", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  await client.createProject({ projectName: "team-a", metadata: { team: "a", env: "prod" } });
  await client.createProject({ projectName: "team-a-dev", metadata: { team: "a", env: "dev" } });
  await client.createProject({ projectName: "flagged", metadata: { team: "b", beta: true } });
  await client.createProject({ projectName: "numbered", metadata: { team: "b", beta: 1 } });
  await client.createProject({ projectName: "plain" });
  const names = async (metadata: Record<string, unknown>): Promise<string[]> => (await collect(client.listProjects({ metadata }))).map((p) => p.name as string).sort();
  assert.deepEqual(await names({ team: "a" }), ["team-a", "team-a-dev"]);
  assert.deepEqual(await names({ team: "a", env: "dev" }), ["team-a-dev"]);
  assert.deepEqual(await names({ beta: true }), ["flagged"], "true is not 1");
  assert.deepEqual(await names({ team: "z" }), []);
  const res = await fetch(`${server.url}/sessions?metadata=${encodeURIComponent("not json")}`, { headers: { "x-api-key": "local" } });
  assert.equal(res.status, 422);
  const proto = await fetch(`${server.url}/sessions?metadata=${encodeURIComponent('{"__proto__":{}}')}`, { headers: { "x-api-key": "local" } });
  assert.deepEqual(await proto.json(), [], "no project has an own __proto__ key");
});
