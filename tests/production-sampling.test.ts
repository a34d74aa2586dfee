// Head sampling with the SDK's rate across two real service processes (notebook 05, section 1):
// front (the edge) calls back, each with its own LANGSMITH_TRACING_SAMPLING_RATE. Every trace
// must be stored exactly as the SDK's own sampling function predicts from its trace id: whole or
// not at all with equal rates, back's runs without their parent (orphans) where back samples more,
// front's runs with back's missing (holes) where back samples less.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "langsmith";
import {
  predictShapes,
  sendRequests,
  shapeMismatches,
  startTraceServer,
  tallyShapes,
  traceShapes,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { startProcess, type StartedProcess } from "@tracing-patterns/example-async-streaming";

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
