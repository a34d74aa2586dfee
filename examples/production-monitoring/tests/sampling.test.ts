// Sampling across the two services: at rate 0 the assistant decides "drop" for
// every request, the accounts service follows, and nothing reaches the trace
// server, not even the streamed model calls LangChain makes inside the request.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chat, metricValue, startTestStack, waitUntil, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("production-monitoring-sampling", {}, { TRACE_SAMPLE_RATE: "0" });
});

after(async () => {
  assert.deepEqual(await stack?.close(), { assistant: 0, accounts: 0 });
});

test("rate 0: every request is answered, none is traced on either service, and no run of any kind is stored", { timeout: 60_000 }, async () => {
  const url = stack.services.urls.assistant;
  const results = await Promise.all([
    chat(url, "What plan is account cust-1 on?"),
    chat(url, "What plan is account cust-2 on?", { stream: true }),
  ]);
  assert.deepEqual(results.map((r) => [r.status, r.traceId]), [[200, ""], [200, ""]]);
  const scrape = async (): Promise<string> => (await Promise.all(Object.values(stack.services.urls).map(async (u) => (await fetch(`${u}/metrics`)).text()))).join("\n");
  await waitUntil(async () => metricValue(await scrape(), "langsmith_sampling_decisions_total", { decision: "drop", source: "caller" }) === 2, 10_000, () => "accounts saw two dropped lookups");
  const metrics = await scrape();
  assert.equal(metricValue(metrics, "langsmith_sampling_decisions_total", { decision: "drop", source: "own" }), 2);
  assert.equal(metricValue(metrics, "langsmith_traces_started_total"), 0);

  // The services flush on stop: after that, whatever they would have sent has been sent.
  assert.deepEqual(await stack.services.stop(), { assistant: 0, accounts: 0 });
  const rows = stack.traceServer.store.db.prepare("SELECT name, trace_id FROM runs").all();
  assert.deepEqual(rows, [], "runs stored for sampled-out requests");
});
