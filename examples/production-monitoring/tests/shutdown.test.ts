// SIGTERM in the middle of load: the assistant stops taking connections,
// finishes the requests in flight (slow ones and streams included), flushes,
// and exits 0; then the accounts service does the same. Every request that got
// an answer has its whole trace in the trace server, across both services.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chat, startTestStack, traceState, waitForSettledTraces, waitUntil, type ChatResult, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("production-monitoring-shutdown");
});

after(async () => {
  await stack?.close();
});

test("SIGTERM mid-load: in-flight requests finish, both services exit 0, and every answered request's trace arrives whole", { timeout: 120_000 }, async (t) => {
  const url = stack.services.urls.assistant;
  // The reference shape: how many runs one answer with a tool call makes, once it has all arrived.
  const reference = await chat(url, "What plan is account cust-1 on?");
  await waitForSettledTraces(stack, [reference.traceId]);
  const runsPerAnswer = traceState(stack, reference.traceId).runs;
  assert.ok(runsPerAnswer >= 6, `an answer spans both services: ${runsPerAnswer} runs`);

  // Six clients in a loop, every third request slow, some streamed, until the server refuses them.
  const answered: ChatResult[] = [];
  const refused: unknown[] = [];
  let stopping = false;
  const client = async (n: number): Promise<void> => {
    for (let i = 0; ; i++) {
      try {
        answered.push(await chat(url, `What plan is account cust-${n}${i} on?`, { stream: i % 2 === 1, ...(i % 3 === 0 ? { fault: "slow" as const } : {}) }));
      } catch (error) {
        // Once the assistant has stopped listening; before that, nothing may fail.
        refused.push(error);
        if (stopping) return;
        throw error;
      }
    }
  };
  const clients = [1, 2, 3, 4, 5, 6].map(client);
  await waitUntil(() => answered.length >= 12, 60_000, () => `${answered.length} answered`);

  stopping = true;
  const codes = await stack.services.stop();
  await Promise.all(clients);
  assert.deepEqual(codes, { assistant: 0, accounts: 0 }, stack.output());
  const inFlight = Number(/\[assistant\] \[shutdown\] SIGTERM: not accepting connections; finishing (\d+) in-flight/.exec(stack.output())?.[1]);
  assert.ok(inFlight >= 1, `requests were in flight at SIGTERM:\n${stack.output()}`);
  assert.match(stack.output(), /\[assistant\] \[shutdown\] in-flight requests finished; replay stopped; traces flushed in \d+ ms/);

  assert.deepEqual([...new Set(answered.map((a) => a.status))], [200], "every answered request succeeded");
  // The services have exited: what they sent is all there will ever be.
  const incomplete = answered
    .map((a) => ({ traceId: a.traceId, ...traceState(stack, a.traceId) }))
    .filter((s) => s.runs !== runsPerAnswer || !s.ended);
  assert.deepEqual(incomplete, [], `${answered.length} answered, ${refused.length} refused after the stop`);
  t.diagnostic(`${answered.length} answered (${inFlight} in flight at SIGTERM), ${refused.length} refused after; ${runsPerAnswer} runs each, all stored`);
});
