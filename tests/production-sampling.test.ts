// Head sampling with the SDK's rate across two real service processes (notebook 05, section 1):
// front (the edge) calls back, each with its own LANGSMITH_TRACING_SAMPLING_RATE. Every trace
// must be stored exactly as the SDK's own sampling function predicts from its trace id: whole or
// not at all with equal rates, back's runs without their parent (orphans) where back samples more,
// front's runs with back's missing (holes) where back samples less. With the kit's sampler
// (SAMPLE_RATE) the edge decides once and back follows, whatever its own rate: no orphan, no hole;
// with a tail, failing and slow requests are kept whole on both services, fast ones not at all.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "langsmith";
import {
  predictShapes,
  sendRequests,
  shapeMismatches,
  startTraceServer,
  storedShapes,
  traceCompleteness,
  tallyShapes,
  traceShapes,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { startProcess, type StartedProcess } from "@tracing-patterns/example-async-streaming";
import type { SamplingStats } from "@tracing-patterns/kit";

const SERVICE = join(import.meta.dirname, "..", "notebooks", "services", "production-service.ts");
const REQUESTS = 60;

let traceServer: TraceServerHandle;
let reader: Client;

before(async () => {
  traceServer = await startTraceServer({ port: 0, viewer: false, log: () => undefined });
  reader = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});
after(async () => {
  await traceServer?.close();
});

function env(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_|OPENAI_)/.test(k)));
  return { ...base, LANGSMITH_ENDPOINT: traceServer.url, LANGSMITH_API_KEY: "local", LANGSMITH_TRACING: "true", WORK_MS: "1", ...extra };
}

async function start(service: string, extra: NodeJS.ProcessEnv): Promise<StartedProcess> {
  return startProcess(SERVICE, { env: env({ LANGSMITH_SERVICE: service, ...extra }), ready: /listening on (\S+)/ });
}

/** The sampler's stats() a stopped service printed at exit. */
function statsAtExit(service: StartedProcess): SamplingStats {
  const line = service.output().split("\n").find((l) => l.startsWith("sampling stats "));
  assert.ok(line, `no sampling stats in the output:\n${service.output()}`);
  return JSON.parse(line.slice("sampling stats ".length)) as SamplingStats;
}

/** Runs REQUESTS requests through front -> back at the two rates; returns what was stored and what the SDK predicts. */
async function throughTwoServices(frontRate: number, backRate: number) {
  const project = `sampling-${frontRate}-${backRate}`;
  const back = await start("back", { LANGSMITH_PROJECT: project, LANGSMITH_TRACING_SAMPLING_RATE: String(backRate) });
  const front = await start("front", { LANGSMITH_PROJECT: project, LANGSMITH_TRACING_SAMPLING_RATE: String(frontRate), TRUST: "edge", NEXT_URL: back.ready });
  const sent = await sendRequests(`${front.ready}/work`, REQUESTS, { concurrency: 6 });
  // The kit's shutdown flushes on SIGTERM: after this, everything either service kept is stored.
  assert.deepEqual(await Promise.all([front.stop(), back.stop()]), [0, 0]);
  assert.deepEqual(sent.filter((r) => r.status !== 200 || r.traceId === ""), [], "every request answered, with its trace id");
  const ids = sent.map((r) => r.traceId);
  const stored = await traceShapes(ids, { upstream: "front", downstream: "back", projectName: project, client: reader });
  const predicted = predictShapes(ids, frontRate, backRate);
  return { stored, predicted, tally: tallyShapes(stored) };
}

describe("SDK sampling rates across two service processes", { concurrency: 1 }, () => {
  test("equal rates (0.5, 0.5): every trace stored whole or not at all, as predicted", async () => {
    const { stored, predicted, tally } = await throughTwoServices(0.5, 0.5);
    assert.deepEqual(shapeMismatches(stored, predicted), []);
    assert.equal(tally.orphaned + tally.hole, 0);
    assert.ok(tally.complete > 0 && tally["not stored"] > 0, JSON.stringify(tally));
  });

  test("downstream samples more (0.3, 0.6): orphans exactly on the traces front dropped and back kept", async () => {
    const { stored, predicted, tally } = await throughTwoServices(0.3, 0.6);
    assert.deepEqual(shapeMismatches(stored, predicted), []);
    assert.equal(tally.hole, 0, "buckets nest: what front keeps at 0.3, back keeps at 0.6");
    assert.ok(tally.orphaned > 0, JSON.stringify(tally));
  });

  test("downstream samples less (0.6, 0.3): holes exactly on the traces front kept and back dropped", async () => {
    const { stored, predicted, tally } = await throughTwoServices(0.6, 0.3);
    assert.deepEqual(shapeMismatches(stored, predicted), []);
    assert.equal(tally.orphaned, 0);
    assert.ok(tally.hole > 0, JSON.stringify(tally));
  });
});

