// The trace backend goes down for 10 s while load runs. Users notice nothing:
// every request succeeds. The SDK retries, gives up on some batches and saves
// them to LANGSMITH_FAILED_TRACES_DIR; once the backend is back, the services'
// replay loop sends them, and every run of every request is in the trace
// server, counted there, not taken from the services' word. The services'
// metrics saw the failures and the replay.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, test } from "node:test";
import { chat, metricValue, startTestStack, traceState, waitForSettledTraces, waitUntil, type ChatResult, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("production-monitoring-outage", {}, {
    // One retry instead of the SDK's four, so a 10 s outage outlasts the retries and batches
    // are saved (with four, most of them would be retried into the restarted server instead).
    TRACE_UPLOAD_RETRIES: "1",
    TRACE_REPLAY_INTERVAL_MS: "1000",
  });
});

after(async () => {
  assert.deepEqual(await stack?.close(), { assistant: 0, accounts: 0 });
});

async function metrics(): Promise<string> {
  const texts = await Promise.all(Object.values(stack.services.urls).map(async (url) => (await fetch(`${url}/metrics`)).text()));
  return texts.join("\n");
}

async function savedFiles(): Promise<string[]> {
  return readdir(join(stack.dir, "failed-traces")).catch(() => []);
}

test("10 s without a trace backend under load: no request fails, and after recovery and replay every run is stored", { timeout: 180_000 }, async (t) => {
  const url = stack.services.urls.assistant;
  const reference = await chat(url, "What plan is account cust-1 on?");
  const [settled] = await waitForSettledTraces(stack, [reference.traceId]);
  const runsPerAnswer = settled!.runs;

  const answered: ChatResult[] = [];
  let running = true;
  const client = async (n: number): Promise<void> => {
    for (let i = 0; running; i++) answered.push(await chat(url, `What plan is account cust-${n}${i} on?`, { stream: i % 2 === 0 }));
  };
  const clients = [1, 2, 3, 4].map(client);
  await waitUntil(() => answered.length >= 8, 30_000, () => `${answered.length} answered`);

  await stack.traceServerDown();
  const duringFrom = answered.length;
  // The outage itself: a fixed 10 s is the scenario, not a wait for something to be ready.
  await delay(10_000);
  const during = answered.length - duringFrom;
  await stack.traceServerUp();
  await waitUntil(() => answered.length >= duringFrom + during + 8, 30_000, () => `${answered.length} answered`);
  running = false;
  await Promise.all(clients);

  assert.ok(during >= 4, `requests were served during the outage: ${during}`);
  assert.deepEqual([...new Set(answered.map((a) => a.status))], [200], "no user request failed");
  const failedUploads = metricValue(await metrics(), "langsmith_export_requests_total", { outcome: "network_error" }) ?? 0;
  assert.ok(failedUploads > 0, "the services saw their uploads fail");

  // Replay runs every second once the backend answers; done when the directory is empty and every trace is whole.
  const traceIds = [reference.traceId, ...answered.map((a) => a.traceId)];
  await waitUntil(
    async () => (await savedFiles()).length === 0 && traceIds.every((id) => {
      const state = traceState(stack, id);
      return state.runs === runsPerAnswer && state.ended;
    }),
    90_000,
    () => `saved files left, or traces incomplete: ${JSON.stringify(traceIds.map((id) => traceState(stack, id)).filter((s) => s.runs !== runsPerAnswer || !s.ended).slice(0, 5))}`,
  );
  const stored = stack.traceServer.store.counts().runs;
  assert.equal(stored, traceIds.length * runsPerAnswer, "every run of every request, and nothing twice");

  const after = await metrics();
  const replayed = metricValue(after, "langsmith_replayed_batches_total", { outcome: "replayed" }) ?? 0;
  assert.ok(replayed > 0, "some runs came back through the replay, not only through the SDK's retries");
  assert.equal(metricValue(after, "langsmith_failed_batches_pending"), 0);
  t.diagnostic(`${answered.length} requests (${during} during the outage), all 200; ${failedUploads} failed upload attempts; ${replayed} saved batches replayed; ${stored} runs stored = ${traceIds.length} traces x ${runsPerAnswer}`);
});
