// The tail decision across the four processes: at TRACE_SAMPLE_RATE=0 every
// request is recorded and kept only if it failed or was slow. A failure (the
// local model's injected 500s) is traced completely on every service it
// touched; a slow request is kept completely, retrieval included, which had
// already answered when the slow model call ended; successful requests leave
// nothing. The gateway is an edge: nobody outside can force a keep.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SAMPLING_HEADER, TAIL_ROUTE } from "@tracing-patterns/kit";
import { EXPECTED_SHAPE, SERVICES, chat, internalCaller, orphans, runsByTrace, serviceOfRun, shape, startTestStack, type TestStack } from "./helpers.js";

const SLOW_MS = 1500;

describe("TRACE_SAMPLE_RATE=0: errors always kept", () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack("multi-service-tail-errors", { gateway: { TRACE_SAMPLE_RATE: "0", RATE_LIMIT_BURST: "1000" } });
  });

  after(async () => {
    await stack?.close();
  });

  test("every failed request is one complete trace across the four services; no successful request is stored", async () => {
    const failed: string[] = [];
    const succeeded: string[] = [];
    for (let i = 0; i < 12; i++) {
      // ChatOpenAI tries three times (maxRetries 2): three 500s make the llm service fail.
      const fail = i % 3 === 0;
      if (fail) stack.modelServer.inject({ status: 500, times: 3 });
      const response = await chat(stack.services.urls.gateway, { message: `Request ${i}: what does baggage carry?` });
      assert.equal(response.status, fail ? 502 : 200, JSON.stringify(response.body));
      (fail ? failed : succeeded).push(response.traceId);
    }
    assert.equal(stack.modelServer.stats().faults, 12);

    // A public caller cannot ask for a keep, by header or by the notice route.
    const forced = await chat(stack.services.urls.gateway, { message: "keep me" }, { "x-api-key": "test-key-alice", [SAMPLING_HEADER]: "keep" });
    assert.equal(forced.status, 200);
    succeeded.push(forced.traceId);
    const notice = await fetch(`${stack.services.urls.gateway}${TAIL_ROUTE}`, { method: "POST", body: JSON.stringify({ traceId: forced.traceId }) });
    assert.equal(notice.status, 403);
    // Nor an internal caller without the key to sign it.
    const unsigned = await fetch(`${stack.services.urls.retrieval}${TAIL_ROUTE}`, { method: "POST", headers: internalCaller(stack.env), body: JSON.stringify({ traceId: forced.traceId }) });
    assert.equal(unsigned.status, 403);

    assert.deepEqual(await stack.services.stop(), { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });
    const byTrace = await runsByTrace(stack);
    assert.deepEqual([...byTrace.keys()].sort(), [...failed].sort(), "exactly the failed requests' traces");
    assert.deepEqual(orphans(byTrace), []);
    for (const traceId of failed) {
      const runs = byTrace.get(traceId) ?? [];
      assert.deepEqual(shape(runs), EXPECTED_SHAPE, `${traceId}: every run on every service`);
      assert.deepEqual([...new Set(runs.map(serviceOfRun))].sort(), [...SERVICES].sort());
      const chat = runs.find((r) => r.name === "ChatOpenAI");
      assert.ok(chat?.error, "the model call carries its error");
    }
  });
});

describe(`TRACE_SLOW_MS=${SLOW_MS}: slow requests kept`, () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack("multi-service-tail-slow", {
      gateway: { TRACE_SAMPLE_RATE: "0", TRACE_SLOW_MS: String(SLOW_MS) },
      orchestrator: { TRACE_SLOW_MS: String(SLOW_MS) },
      retrieval: { TRACE_SLOW_MS: String(SLOW_MS) },
      llm: { TRACE_SLOW_MS: String(SLOW_MS) },
    });
  });

  after(async () => {
    await stack?.close();
  });

  test("a slow model call keeps the whole trace, including retrieval, which had answered before it", async () => {
    stack.modelServer.inject({ latencyMs: SLOW_MS + 500 });
    const response = await chat(stack.services.urls.gateway, { message: "What does the trace header carry?" });
    assert.equal(response.status, 200, JSON.stringify(response.body));

    assert.deepEqual(await stack.services.stop(), { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });
    const byTrace = await runsByTrace(stack);
    const runs = byTrace.get(response.traceId) ?? [];
    assert.deepEqual(shape(runs), EXPECTED_SHAPE, "every run on every service");
    assert.deepEqual(orphans(byTrace), []);
  });
});
