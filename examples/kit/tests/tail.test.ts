// The tail buffer's bounds (tail.ts), through an express service on the kit:
// traces past maxTraces are not recorded and runs past a trace's limit are
// discarded, both counted, while every request is answered as usual; a kept
// trace is sent through the SDK's normal batching; a discarded one never is.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Client, type Run } from "langsmith";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { createSampler, flushTraces, getRequestRun, langsmithTracing, traced, type Sampler, type TailLimits } from "../index.js";
import { isolateFromLangSmithEnv, listen, type Listening } from "./helpers.js";

isolateFromLangSmithEnv();

let traceServer: TraceServerHandle;
let reader: Client;
const open: Listening[] = [];
const samplers: Sampler[] = [];

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  reader = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});

after(async () => {
  for (const server of open) await server.close();
  for (const sampler of samplers) sampler.close();
  await traceServer?.close();
});

async function projectRuns(project: string): Promise<Run[]> {
  assert.equal((await flushTraces({ timeoutMs: 10_000 })).flushed, true);
  const runs: Run[] = [];
  try {
    for await (const run of reader.listRuns({ projectName: project })) runs.push(run);
  } catch (error) {
    if (!/not found/.test(String(error))) throw error;
  }
  return runs;
}

/** An edge service at rate 0 with a tail rule: `POST /work?steps=N&fail=1` runs N traced steps, waiting for `gate` first. */
async function service(project: string, limits: Partial<TailLimits>, gate: () => Promise<void>): Promise<{ url: string; sampler: Sampler }> {
  const tailSampler = createSampler({ rate: 0, tail: { limits }, clientConfig: { apiUrl: traceServer.url, apiKey: "local" } });
  samplers.push(tailSampler);
  const step = traced(async (i: number) => i, { name: "step" });
  const app = express();
  app.use(langsmithTracing({ trust: "edge", projectName: project, enabled: true, sampling: tailSampler }));
  app.post("/work", async (req, res) => {
    await gate();
    for (let i = 0; i < Number(req.query.steps ?? 1); i++) await step(i);
    res.status(req.query.fail === "1" ? 500 : 200).json({ traceId: getRequestRun(req)?.trace_id ?? null });
  });
  const server = await listen(app);
  open.push(server);
  return { url: server.url, sampler: tailSampler };
}

describe("tail buffer bounds", () => {
  test("past maxTraces a request is not recorded (counted), and every request is still answered", async () => {
    const project = `tail-${randomUUID()}`;
    let release: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (release = resolve));
    const arrived: number[] = [];
    const { url, sampler } = await service(project, { maxTraces: 2 }, async () => {
      arrived.push(sampler.stats().tail.heldTraces);
      if (arrived.length === 5) release();
      await opened;
    });
    const responses = await Promise.all(Array.from({ length: 5 }, () => fetch(`${url}/work?fail=1`, { method: "POST" })));
    assert.deepEqual(
      responses.map((r) => r.status),
      [500, 500, 500, 500, 500],
    );
    assert.ok(Math.max(...arrived) <= 2, `held at most 2 traces at once, saw ${JSON.stringify(arrived)}`);
    const stats = sampler.stats();
    assert.equal(stats.tail.overflowTraces, 3);
    assert.deepEqual(stats.requests, { keep: 0, drop: 3, tail: 2 });
    assert.equal(stats.tail.kept.error, 2);
    const runs = await projectRuns(project);
    assert.equal(new Set(runs.map((r) => r.trace_id)).size, 2, "the two recorded failures were kept");
    assert.equal(sampler.stats().tail.heldTraces, 0);
  });

  test("runs past maxRunsPerTrace are discarded and counted; the kept trace has the ones before", async () => {
    const project = `tail-${randomUUID()}`;
    const { url, sampler } = await service(project, { maxRunsPerTrace: 4 }, async () => undefined);
    const response = await fetch(`${url}/work?steps=10&fail=1`, { method: "POST" });
    assert.equal(response.status, 500);
    const runs = await projectRuns(project);
    // Four operations held (the request's create, step 0's create and update, step 1's create); the other
    // 17 step operations were over the limit. Once kept, the request's final update goes out as usual.
    assert.deepEqual(runs.map((r) => r.name).sort(), ["POST /work", "step", "step"]);
    assert.equal(sampler.stats().tail.overflowRuns, 17);
  });

  test("a successful fast request is discarded at the end: nothing is sent, nothing stays held", async () => {
    const project = `tail-${randomUUID()}`;
    const { url, sampler } = await service(project, {}, async () => undefined);
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${url}/work?steps=3`, { method: "POST" })).status, 200);
    assert.deepEqual(await projectRuns(project), []);
    const stats = sampler.stats().tail;
    assert.equal(stats.discarded, 5);
    assert.deepEqual([stats.heldTraces, stats.heldRuns, stats.heldBytes], [0, 0, 0]);
  });

  test("limits that are not positive numbers are refused when the sampler is made", () => {
    for (const limits of [{ maxTraces: 0 }, { ttlMs: Number.NaN }, { maxBytes: -1 }]) {
      assert.throws(() => createSampler({ tail: { limits } }), /tail limit \w+ must be a number > 0/);
    }
  });
});
