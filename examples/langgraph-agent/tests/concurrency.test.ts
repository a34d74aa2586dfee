// Requests in flight at once through the three processes. Each must come back
// as its own complete trace, and no run may land in another request's trace:
// the failure of context kept anywhere but per request (a module global, a
// shared graph's config, an Agent Server thread).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { formatReport, runFromV2, verifyTrace } from "@tracing-patterns/setup";
import { RESEARCH_ROUTE_SHAPE, SERVICES, byName, postRun, serviceOfRun, shape, startTestStack, type TestStack } from "./helpers.js";

const COUNT = 20;
/** runs.query returns only ids unless told which fields to send. */
const SELECTS: RunSelectField[] = ["ID", "NAME", "RUN_TYPE", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA", "TRACE_ID", "PARENT_RUN_IDS"];
let stack: TestStack;

before(async () => {
  stack = await startTestStack("langgraph-agent-concurrency");
});

after(async () => {
  await stack?.close();
});

/** Every run in the project, grouped by trace. */
async function projectRuns(): Promise<Map<string, Run[]>> {
  const project = await stack.client.readProject({ projectName: stack.project });
  const byTrace = new Map<string, Run[]>();
  for await (const item of stack.client.runs.query({ project_ids: [project.id], selects: SELECTS, page_size: 1000 })) {
    const run = runFromV2(item);
    const key = run.trace_id ?? "(none)";
    byTrace.set(key, [...(byTrace.get(key) ?? []), run]);
  }
  return byTrace;
}

const tokenOf = (i: number): string => `req-${String(i).padStart(2, "0")}`;

test(`${COUNT} concurrent requests make ${COUNT} separate, complete traces`, async () => {
  // A token unique to each request, so every run that saw request data can be traced back to one request.
  const requests = Array.from({ length: COUNT }, (_, i) => ({
    message: `Look up in the notes how baggage carries ticket ${tokenOf(i)} to the next service.`,
    thread_id: `thread-${tokenOf(i)}`,
    user_id: `user-${tokenOf(i)}`,
  }));
  const responses = await Promise.all(requests.map((body) => postRun(stack.agents.urls.supervisor, body)));
  for (const [i, r] of responses.entries()) assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.body)}`);
  const traceIds = responses.map((r) => r.traceId);
  assert.equal(new Set(traceIds).size, COUNT, "every request has its own trace id");

  // Each process sends its runs on its own schedule: wait until every trace is complete, or give up after 30 s.
  let byTrace = new Map<string, Run[]>();
  const deadline = Date.now() + 30_000;
  const complete = (): boolean => traceIds.every((id) => (byTrace.get(id) ?? []).filter((r) => r.end_time).length >= RESEARCH_ROUTE_SHAPE.length);
  while (Date.now() < deadline) {
    byTrace = await projectRuns();
    if (complete()) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.deepEqual([...byTrace.keys()].sort(), [...traceIds].sort(), "exactly the requests' traces, nothing else");

  const failures: string[] = [];
  for (const [i, traceId] of traceIds.entries()) {
    const runs = byTrace.get(traceId) ?? [];
    const report = verifyTrace(runs, { traceId, rootName: "POST /run", services: SERVICES, minRuns: RESEARCH_ROUTE_SHAPE.length });
    if (!report.ok || report.completeness !== 100) failures.push(formatReport(report));
    if (JSON.stringify(shape(runs)) !== JSON.stringify(RESEARCH_ROUTE_SHAPE)) failures.push(`${traceId}: shape ${JSON.stringify(shape(runs))}`);
    const own = tokenOf(i);
    for (const run of runs) {
      const seen = new Set(JSON.stringify([run.inputs, run.outputs, run.extra?.metadata]).match(/req-\d{2}/g) ?? []);
      seen.delete(own);
      if (seen.size > 0) failures.push(`${traceId} (${own}): run ${run.name} [${String(serviceOfRun(run))}] carries ${[...seen].join(", ")}`);
      if (run.extra?.metadata?.user_id !== `user-${own}`) failures.push(`${traceId}: ${run.name} [${String(serviceOfRun(run))}] has user_id ${String(run.extra?.metadata?.user_id)}`);
    }
    const llmInputs = JSON.stringify(runs.filter((r) => r.run_type === "llm" && serviceOfRun(r) === "writing-agent").map((r) => r.inputs));
    if (!llmInputs.includes(own)) failures.push(`${traceId}: the writing agent's model did not see ${own}`);
    if (failures.length >= 5) break;
  }
  assert.deepEqual(failures, []);
});

test("two requests on the same thread at once: two traces, each agent run under its own request", async () => {
  const body = (n: number) => ({ message: `Look up in the notes what the trace header carries, question ${n}.`, thread_id: "thread-together", user_id: "erin" });
  const [a, b] = await Promise.all([postRun(stack.agents.urls.supervisor, body(1)), postRun(stack.agents.urls.supervisor, body(2))]);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(b.status, 200, JSON.stringify(b.body));
  const byTrace = new Map<string, Run[]>();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const all = await projectRuns();
    for (const id of [a.traceId, b.traceId]) byTrace.set(id, all.get(id) ?? []);
    if ([a.traceId, b.traceId].every((id) => (byTrace.get(id) ?? []).filter((r) => r.end_time).length >= RESEARCH_ROUTE_SHAPE.length)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const traceId of [a.traceId, b.traceId]) {
    const runs = byTrace.get(traceId) ?? [];
    const report = verifyTrace(runs, { traceId, rootName: "POST /run", services: SERVICES });
    assert.ok(report.ok, formatReport(report));
    assert.deepEqual(shape(runs), RESEARCH_ROUTE_SHAPE);
    assert.equal(byName(runs, "writing_agent", "writing-agent").parent_run_id, byName(runs, "writing_agent", "supervisor").id);
  }
});
