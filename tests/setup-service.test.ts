// The LANGSMITH_SERVICE convention, end to end: real SDK clients, LangChain runs and a real trace server.
// The order of the tests matters: setServiceName must run before this process creates any Client.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client, RunTree } from "langsmith";
import { traceable } from "langsmith/traceable";
import { RunnableLambda } from "@langchain/core/runnables";
import {
  applyConfig,
  chatModel,
  loadConfig,
  readTrace,
  serviceMetadata,
  serviceName,
  serviceOf,
  setServiceName,
  startModelServer,
  startTraceServer,
  type ModelServerHandle,
  type TraceRun,
  type TraceServerHandle,
} from "@tracing-patterns/setup";

let traces: TraceServerHandle;
let model: ModelServerHandle;

before(async () => {
  traces = await startTraceServer({ port: 0 });
  model = await startModelServer({ port: 0 });
  delete process.env.LANGSMITH_SERVICE;
  applyConfig(
    loadConfig({
      env: Object.assign(process.env, { TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: model.url, TRACING_PATTERNS_OFFLINE: "true" }),
      envFile: false,
    }),
  );
});

after(async () => {
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  await Promise.all([traces.close(), model.close()]);
});

function ownService(run: TraceRun): unknown {
  return (run.extra?.["metadata"] as Record<string, unknown> | undefined)?.["LANGSMITH_SERVICE"];
}

test("serviceOf: own label, else the nearest labeled ancestor, else undefined; cycles terminate", () => {
  const a: TraceRun = { id: "a", name: "a", run_type: "chain", extra: { metadata: { LANGSMITH_SERVICE: "gateway" } } };
  const b: TraceRun = { id: "b", name: "b", run_type: "chain", parent_run_id: "a" };
  const c: TraceRun = { id: "c", name: "c", run_type: "llm", parent_run_id: "b", extra: { metadata: { LANGSMITH_SERVICE: "worker" } } };
  const d: TraceRun = { id: "d", name: "d", run_type: "tool", parent_run_id: "c" };
  const runs = [a, b, c, d];
  assert.equal(serviceOf(a, runs), "gateway");
  assert.equal(serviceOf(b, runs), "gateway");
  assert.equal(serviceOf(d, runs), "worker");
  assert.equal(serviceOf(d), undefined, "without the run set there are no ancestors to consult");
  const x: TraceRun = { id: "x", name: "x", run_type: "chain", parent_run_id: "y" };
  const y: TraceRun = { id: "y", name: "y", run_type: "chain", parent_run_id: "x" };
  assert.equal(serviceOf(x, [x, y]), undefined);
});

test("setServiceName before the first traced call labels traceable runs, and LangChain runs nested in them and outside them", async () => {
  setServiceName("gateway");
  assert.equal(serviceName(), "gateway");
  const retrieve = RunnableLambda.from(async (q: string) => [`doc about ${q}`]).withConfig({ runName: "retrieve" });
  const llm = chatModel({ maxRetries: 0 });
  let traceId = "";
  await traceable(
    async (question: string) => {
      const docs = await retrieve.invoke(question);
      const answer = await llm.invoke(`Answer using ${docs.join(", ")}: ${question}`);
      return { answer: answer.content };
    },
    {
      name: "handle_request",
      on_start: (runTree) => {
        traceId = runTree?.trace_id ?? "";
      },
    },
  )("what is tracing?");
  const runs = await readTrace(traceId, { expectRuns: 3 });
  assert.deepEqual(runs.map((r) => r.name).sort(), ["ChatOpenAI", "handle_request", "retrieve"]);
  for (const run of runs) assert.equal(ownService(run), "gateway", `${run.name} carries the label itself`);

  // LangChain outside any traceable uses LangChain's own default Client, created now, after setServiceName.
  const standalone = RunnableLambda.from(async (x: number) => x + 1).withConfig({ runName: "standalone_step", metadata: { probe: "standalone" } });
  let standaloneTrace = "";
  await standalone.invoke(1, {
    callbacks: [
      {
        handleChainStart: (_chain: unknown, _inputs: unknown, runId: string, _parentRunId?: string) => {
          standaloneTrace ||= runId;
        },
      },
    ],
  });
  const [standaloneRun] = await readTrace(standaloneTrace, { expectRuns: 1 });
  assert.equal(standaloneRun?.name, "standalone_step");
  assert.equal(ownService(standaloneRun as TraceRun), "gateway");
});

test("a Client keeps the LANGSMITH_SERVICE it saw at construction; so renaming after the shared Client exists throws", async () => {
  const client = new Client();
  process.env.LANGSMITH_SERVICE = "renamed-too-late";
  let traceId = "";
  try {
    await traceable(async () => "x", {
      name: "cached_label_probe",
      client,
      on_start: (runTree) => {
        traceId = runTree?.trace_id ?? "";
      },
    })();
  } finally {
    process.env.LANGSMITH_SERVICE = "gateway";
  }
  const [probe] = await readTrace(traceId, { client, expectRuns: 1 });
  assert.equal(ownService(probe as TraceRun), "gateway", "the environment change did not reach the existing Client");

  assert.throws(() => setServiceName("billing"), /came too late.*LANGSMITH_SERVICE="gateway".*serviceMetadata\("billing"\)/s);
  assert.equal(serviceName(), "gateway", "the environment is left unchanged");
  setServiceName("gateway");
});

test("a per-run override labels that run and, through metadata inheritance, its children", async () => {
  let traceId = "";
  const inner = traceable(async () => "done", { name: "billing_step" });
  await traceable(
    async () => {
      await traceable(async () => inner(), { name: "billing_service", metadata: serviceMetadata("billing") })();
    },
    {
      name: "shared_kernel_root",
      on_start: (runTree) => {
        traceId = runTree?.trace_id ?? "";
      },
    },
  )();
  const runs = await readTrace(traceId, { expectRuns: 3 });
  const byName = new Map(runs.map((r) => [r.name, r]));
  assert.equal(ownService(byName.get("shared_kernel_root") as TraceRun), "gateway");
  assert.equal(ownService(byName.get("billing_service") as TraceRun), "billing");
  assert.equal(ownService(byName.get("billing_step") as TraceRun), "billing");
});

test("pitfall: an explicit LANGSMITH_SERVICE in run metadata travels in the baggage header to the next service", () => {
  const upstream = new RunTree({ name: "upstream", run_type: "chain", metadata: serviceMetadata("billing"), tracingEnabled: false });
  const headers = upstream.toHeaders();
  assert.match(headers.baggage, /langsmith-metadata=/);
  const downstreamParent = RunTree.fromHeaders(headers);
  const downstreamRun = downstreamParent?.createChild({ name: "downstream", run_type: "chain" });
  // The receiving process's own LANGSMITH_SERVICE env value would lose against this inherited metadata.
  assert.equal((downstreamRun?.extra?.["metadata"] as Record<string, unknown>)["LANGSMITH_SERVICE"], "billing");
});
