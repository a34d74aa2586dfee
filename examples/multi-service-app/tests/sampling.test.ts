// Sampling across the four processes: the gateway decides once per request
// (TRACE_SAMPLE_RATE) and every service follows. Over 1000 requests the kept
// share stays within binomial bounds of the rate, every kept request is one
// complete trace, and a dropped one leaves no run on any service: no orphans.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawnService } from "../launch.js";
import { EXPECTED_SHAPE, drive, orphans, runsByTrace, shape, startTestStack, type TestStack } from "./helpers.js";

const COUNT = 1000;
const RATE = 0.3;

describe(`edge sampling at TRACE_SAMPLE_RATE=${RATE}`, () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack("multi-service-sampling", {
      gateway: { TRACE_SAMPLE_RATE: String(RATE), RATE_LIMIT_BURST: String(COUNT * 2) },
    });
  });

  after(async () => {
    await stack?.close();
  });

  test(`${COUNT} requests: kept share within 4 sigma of ${RATE}, each kept one complete, zero orphans on any service`, async () => {
    const responses = await drive(stack.services.urls.gateway, COUNT, 16, (i) => `Request ${i}: how does the trace header reach the next service?`);
    for (const [i, r] of responses.entries()) assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.body)}`);
    const kept = responses.filter((r) => r.traceId !== "").map((r) => r.traceId);
    // A dropped request has no trace id to give: no header, nothing in the body.
    for (const r of responses) assert.equal(r.body.traceId ?? "", r.traceId);

    const sigma = Math.sqrt(COUNT * RATE * (1 - RATE));
    const [low, high] = [COUNT * RATE - 4 * sigma, COUNT * RATE + 4 * sigma];
    assert.ok(kept.length >= low && kept.length <= high, `kept ${kept.length} of ${COUNT}, expected ${low.toFixed(0)}..${high.toFixed(0)} (4 sigma)`);

    // Stopped services have sent every pending run (they exit 0 only after the flush).
    assert.deepEqual(await stack.services.stop(), { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });
    const byTrace = await runsByTrace(stack);
    assert.deepEqual(orphans(byTrace), [], "no run without its parent");
    assert.deepEqual([...byTrace.keys()].sort(), [...kept].sort(), "exactly the kept requests' traces: nothing from the dropped ones");
    const incomplete = kept.filter((traceId) => JSON.stringify(shape(byTrace.get(traceId) ?? [])) !== JSON.stringify(EXPECTED_SHAPE));
    assert.deepEqual(incomplete, [], "every kept trace has all 14 runs across the four services");
  });
});

describe("TRACE_SAMPLE_RATE", () => {
  for (const bad of ["abc", "1.5", "-0.1", "NaN"]) {
    test(`${JSON.stringify(bad)} stops the service at start-up with a message naming the variable`, async () => {
      await assert.rejects(
        spawnService("gateway", { env: { ...process.env, GATEWAY_PORT: "0", TRACE_SAMPLE_RATE: bad, TRACE_CONTEXT_KEY: "k".repeat(32) } }),
        new RegExp(`TRACE_SAMPLE_RATE must be a number from 0 to 1 \\(the share of requests traced\\), got "${bad.replace(".", "\\.")}"`),
      );
    });
  }
});
