// Edge sampling (sampling.ts) against the real SDK and the local trace server:
// an edge decides keep or drop, the decision travels signed to an internal
// service, a dropped request leaves no run anywhere (LangChain's included), a
// kept one is one complete trace, and neither a public caller nor an unsigned
// one can choose the decision.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { RunnableLambda } from "@langchain/core/runnables";
import express from "express";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { getCurrentRunTree, traceable, withRunTree } from "langsmith/traceable";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import {
  SAMPLING_HEADER,
  SIGNATURE_HEADER,
  createSampler,
  droppedRun,
  flushTraces,
  getRequestRun,
  injectTraceHeaders,
  langsmithTracing,
  readInbound,
  signContext,
  traced,
  tracedFetch,
  type Sampler,
  type SamplingEvent,
} from "../index.js";
import { isolateFromLangSmithEnv, listen, segment, type Listening } from "./helpers.js";

isolateFromLangSmithEnv();

const KEY = randomBytes(32).toString("hex");
let traceServer: TraceServerHandle;
let client: Client;
const open: Listening[] = [];

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});

after(async () => {
  for (const server of open) await server.close();
  await traceServer?.close();
});

/** Every run in the project; none when nothing ever created the project. */
async function projectRuns(project: string): Promise<Run[]> {
  // The samplers' own clients hold the runs; flushTraces flushes those too.
  assert.equal((await flushTraces({ timeoutMs: 10_000 })).flushed, true);
  const runs: Run[] = [];
  try {
    for await (const run of client.listRuns({ projectName: project })) runs.push(run);
  } catch (error) {
    if (!/not found/.test(String(error))) throw error;
  }
  return runs;
}

/** Numbers that alternate below and above one half, so a rate of 0.5 keeps every other request. */
function alternating(): () => number {
  let i = 0;
  return () => (i++ % 2 === 0 ? 0.25 : 0.75);
}

interface Pair {
  edge: Listening;
  internal: Listening;
  edgeSampler: Sampler;
  internalSampler: Sampler;
  seen: Array<{ sampling: string | undefined; trace: string | undefined }>;
}

/** An edge (public) calling an internal service (signed trust) that runs a LangChain runnable and a traced step. */
async function pair(project: string, rate: number, internalTrust: "signed" | "mesh" = "signed"): Promise<Pair> {
  const clientConfig = { apiUrl: traceServer.url, apiKey: "local" };
  const edgeSampler = createSampler({ rate, random: alternating(), clientConfig });
  const internalSampler = createSampler({ rate: 1, clientConfig });
  const seen: Pair["seen"] = [];
  const lookup = traced(async (q: string) => ({ q, hits: q.length }), { name: "lookup" });
  const summarize = RunnableLambda.from(async (text: string) => text.toUpperCase()).withConfig({ runName: "summarize" });

  const inner = express();
  inner.use((req, _res, next) => {
    seen.push({ sampling: req.get(SAMPLING_HEADER), trace: req.get("langsmith-trace") });
    next();
  });
  inner.use(
    langsmithTracing({ trust: internalTrust === "signed" ? { signedBy: KEY } : "mesh", projectName: project, enabled: true, sampling: internalSampler, service: "internal" }),
  );
  inner.post("/work", async (_req, res) => {
    const found = await lookup("question");
    res.json({ found, summary: await summarize.invoke("answer") });
  });
  const internal = await listen(inner);
  open.push(internal);

  const step = traced(async (n: number) => n + 1, { name: "edge_step" });
  const outer = express();
  outer.use(langsmithTracing({ trust: "edge", projectName: project, enabled: true, sampling: edgeSampler, service: "edge" }));
  outer.post("/chat", async (req, res) => {
    await step(1);
    const answer = await tracedFetch(`${internal.url}/work`, { method: "POST" }, { signingKey: KEY });
    res.json({ traceId: getRequestRun(req)?.trace_id ?? null, inner: await answer.json() });
  });
  const edge = await listen(outer);
  open.push(edge);
  return { edge, internal, edgeSampler, internalSampler, seen };
}

