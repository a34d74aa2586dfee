// 500 requests in flight at once through four processes. Each must come back
// as its own complete trace, and no run may land in another request's trace:
// the failure mode of context kept in a global instead of per request.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { formatReport, runFromV2, verifyTrace } from "@tracing-patterns/setup";
import { EXPECTED_SHAPE, SERVICES, chat, shape, startTestStack, type TestStack } from "./helpers.js";

const COUNT = 500;
/** runs.query returns only ids unless told which fields to send. */
const SELECTS: RunSelectField[] = ["ID", "NAME", "RUN_TYPE", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA", "TRACE_ID", "PARENT_RUN_IDS"];
let stack: TestStack;

before(async () => {
  stack = await startTestStack("multi-service-concurrency", { gateway: { RATE_LIMIT_BURST: String(COUNT * 2) } });
});

after(async () => {
  await stack?.close();
});

const tokenOf = (i: number): string => `req-${String(i).padStart(4, "0")}`;

test(`${COUNT} concurrent requests make ${COUNT} separate, complete traces`, async () => {
  // A token unique to each request, so every run that saw request data can be traced back to exactly one request.
  const messages = Array.from({ length: COUNT }, (_, i) => `Ticket ${tokenOf(i)}: how does the trace header reach the next service?`);
  const responses = await Promise.all(messages.map((message) => chat(stack.services.urls.gateway, { message })));
  for (const [i, r] of responses.entries()) assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.body)}`);
  const traceIds = responses.map((r) => r.traceId);
  assert.equal(new Set(traceIds).size, COUNT, "every request has its own trace id");

  // Stopped services have drained their requests and sent every pending run (they exit 0 only after the flush).
  const codes = await stack.services.stop();
  assert.deepEqual(codes, { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });

  // One paginated query over the project instead of 500 trace queries.
  const project = await stack.client.readProject({ projectName: stack.project });
  const byTrace = new Map<string, Run[]>();
  let total = 0;
  for await (const item of stack.client.runs.query({ project_ids: [project.id], selects: SELECTS, page_size: 1000 })) {
    const run = runFromV2(item);
    total += 1;
    const key = run.trace_id ?? "(none)";
    byTrace.set(key, [...(byTrace.get(key) ?? []), run]);
  }
  assert.equal(total, COUNT * EXPECTED_SHAPE.length, "no run missing, none extra");
  assert.deepEqual([...byTrace.keys()].sort(), [...traceIds].sort(), "exactly the requests' traces, nothing else");

  const failures: string[] = [];
  for (const [i, traceId] of traceIds.entries()) {
    const runs = byTrace.get(traceId) ?? [];
    const report = verifyTrace(runs, { traceId, rootName: "POST /chat", services: SERVICES, minRuns: EXPECTED_SHAPE.length });
    if (!report.ok || report.completeness !== 100) failures.push(formatReport(report));
    if (JSON.stringify(shape(runs)) !== JSON.stringify(EXPECTED_SHAPE)) failures.push(`${traceId}: shape ${JSON.stringify(shape(runs))}`);
    const own = tokenOf(i);
    for (const run of runs) {
      const seen = new Set(JSON.stringify([run.inputs, run.outputs]).match(/req-\d{4}/g) ?? []);
      seen.delete(own);
      if (seen.size > 0) failures.push(`${traceId} (${own}): run ${run.name} carries ${[...seen].join(", ")}`);
    }
    const validated = runs.find((r) => r.name === "validate_request")?.outputs?.message;
    if (validated !== messages[i]) failures.push(`${traceId}: validate_request saw ${JSON.stringify(validated)}, request ${i} sent ${messages[i]}`);
    const llmInputs = JSON.stringify(runs.find((r) => r.name === "ChatOpenAI")?.inputs ?? {});
    if (!llmInputs.includes(own)) failures.push(`${traceId}: the model call did not see ${own}`);
    if (failures.length >= 5) break;
  }
  assert.deepEqual(failures, []);
});
