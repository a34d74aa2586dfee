// The three processes for real, the LangGraph Agent Server included. One
// request to the supervisor must leave one complete trace across all three,
// read back through the SDK, with the caller's thread and user ids on every
// run, LLM and tool runs of the agents included.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import { Client as AgentServerClient } from "@langchain/langgraph-sdk";
import type { RunSelectField } from "langsmith/resources";
import { assertTrace, formatReport, readTrace, runFromV2 } from "@tracing-patterns/setup";
import { spawnService } from "../launch.js";
import { serverThreadId, WRITING_AGENT_ID } from "../services/writing-client.js";
import { RESEARCH_ROUTE_SHAPE, SERVICES, WRITING_ROUTE_SHAPE, byName, postRun, serviceOfRun, shape, startTestStack, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("langgraph-agent-one-request");
});

after(async () => {
  await stack?.close();
});

async function traceOf(traceId: string, runs: number): Promise<Run[]> {
  return readTrace(traceId, { client: stack.client, expectRuns: runs, timeoutMs: 20_000 });
}

test("a question is one trace: supervisor -> research service -> Agent Server, nested by node", async () => {
  const response = await postRun(stack.agents.urls.supervisor, {
    message: "Look up in the notes how baggage carries the user id to the next service.",
    thread_id: "thread-one",
    user_id: "alice",
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  assert.match(response.traceId, /^[0-9a-f-]{36}$/);
  assert.equal(response.body.traceId, response.traceId);
  assert.equal(response.body.route, "research");
  assert.deepEqual(response.body.sources, ["doc-baggage", "doc-trace-header"]);
  assert.match(String(response.body.answer), /References: \[1\] Baggage \(doc-baggage\)/);

  const runs = await traceOf(response.traceId, RESEARCH_ROUTE_SHAPE.length);
  const report = assertTrace(runs, { traceId: response.traceId, rootName: "POST /run", services: SERVICES, minRuns: RESEARCH_ROUTE_SHAPE.length });
  assert.equal(report.completeness, 100, formatReport(report));
  assert.equal(report.propagation, 100, formatReport(report));
  assert.deepEqual(shape(runs), RESEARCH_ROUTE_SHAPE);
  for (const run of runs) {
    assert.equal(run.trace_id, response.traceId, run.name);
    assert.equal(run.error ?? undefined, undefined, `${run.name}: ${run.error}`);
  }
  // Across each process boundary the callee's first run hangs under the node that called it.
  const researchNode = byName(runs, "research_agent", "supervisor");
  const writingNode = byName(runs, "writing_agent", "supervisor");
  assert.equal(byName(runs, "POST /research").parent_run_id, researchNode.id);
  assert.equal(byName(runs, "writing_agent", "writing-agent").parent_run_id, writingNode.id);
  assert.equal(byName(runs, "POST /research").extra?.metadata?.["trace.inbound"], "continued");
  // Real model calls with tool calling on both agents, and the tools' real inputs and outputs.
  for (const service of ["research-agent", "writing-agent"]) {
    const llm = runs.filter((r) => r.run_type === "llm" && serviceOfRun(r) === service);
    assert.equal(llm.length, 2, service);
    assert.match(JSON.stringify(llm.map((r) => r.outputs)), /tool_calls/, `${service}: the first model call asks for the tool`);
  }
  assert.match(JSON.stringify(byName(runs, "search_notes").outputs), /doc-baggage/);
  assert.match(JSON.stringify(byName(runs, "format_citations").outputs), /References: \[1\] Baggage/);
});

test("the request's thread_id and user_id are on every run, LLM and tool runs of both agents included", async () => {
  const response = await postRun(stack.agents.urls.supervisor, { message: "Explain per-team projects from the notes.", thread_id: "thread-meta", user_id: "bob" });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const runs = await traceOf(response.traceId, RESEARCH_ROUTE_SHAPE.length);
  assertTrace(runs, { traceId: response.traceId, rootName: "POST /run", services: SERVICES });
  const missing = runs
    .filter((r) => r.extra?.metadata?.thread_id !== "thread-meta" || r.extra?.metadata?.user_id !== "bob")
    .map((r) => `${r.name} (${r.run_type}) [${String(serviceOfRun(r))}]: ${JSON.stringify({ thread_id: r.extra?.metadata?.thread_id, user_id: r.extra?.metadata?.user_id })}`);
  assert.deepEqual(missing, []);
  const kinds = new Set(runs.filter((r) => serviceOfRun(r) !== "supervisor").map((r) => r.run_type));
  assert.deepEqual([...kinds].sort(), ["chain", "llm", "tool"]);
});

test("a text to format goes straight to the writing agent, still one trace", async () => {
  const response = await postRun(stack.agents.urls.supervisor, {
    message: "Format the citations of this draft: doc-threads says every call on a thread sends its own headers.",
    user_id: "carol",
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  assert.equal(response.body.route, "writing");
  assert.match(String(response.body.thread_id), /^[0-9a-f-]{36}$/, "a thread id is made up when the request has none");
  assert.match(String(response.body.answer), /\[1\] Threads \(doc-threads\)/);
  const runs = await traceOf(response.traceId, WRITING_ROUTE_SHAPE.length);
  assertTrace(runs, { traceId: response.traceId, rootName: "POST /run", services: ["supervisor", "writing-agent"] });
  assert.deepEqual(shape(runs), WRITING_ROUTE_SHAPE);
  for (const run of runs) assert.equal(run.extra?.metadata?.user_id, "carol", run.name);
});

test("two requests on the same thread are two traces that do not link", async () => {
  const body = { message: "Look up in the notes what the trace header carries.", thread_id: "thread-shared", user_id: "dave" };
  const first = await postRun(stack.agents.urls.supervisor, body);
  const second = await postRun(stack.agents.urls.supervisor, body);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.notEqual(first.traceId, second.traceId);
  const [a, b] = [await traceOf(first.traceId, RESEARCH_ROUTE_SHAPE.length), await traceOf(second.traceId, RESEARCH_ROUTE_SHAPE.length)];
  for (const [runs, traceId] of [[a, first.traceId], [b, second.traceId]] as const) {
    assertTrace(runs, { traceId, rootName: "POST /run", services: SERVICES });
    assert.deepEqual(shape(runs), RESEARCH_ROUTE_SHAPE);
  }
  const ids = new Set(a.map((r) => r.id));
  assert.deepEqual(b.filter((r) => ids.has(r.id) || (r.parent_run_id !== undefined && ids.has(r.parent_run_id))).map((r) => r.name), []);
  // The second run on the Agent Server's thread hangs under the second request, not the first.
  assert.equal(byName(b, "writing_agent", "writing-agent").parent_run_id, byName(b, "writing_agent", "supervisor").id);
});

test("a later run on the same Agent Server thread without trace headers is its own root, not part of the earlier request", async () => {
  const first = await postRun(stack.agents.urls.supervisor, { message: "Look up in the notes how threads keep headers.", thread_id: "thread-stale" });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const before = await traceOf(first.traceId, RESEARCH_ROUTE_SHAPE.length);
  assert.deepEqual(shape(before), RESEARCH_ROUTE_SHAPE);
  // The thread saved the first call's x- headers in its config; this call sends none.
  const plain = new AgentServerClient({ apiUrl: stack.agents.urls["writing-agent"], apiKey: null });
  const threadId = serverThreadId("thread-stale");
  const run = await plain.runs.create(threadId, WRITING_AGENT_ID, { input: { messages: [{ role: "user", content: "Format the citations for doc-threads." }] } });
  await plain.runs.join(threadId, run.run_id);
  // The server's graph run has the server's run id: as a root, it is also its own trace id.
  const runs = await traceOf(run.run_id, 10);
  const root = byName(runs, "writing_agent", "writing-agent");
  assert.equal(root.id, run.run_id);
  assert.equal(root.parent_run_id ?? undefined, undefined);
  assertTrace(runs, { traceId: run.run_id, rootName: "writing_agent", services: ["writing-agent"] });
});

test("a team project gets a copy of the research slice while the supervisor's project keeps the whole trace", async () => {
  const team = "research-team";
  const supervisor = await spawnService("supervisor", {
    env: {
      ...stack.env,
      SUPERVISOR_PORT: "0",
      RESEARCH_URL: stack.agents.urls["research-agent"],
      AGENT_SERVER_URL: stack.agents.urls["writing-agent"],
      RESEARCH_TEAM_PROJECT: team,
    },
  });
  try {
    const response = await postRun(supervisor.url, { message: "Look up in the notes how replicas reach a team project.", thread_id: "thread-team", user_id: "gina" });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    // The parent project: the whole trace, every run with its own id.
    const whole = await readTrace(response.traceId, { client: stack.client, projectName: stack.project, expectRuns: RESEARCH_ROUTE_SHAPE.length });
    assertTrace(whole, { traceId: response.traceId, rootName: "POST /run", services: SERVICES });
    assert.deepEqual(shape(whole), RESEARCH_ROUTE_SHAPE);
    const slice = whole.filter((r) => serviceOfRun(r) === "research-agent");

    // The team project: exactly the research service's runs, as copies (the SDK gives replica runs new
    // ids, derived from the originals and the project name), nested as in the trace. The copy of the
    // slice's top run still names its parent, the supervisor's node, which is not in the team project.
    const project = await stack.client.readProject({ projectName: team });
    const selects: RunSelectField[] = ["ID", "NAME", "RUN_TYPE", "START_TIME", "END_TIME", "EXTRA", "METADATA", "TRACE_ID", "PARENT_RUN_IDS"];
    let copies: Run[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      copies = [];
      for await (const item of stack.client.runs.query({ project_ids: [project.id], selects })) copies.push(runFromV2(item));
      if (copies.length >= slice.length && copies.every((r) => r.end_time)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.deepEqual(copies.map((r) => `${r.name} [${String(serviceOfRun(r))}]`).sort(), slice.map((r) => `${r.name} [${String(serviceOfRun(r))}]`).sort());
    assert.equal(copies.filter((r) => whole.some((w) => w.id === r.id)).length, 0, "copies have their own ids");
    assert.equal(new Set(copies.map((r) => r.trace_id)).size, 1, "one trace in the team project");
    assert.notEqual(copies[0]?.trace_id, response.traceId);
    const inTeam = new Set(copies.map((r) => r.id));
    const tops = copies.filter((r) => !r.parent_run_id || !inTeam.has(r.parent_run_id));
    assert.deepEqual(tops.map((r) => r.name), ["POST /research"]);
    // "?": the top's parent, outside both sets.
    assert.deepEqual(shape(copies), shape(slice));
    for (const copy of copies) assert.equal(copy.extra?.metadata?.user_id, "gina", copy.name);
  } finally {
    assert.equal(await supervisor.stop(), 0, supervisor.output());
  }
});

test("requests the supervisor refuses are 400s with a trace id", async () => {
  for (const body of [{}, { message: "" }, { message: "hi", thread_id: "no spaces allowed" }, { message: "hi", user_id: 7 }, "{not json"]) {
    const response = await postRun(stack.agents.urls.supervisor, body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(response.body.traceId, response.traceId);
    assert.equal(typeof response.body.error, "string");
  }
});