describe("edge sampling", () => {
  test("a rate of 0.5 keeps every other request as one complete trace; the dropped ones leave no run on either service", async () => {
    const project = `sampling-${randomUUID()}`;
    const { edge, edgeSampler, internalSampler, seen } = await pair(project, 0.5);
    const events: SamplingEvent[] = [];
    internalSampler.on((e) => events.push(e));
    const kept: string[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${edge.url}/chat`, { method: "POST" });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { traceId: string | null };
      assert.equal(response.headers.get("x-trace-id"), body.traceId);
      if (body.traceId !== null) kept.push(body.traceId);
    }
    assert.equal(kept.length, 10);
    assert.deepEqual(edgeSampler.stats().requests, { keep: 10, drop: 10, tail: 0 });
    assert.deepEqual(internalSampler.stats().requests, { keep: 10, drop: 10, tail: 0 });
    assert.deepEqual(
      events.map((e) => (e.type === "decision" ? `${e.decision}/${e.source}` : e.type)),
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? "keep/caller" : "drop/caller")),
    );
    // Keep is the trace header alone; drop reached the internal service signed, without a trace header.
    assert.deepEqual(
      seen.map((s) => [s.sampling ?? null, s.trace === undefined ? "no trace" : "trace"]),
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? [null, "trace"] : ["drop", "no trace"])),
    );

    const runs = await projectRuns(project);
    const ids = new Set(runs.map((r) => r.id));
    assert.deepEqual(runs.filter((r) => r.parent_run_id && !ids.has(r.parent_run_id)), [], "no orphans");
    assert.deepEqual([...new Set(runs.map((r) => r.trace_id))].sort(), [...kept].sort(), "only the kept requests' traces exist");
    for (const traceId of kept) {
      const names = runs
        .filter((r) => r.trace_id === traceId)
        .map((r) => r.name)
        .sort();
      assert.deepEqual(names, ["POST /chat", "POST /work", "edge_step", "lookup", "summarize"]);
    }
  });

  test("a public caller cannot force a trace: the edge ignores x-langsmith-sampling and langsmith-trace", async () => {
    const project = `sampling-${randomUUID()}`;
    const { edge, edgeSampler } = await pair(project, 0);
    const forced = await fetch(`${edge.url}/chat`, { method: "POST", headers: { [SAMPLING_HEADER]: "keep", "langsmith-trace": segment() } });
    assert.equal(forced.status, 200);
    assert.equal(forced.headers.get("x-trace-id"), null);
    assert.deepEqual(edgeSampler.stats().requests, { keep: 0, drop: 1, tail: 0 });
    assert.deepEqual(await projectRuns(project), []);
  });

  test("an unsigned drop is not followed behind { signedBy }; behind mesh it is", async () => {
    const project = `sampling-${randomUUID()}`;
    const signed = await pair(project, 1);
    const unsigned = await fetch(`${signed.internal.url}/work`, { method: "POST", headers: { [SAMPLING_HEADER]: "drop" } });
    assert.equal(unsigned.status, 200);
    assert.notEqual(unsigned.headers.get("x-trace-id"), null, "an unverified decision does not stop this service tracing");
    assert.deepEqual(signed.internalSampler.stats().requests, { keep: 1, drop: 0, tail: 0 });

    const mesh = await pair(project, 1, "mesh");
    const followed = await fetch(`${mesh.internal.url}/work`, { method: "POST", headers: { [SAMPLING_HEADER]: "drop" } });
    assert.equal(followed.headers.get("x-trace-id"), null);
    assert.deepEqual(mesh.internalSampler.stats().requests, { keep: 0, drop: 1, tail: 0 });
  });

  test("the signature covers the decision: a signed context with its decision changed is not continued", async () => {
    const run = new RunTree({ name: "caller", client, tracingEnabled: true });
    const sent = await withRunTree(run, () => injectTraceHeaders({}, { signingKey: KEY }));
    const trace = [sent.get("langsmith-trace") ?? ""];
    const baggage = [sent.get("baggage") ?? ""];
    const signature = [sent.get(SIGNATURE_HEADER) ?? ""];
    assert.equal(readInbound({ trace, baggage, signature }, { trusted: { signedBy: KEY } }).kind, "continued");
    const altered = readInbound({ trace, baggage, signature, sampling: ["tail"] }, { trusted: { signedBy: KEY } });
    assert.equal(altered.kind === "restarted" && altered.reason, "signature-invalid");
    const tail = signContext(trace[0] ?? "", baggage[0], KEY, Date.now(), "tail");
    assert.equal(readInbound({ trace, baggage, signature: [tail], sampling: ["tail"] }, { trusted: { signedBy: KEY } }).kind, "continued");
  });
});

describe("traced and the shared dropped run", () => {
  test("under a dropped request traced calls the function itself; under a run it makes a child run", async () => {
    const seenStores: unknown[] = [];
    const fn = traced(async (x: number) => {
      seenStores.push(getCurrentRunTree(true));
      return x * 2;
    }, { name: "double" });
    assert.equal(await withRunTree(droppedRun(), () => fn(2)), 4);
    assert.equal(seenStores[0], droppedRun());
    const parent = new RunTree({ name: "parent", client, project_name: `sampling-${randomUUID()}`, tracingEnabled: true });
    assert.equal(await withRunTree(parent, () => fn(3)), 6);
    const child = seenStores[1] as RunTree;
    assert.equal(child.name, "double");
    assert.equal(child.parent_run?.id, parent.id);
  });

  test("traced keeps traceable's promise contract when it calls the function itself", async () => {
    const sync = traced((x: number) => x + 1, { name: "sync" });
    const result = withRunTree(droppedRun(), () => sync(1));
    assert.equal(await result, 2);
    const throws = traced((): number => {
      throw new Error("boom");
    });
    await assert.rejects(withRunTree(droppedRun(), async () => throws()), /boom/);
  });

  test("the shared run collects nothing from the traceable calls made under it", async () => {
    const plain = traceable(async () => 1, { name: "plain" });
    const run = droppedRun();
    await withRunTree(run, async () => {
      for (let i = 0; i < 1000; i++) await plain();
    });
    assert.equal(run.child_runs.length, 0);
    assert.equal((run as unknown as Record<symbol, unknown>)[Symbol.for("lc:child_run_end_promises")], undefined);
  });

  test("tracedFetch under a dropped request sends drop and no trace context", async () => {
    const headers = await withRunTree(droppedRun(), async () => injectTraceHeaders({ "langsmith-trace": "stale", baggage: "langsmith-tags=x,vendor=1" }, { signingKey: KEY }));
    assert.equal(headers.get(SAMPLING_HEADER), "drop");
    assert.equal(headers.get("langsmith-trace"), null);
    assert.equal(headers.get("baggage"), "vendor=1");
    assert.match(headers.get(SIGNATURE_HEADER) ?? "", /^v1,t=\d+,s=/);
  });

  test("a sampling rate outside 0..1 is refused when the sampler is made", () => {
    for (const rate of [-0.1, 1.5, Number.NaN, "0.5" as unknown as number]) assert.throws(() => createSampler({ rate }), /sampling rate must be a number from 0 to 1/);
  });
});
