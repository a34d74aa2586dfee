// Sampling with LANGSMITH_TRACING=true in the environment, as a deployed
// service has it, and LangChain streaming from the local model: a dropped
// request and a discarded tail request leave no run on the trace server (not
// even the streamed model calls, which LangChain's `.stream()` runs outside the
// request's context), while a kept request and a kept tail request store the
// request's run with every model call under it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import { LangChainTracer } from "@langchain/core/tracers/tracer_langchain";
import express from "express";
import { Client } from "langsmith";
import { startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { createSampler, flushTraces, getRequestRun, langsmithTracing, tracingEnabledFromEnv, type Sampler } from "../index.js";
import { isolateFromLangSmithEnv, listen, type Listening } from "./helpers.js";

isolateFromLangSmithEnv();

let traceServer: TraceServerHandle;
let model: ModelServerHandle;
const open: Listening[] = [];
const samplers: Sampler[] = [];

before(async () => {
  [traceServer, model] = await Promise.all([startTraceServer({ port: 0 }), startModelServer({ port: 0 })]);
  // What a deployed service sets; every client made from now on (LangChain's included) writes here.
  process.env.LANGSMITH_ENDPOINT = traceServer.url;
  process.env.LANGSMITH_API_KEY = "local";
  process.env.LANGSMITH_TRACING = "true";
});

after(async () => {
  for (const server of open) await server.close();
  for (const sampler of samplers) sampler.close();
  await Promise.all([traceServer?.close(), model?.close()]);
});

interface StoredRun {
  id: string;
  name: string;
  trace_id: string;
  parent_run_id: string | null;
}

/** Every run of the trace id, or of every trace when none is given, on the whole server (any project). */
async function storedRuns(traceId?: string): Promise<StoredRun[]> {
  // A stray root goes through LangChain's own default client (a tracer made without one gets it), which the kit's flush does not know.
  const langChainClient = new LangChainTracer().client;
  assert.ok(langChainClient instanceof Client);
  assert.equal((await flushTraces({ timeoutMs: 10_000, client: langChainClient })).flushed, true);
  const rows = traceServer.store.db.prepare("SELECT id, name, trace_id, parent_run_id FROM runs ORDER BY rowid").all() as unknown as StoredRun[];
  return traceId === undefined ? rows : rows.filter((r) => r.trace_id === traceId);
}

/** A service whose handler streams one ChatOpenAI answer and invokes another, then answers `status`. */
async function service(sampler: Sampler, project: string): Promise<string> {
  samplers.push(sampler);
  const chat = new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", maxRetries: 0, configuration: { baseURL: model.url } });
  const app = express();
  // No `enabled`: the environment's LANGSMITH_TRACING=true is what turns tracing on.
  app.use(langsmithTracing({ trust: "edge", projectName: project, sampling: sampler }));
  app.post("/chat", async (req, res) => {
    let streamed = "";
    for await (const chunk of await chat.stream("What does baggage carry?")) streamed += chunk.text;
    const invoked = await chat.invoke("And langsmith-trace?");
    res.status(req.query.fail === "1" ? 500 : 200).json({ streamed, invoked: invoked.text, traceId: getRequestRun(req)?.trace_id ?? null });
  });
  const server = await listen(app);
  open.push(server);
  return server.url;
}

async function ask(url: string, fail = false): Promise<{ status: number; streamed: string; traceId: string | null }> {
  const response = await fetch(`${url}/chat${fail ? "?fail=1" : ""}`, { method: "POST" });
  const body = (await response.json()) as { streamed: string; traceId: string | null };
  return { status: response.status, ...body };
}

describe("sampling with LANGSMITH_TRACING=true and streamed LangChain calls", () => {
  test("a dropped request stores no run at all, its streamed model call included", async () => {
    const url = await service(createSampler({ rate: 0 }), "stream-drop");
    const before = (await storedRuns()).length;
    const answer = await ask(url);
    assert.equal(answer.status, 200);
    assert.ok(answer.streamed.length > 0, "the model streamed an answer");
    assert.equal(answer.traceId, null);
    const stray = (await storedRuns()).slice(before);
    assert.deepEqual(stray, [], "runs stored for a dropped request");
  });

  test("a tail request that is neither slow nor failed stores no run at all", async () => {
    const sampler = createSampler({ rate: 0, tail: {} });
    const url = await service(sampler, "stream-tail-discard");
    const before = (await storedRuns()).length;
    const answer = await ask(url);
    assert.equal(answer.status, 200);
    assert.ok(answer.streamed.length > 0 && answer.traceId !== null);
    assert.deepEqual((await storedRuns()).slice(before), [], "runs stored for a discarded tail request");
    assert.equal(sampler.stats().tail.discarded, 1);
  });

  test("a kept request stores its run with both model calls under it, and nothing else", async () => {
    const url = await service(createSampler({ rate: 1 }), "stream-keep");
    const before = (await storedRuns()).length;
    const answer = await ask(url);
    assert.ok(answer.traceId !== null);
    const runs = await storedRuns();
    assert.deepEqual(runs.slice(before).filter((r) => r.trace_id !== answer.traceId), [], "runs outside the request's trace");
    assertOneRequestTrace(await storedRuns(answer.traceId));
  });

  test("a failed tail request is kept whole, its streamed model call included", async () => {
    const sampler = createSampler({ rate: 0, tail: {} });
    const url = await service(sampler, "stream-tail-keep");
    const before = (await storedRuns()).length;
    const answer = await ask(url, true);
    assert.equal(answer.status, 500);
    assert.ok(answer.traceId !== null);
    assert.deepEqual((await storedRuns()).slice(before).filter((r) => r.trace_id !== answer.traceId), [], "runs outside the request's trace");
    assertOneRequestTrace(await storedRuns(answer.traceId));
    assert.equal(sampler.stats().tail.kept.error, 1);
  });

  test("the sampler took the switch: the environment no longer turns tracing on outside a request", () => {
    assert.equal(tracingEnabledFromEnv(), false);
    assert.equal(samplers[0]?.tracingEnabled(), true);
  });

  test("a variable set again is taken again; ownTracingSwitch: false leaves the environment alone", () => {
    const owning = createSampler();
    const leaving = createSampler({ ownTracingSwitch: false });
    samplers.push(owning, leaving);
    process.env.LANGSMITH_TRACING = "false";
    assert.equal(leaving.tracingEnabled(), false);
    assert.equal(process.env.LANGSMITH_TRACING, "false");
    assert.equal(owning.tracingEnabled(), false, "the new value is the switch now");
    assert.equal(process.env.LANGSMITH_TRACING, undefined);
    process.env.LANGCHAIN_TRACING_V2 = "true";
    assert.equal(owning.tracingEnabled(), true);
    assert.equal(process.env.LANGCHAIN_TRACING_V2, undefined);
    assert.equal(leaving.tracingEnabled(), false, "a sampler that leaves the environment reads it as it is");
  });
});

function assertOneRequestTrace(runs: StoredRun[]): void {
  const roots = runs.filter((r) => r.parent_run_id === null);
  assert.deepEqual(roots.map((r) => r.name), ["POST /chat"], `one root, the request's run: ${JSON.stringify(runs)}`);
  const children = runs.filter((r) => r.parent_run_id !== null);
  assert.deepEqual(children.map((r) => r.name), ["ChatOpenAI", "ChatOpenAI"], "the streamed and the invoked model call");
  for (const child of children) assert.equal(child.parent_run_id, roots[0]?.id, `${child.name} hangs under the request's run`);
}
