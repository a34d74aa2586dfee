// The chat service's conversation memory in a long-running process: every
// POST /chat adds a summary in the background, so a store without a bound
// grows with the number of requests served. It must stay at its capacity
// however many requests arrive, keeping the newest summaries.
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import { BackgroundTasks } from "@tracing-patterns/kit";
import { ConversationMemory, createChatApp } from "../server.js";
import { isolateEnv, startLocalStack, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;

before(async () => {
  stack = await startLocalStack();
});

after(async () => {
  await stack?.close();
});

test("ConversationMemory keeps the newest entries up to its capacity and reports what it dropped", () => {
  const memory = new ConversationMemory(3);
  const evicted = ["q1", "q2", "q3", "q4", "q5"].map((question) => memory.remember({ question, summary: `s-${question}` }));
  assert.deepEqual(evicted, [0, 0, 0, 1, 1]);
  assert.equal(memory.size, 3);
  assert.deepEqual(memory.entries().map((e) => e.question), ["q3", "q4", "q5"]);
  for (const capacity of [0, -1, 1.5, Number.NaN]) assert.throws(() => new ConversationMemory(capacity), /positive integer/);
});

test("many POST /chat requests leave the memory at its capacity, holding the newest summaries", async () => {
  const capacity = 25;
  const waves = 8;
  const perWave = 50;
  const model = new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", configuration: { baseURL: stack.model.url } });
  const background = new BackgroundTasks((error) => assert.fail(`a background task failed: ${String(error)}`));
  const memory = new ConversationMemory(capacity);
  const server = createChatApp({ model, background, memory }).listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const health = async (): Promise<{ backgroundTasks: number; remembered: number }> =>
    (await (await fetch(`${url}/health`)).json()) as { backgroundTasks: number; remembered: number };
  try {
    let lastWave: string[] = [];
    for (let wave = 0; wave < waves; wave++) {
      lastWave = Array.from({ length: perWave }, (_, i) => `question ${wave}-${i}`);
      const statuses = await Promise.all(
        lastWave.map(async (question) => {
          const response = await fetch(`${url}/chat`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ question }),
          });
          await response.json();
          return response.status;
        }),
      );
      assert.deepEqual(new Set(statuses), new Set([200]));
      await background.drain();
      const stats = await health();
      assert.equal(stats.backgroundTasks, 0);
      assert.equal(stats.remembered, Math.min(capacity, (wave + 1) * perWave), `after wave ${wave}`);
    }
    // 400 summaries were stored; only the newest 25 are kept, all from the last wave.
    assert.equal(memory.size, capacity);
    const kept = memory.entries();
    assert.equal(new Set(kept.map((e) => e.question)).size, capacity);
    for (const entry of kept) {
      assert.ok(lastWave.includes(entry.question), `${entry.question} is older than the last wave`);
      assert.match(entry.summary, new RegExp(entry.question));
    }
  } finally {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  }
});
