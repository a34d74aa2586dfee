// 1000 requests in flight at once through examples/multi-service-app's four processes (its own
// test helpers start them): every request is answered, and comes back as its own complete trace of
// 14 runs with no run from another request in it. The example's own tests do the same with 500;
// this is the figure docs/reliability.md reports. Latency and wall time are printed as
// diagnostics, not asserted.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { formatReport, percentile, runFromV2, verifyTrace } from "@tracing-patterns/setup";
import { EXPECTED_SHAPE, SERVICES, chat, shape, startTestStack, type TestStack } from "../examples/multi-service-app/tests/helpers.js";

const COUNT = 1000;
const SELECTS: RunSelectField[] = ["ID", "NAME", "RUN_TYPE", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA", "TRACE_ID", "PARENT_RUN_IDS"];
let stack: TestStack;

before(async () => {
  stack = await startTestStack("reliability-concurrency", { gateway: { RATE_LIMIT_BURST: String(COUNT * 2) } });
});

after(async () => {
  await stack?.close();
});

const tokenOf = (i: number): string => `req-${String(i).padStart(4, "0")}`;

/** Every run of the project, grouped by trace, in one paginated query. */
async function runsByTrace(): Promise<{ total: number; byTrace: Map<string, Run[]> }> {
  const project = await stack.client.readProject({ projectName: stack.project });
  const byTrace = new Map<string, Run[]>();
  let total = 0;
  for await (const item of stack.client.runs.query({ project_ids: [project.id], selects: SELECTS, page_size: 1000 })) {
    const run = runFromV2(item);
    total += 1;
    byTrace.set(run.trace_id ?? "(none)", [...(byTrace.get(run.trace_id ?? "(none)") ?? []), run]);
  }
  return { total, byTrace };
}

/** What is wrong with request i's trace: its verification, its shape, and any run carrying another request's token. */
function problemsOf(i: number, traceId: string, runs: readonly Run[]): string[] {
  const problems: string[] = [];
  const report = verifyTrace(runs, { traceId, rootName: "POST /chat", services: SERVICES, minRuns: EXPECTED_SHAPE.length });
  if (!report.ok || report.completeness !== 100 || report.propagation !== 100) problems.push(formatReport(report));
  if (JSON.stringify(shape(runs)) !== JSON.stringify(EXPECTED_SHAPE)) problems.push(`${traceId}: shape ${JSON.stringify(shape(runs))}`);
  for (const run of runs) {
    const others = new Set(JSON.stringify([run.inputs, run.outputs]).match(/req-\d{4}/g) ?? []);
    others.delete(tokenOf(i));
    if (others.size > 0) problems.push(`${traceId} (${tokenOf(i)}): run ${run.name} carries ${[...others].join(", ")}`);
  }
  if (!JSON.stringify(runs.find((r) => r.name === "ChatOpenAI")?.inputs ?? {}).includes(tokenOf(i))) problems.push(`${traceId}: the model call did not see ${tokenOf(i)}`);
  return problems;
}

test(`${COUNT} concurrent requests through four processes: ${COUNT} complete, isolated traces`, async (t) => {
  const started = performance.now();
  const responses = await Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const sent = performance.now();
      const response = await chat(stack.services.urls.gateway, { message: `Ticket ${tokenOf(i)}: which service answered this?` });
      return { ...response, ms: performance.now() - sent };
    }),
  );
  const wallMs = performance.now() - started;
  assert.deepEqual(responses.flatMap((r, i) => (r.status === 200 ? [] : [`request ${i}: ${r.status} ${JSON.stringify(r.body)}`])), []);
  const traceIds = responses.map((r) => r.traceId);
  assert.equal(new Set(traceIds).size, COUNT, "every request has its own trace id");
  const latencies = responses.map((r) => r.ms);
  t.diagnostic(`${COUNT} requests in ${Math.round(wallMs)} ms; latency p50 ${Math.round(percentile(latencies, 50))} ms, p99 ${Math.round(percentile(latencies, 99))} ms, max ${Math.round(Math.max(...latencies))} ms`);

  // Stopped services have drained their requests and sent every pending run (they exit 0 only after the flush).
  assert.deepEqual(await stack.services.stop(), { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });
  const { total, byTrace } = await runsByTrace();
  assert.equal(total, COUNT * EXPECTED_SHAPE.length, "no run missing, none extra");
  assert.deepEqual([...byTrace.keys()].sort(), [...traceIds].sort(), "exactly the requests' traces, nothing else");
  const failures: string[] = [];
  for (const [i, traceId] of traceIds.entries()) {
    failures.push(...problemsOf(i, traceId, byTrace.get(traceId) ?? []));
    if (failures.length >= 5) break;
  }
  assert.deepEqual(failures, []);
  t.diagnostic(`${byTrace.size} traces, ${total} runs: each complete (completeness and propagation 100%), of the expected shape, with only its own request's data`);
});
