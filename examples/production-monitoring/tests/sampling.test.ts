// Sampling across the two services, with the sampling rate at 0 so that no
// request is sampled in:
// - pass-through (TRACE_TAIL=off): every request is dropped at the assistant,
//   the accounts service follows, and nothing reaches the trace server, not
//   even the streamed model calls LangChain makes inside the request;
// - the tail decision (the default): every request is held; the failing and
//   the slow ones are kept whole, across both services, and the rest discarded.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { chat, metricValue, startTestStack, traceState, waitForSettledTraces, type TestStack } from "./helpers.js";

let stack: TestStack | undefined;

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function scrape(s: TestStack): Promise<{ assistant: string; accounts: string }> {
  const [assistant, accounts] = await Promise.all([s.services.urls.assistant, s.services.urls.accounts].map(async (u) => (await fetch(`${u}/metrics`)).text()));
  return { assistant: assistant!, accounts: accounts! };
}

test("rate 0, pass-through: every request is answered, none is traced on either service, and no run of any kind is stored", { timeout: 60_000 }, async () => {
  stack = await startTestStack("production-monitoring-drop", {}, { TRACE_SAMPLE_RATE: "0", TRACE_TAIL: "off" });
  const url = stack.services.urls.assistant;
  const results = await Promise.all([chat(url, "What plan is account cust-1 on?"), chat(url, "What plan is account cust-2 on?", { stream: true })]);
  assert.deepEqual(results.map((r) => [r.status, r.traceId]), [[200, ""], [200, ""]]);
  const metrics = await scrape(stack);
  assert.equal(metricValue(metrics.assistant, "langsmith_sampling_decisions_total", { decision: "drop", source: "own" }), 2);
  assert.equal(metricValue(metrics.accounts, "langsmith_sampling_decisions_total", { decision: "drop", source: "caller" }), 2);
  assert.equal(metricValue(metrics.assistant, "langsmith_traces_started_total"), 0);

  // The services flush on stop: after that, whatever they would have sent has been sent.
  assert.deepEqual(await stack.services.stop(), { assistant: 0, accounts: 0 });
  const rows = stack.traceServer.store.db.prepare("SELECT name, trace_id FROM runs").all();
  assert.deepEqual(rows, [], "runs stored for sampled-out requests");
});

test("rate 0, tail: failing and slow requests are kept whole across both services, the others discarded; the counters say which and why", { timeout: 120_000 }, async (t) => {
  // Two model calls at 800 ms each make a slow request about 1.7 s; a normal one takes well under 1 s.
  stack = await startTestStack("production-monitoring-tail", {}, { TRACE_SAMPLE_RATE: "0", TRACE_SLOW_MS: "1500" });
  const url = stack.services.urls.assistant;
  const normal = await Promise.all([1, 2, 3].map((n) => chat(url, `What plan is account cust-${n} on?`, { stream: n === 2 })));
  const slow = await Promise.all([4, 5].map((n) => chat(url, `What plan is account cust-${n} on?`, { fault: "slow" })));
  const failing = await Promise.all([6, 7].map((n) => chat(url, `What plan is account cust-${n} on?`, { fault: "fail" })));
  assert.deepEqual([...normal, ...slow, ...failing].map((r) => r.status), [200, 200, 200, 200, 200, 502, 502]);

  // A held request still names its trace (its runs exist, they may be kept).
  await waitForSettledTraces(stack, [...slow, ...failing].map((r) => r.traceId));
  const reference = await chat(url, "What plan is account cust-8 on?", { fault: "slow" });
  const [whole] = await waitForSettledTraces(stack, [reference.traceId]);
  for (const r of slow) assert.deepEqual(traceState(stack, r.traceId), whole, "a kept slow trace has every run, the accounts service's included");
  const services = (id: string): string[] =>
    [...new Set((stack!.traceServer.store.db.prepare("SELECT extra FROM runs WHERE trace_id = ?").all(id) as Array<{ extra: string }>).map((r) => JSON.parse(r.extra)?.metadata?.LANGSMITH_SERVICE as string))].sort();
  assert.deepEqual(services(slow[0]!.traceId), ["accounts", "assistant"]);
  for (const r of failing) assert.ok(traceState(stack, r.traceId).runs >= 3, "a failed request is kept: its root, the answer and the failed model call");

  const metrics = await scrape(stack);
  assert.equal(metricValue(metrics.assistant, "langsmith_sampling_decisions_total", { decision: "tail", source: "own" }), 8);
  // The failing requests stopped at the model, before the tool: six lookups reached accounts.
  assert.equal(metricValue(metrics.accounts, "langsmith_sampling_decisions_total", { decision: "tail", source: "caller" }), 6);
  assert.equal(metricValue(metrics.assistant, "langsmith_tail_kept_total", { reason: "error" }), 2);
  assert.equal(metricValue(metrics.assistant, "langsmith_tail_kept_total", { reason: "slow" }), 3);
  assert.equal(metricValue(metrics.assistant, "langsmith_tail_discarded_total"), 3);
  // accounts answered fast and held its runs; the assistant, deciding slow at the end, told it to keep them.
  assert.equal(metricValue(metrics.accounts, "langsmith_tail_kept_total", { reason: "notified" }), 3);
  assert.equal(metricValue(metrics.assistant, "langsmith_tail_held_traces"), 0, "the root decided every trace");
  // Nobody tells a participant "discard": it holds the three normal traces until their TTL (30 s).
  assert.equal(metricValue(metrics.accounts, "langsmith_tail_held_traces"), 3);

  assert.deepEqual(await stack.services.stop(), { assistant: 0, accounts: 0 });
  for (const r of normal) assert.equal(traceState(stack, r.traceId).runs, 0, "a fast, successful held request is discarded on both services");
  t.diagnostic(`kept: 3 slow (${whole!.runs} runs each, over assistant and accounts), 2 failed; discarded: 3`);
});
