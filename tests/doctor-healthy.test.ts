// No false alarms: the trace doctor over every trace that healthy requests through the
// multi-service app make (four processes: gateway, orchestrator, retrieval, llm), one at a time
// and concurrently, including requests the gateway turns away and a request carrying a forged
// trace header from outside. Every trace must verify and give zero findings, notes included.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { assertTrace, diagnoseTrace, readDoctorInput, readTrace, type TraceDiagnosis } from "@tracing-patterns/setup";
import { API_KEY, EXPECTED_SHAPE, SERVICES, chat, startTestStack, type TestStack } from "../examples/multi-service-app/tests/helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("doctor-healthy", { gateway: { RATE_LIMIT_BURST: "50" } });
});

after(async () => {
  await stack?.close();
});

async function doctor(traceId: string, expectRuns: number, services: string[]): Promise<TraceDiagnosis> {
  const runs = await readTrace(traceId, { client: stack.client, expectRuns });
  assertTrace(runs, { traceId, services, minRuns: expectRuns });
  const input = await readDoctorInput(traceId, { apiUrl: stack.traceServer.url, apiKey: "local", client: stack.client, waitMs: 1000 });
  return diagnoseTrace(input);
}

function assertNoFindings(d: TraceDiagnosis): void {
  assert.deepEqual(d.findings, [], `${d.traceId}: ${JSON.stringify(d.findings, null, 2)}`);
  assert.equal(d.healthy, true);
}

test("requests one at a time: every trace they make has zero findings", async () => {
  const messages = ["How does the baggage header carry the tenant?", "What is an orphan run?", "Why flush before exit?"];
  const checked: string[] = [];
  for (const message of messages) {
    const response = await chat(stack.services.urls.gateway, { message });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const d = await doctor(response.traceId, EXPECTED_SHAPE.length, SERVICES);
    assertNoFindings(d);
    assert.deepEqual(d.services, [...SERVICES].sort());
    checked.push(d.traceId);
  }
  // Turned away at the gateway (a traced 401 and 400), and a trace header forged from outside,
  // which the gateway's edge policy restarts: correct behaviour, so no finding either.
  const refused = await chat(stack.services.urls.gateway, { message: "hi" }, {});
  assert.equal(refused.status, 401);
  assertNoFindings(await doctor(refused.traceId, 2, ["gateway"]));
  const invalid = await chat(stack.services.urls.gateway, { message: "  " }, { "x-api-key": API_KEY });
  assert.equal(invalid.status, 400);
  assertNoFindings(await doctor(invalid.traceId, 4, ["gateway"]));
  const forged = await chat(stack.services.urls.gateway, { message: "What is a span?" }, {
    "x-api-key": API_KEY,
    "langsmith-trace": "20250101T000000000000Z00000000-0000-4000-8000-000000000000",
  });
  assert.equal(forged.status, 200);
  assertNoFindings(await doctor(forged.traceId, EXPECTED_SHAPE.length, SERVICES));
  assert.equal(new Set(checked).size, messages.length);
});

test("eight concurrent requests: overlapping traces are not mistaken for split ones", async () => {
  const responses = await Promise.all(
    Array.from({ length: 8 }, (_, i) => chat(stack.services.urls.gateway, { message: `Concurrent question ${i}: what is a dotted order?` })),
  );
  for (const r of responses) assert.equal(r.status, 200, JSON.stringify(r.body));
  for (const r of responses) assertNoFindings(await doctor(r.traceId, EXPECTED_SHAPE.length, SERVICES));
});