describe("the kit's sampler across two service processes", { concurrency: 1 }, () => {
  test("edge decision at 0.3 (back configured at 0.6): zero orphans and holes, kept share within 4 sigma, dropped requests leave nothing", async () => {
    const project = "sampling-edge";
    const since = new Date(Date.now() - 1000);
    const back = await start("back", { LANGSMITH_PROJECT: project, SAMPLE_RATE: "0.6" });
    const front = await start("front", { LANGSMITH_PROJECT: project, SAMPLE_RATE: "0.3", TRUST: "edge", NEXT_URL: back.ready });
    const count = 200;
    const sent = await sendRequests(`${front.ready}/work`, count, { concurrency: 8 });
    assert.deepEqual(await Promise.all([front.stop(), back.stop()]), [0, 0]);
    assert.deepEqual(sent.filter((r) => r.status !== 200), [], "every request answered");
    const traced = sent.filter((r) => r.traceId !== "").map((r) => r.traceId);
    const stored = await storedShapes({ upstream: "front", downstream: "back", projectName: project, since, client: reader });
    const tally = tallyShapes(stored);
    assert.equal(tally.orphaned + tally.hole, 0, JSON.stringify(tally));
    assert.deepEqual([...stored.keys()].sort(), [...traced].sort(), "stored exactly the traces whose ids came back");
    const sigma = Math.sqrt(count * 0.3 * 0.7);
    assert.ok(Math.abs(tally.complete - count * 0.3) <= 4 * sigma, `kept ${tally.complete} of ${count}`);
    const whole = await traceCompleteness(traced, { runs: 5, projectName: project, client: reader });
    assert.deepEqual(whole, { complete: traced.length, partial: 0, missing: 0 });
  });

  test("tail at rate 0: a downstream failure and a slow request kept whole on both services, fast successes not stored", async () => {
    const project = "sampling-tail";
    const tail = { LANGSMITH_PROJECT: project, SAMPLE_RATE: "0", TAIL_SLOW_MS: "1000", SLOW_WORK_MS: "1500" };
    const back = await start("back", tail);
    const front = await start("front", { ...tail, TRUST: "edge", NEXT_URL: back.ready });
    const kind = (i: number) => (i % 5 === 1 ? "fail" : i % 5 === 3 ? "slow" : "fast");
    // A generous slow threshold: on a loaded machine a fast request must not pass for a slow one.
    const sent = await sendRequests(`${front.ready}/work`, 15, {
      concurrency: 5,
      body: (i) => (kind(i) === "fail" ? { fail_in: "back" } : kind(i) === "slow" ? { slow_in: "front" } : {}),
    });
    // Caller first: its shutdown waits for the keep notices it still sends to back.
    assert.equal(await front.stop(), 0);
    assert.equal(await back.stop(), 0);
    const [frontStats, backStats] = [statsAtExit(front), statsAtExit(back)];
    const ids = (k: string) => sent.filter((_, i) => kind(i) === k).map((r) => r.traceId);
    assert.deepEqual(sent.map((r) => r.status), sent.map((_, i) => (kind(i) === "fail" ? 500 : 200)));
    assert.ok(sent.every((r) => r.traceId !== ""), "a tail request has a trace id");
    const completeness = async (k: string) => traceCompleteness(ids(k), { runs: 5, projectName: project, client: reader });
    assert.deepEqual(await completeness("fail"), { complete: 3, partial: 0, missing: 0 });
    assert.deepEqual(await completeness("slow"), { complete: 3, partial: 0, missing: 0 });
    assert.deepEqual(await completeness("fast"), { complete: 0, partial: 0, missing: 9 });
    // The root (front) discards the fast ones as they end and tells back about each slow one it kept;
    // back, which had answered before, keeps those on notice and holds the fast ones until ttlMs.
    assert.equal(frontStats.tail.discarded, 9, JSON.stringify(frontStats));
    assert.equal(frontStats.tail.notificationsSent, 3, JSON.stringify(frontStats));
    assert.equal(backStats.tail.kept.notified, 3, JSON.stringify(backStats));
    assert.equal(backStats.tail.heldTraces, 9, JSON.stringify(backStats));
  });
});
