// A real two-process trace (gateway here, worker in a child process continuing it from HTTP-style
// headers) written by the unmodified SDK into the local trace server, read back with readTrace and
// verified with verifyTrace; plus a child that drops the headers, which verifyTrace must catch.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { RunTree } from "langsmith";
import { traceable, getCurrentRunTree } from "langsmith/traceable";
import { RunnableLambda } from "@langchain/core/runnables";
import {
  applyConfig,
  formatReport,
  loadConfig,
  readTrace,
  renderTraceText,
  setServiceName,
  startModelServer,
  startTraceServer,
  verifyTrace,
  type ModelServerHandle,
  type TraceServerHandle,
} from "@tracing-patterns/setup";

const run = promisify(execFile);

// Plain ESM JavaScript, so the child needs no TypeScript loader: the worker service's request handler.
const WORKER = `
import { RunTree } from "langsmith";
import { traceable, withRunTree } from "langsmith/traceable";
import { ChatOpenAI } from "@langchain/openai";
const incoming = process.env.INCOMING_HEADERS ? JSON.parse(process.env.INCOMING_HEADERS) : undefined;
const parent = incoming ? RunTree.fromHeaders(incoming) : undefined;
const handle = traceable(async (question) => {
  const llm = new ChatOpenAI({ model: "gpt-4o-mini", maxRetries: 0 });
  const reply = await llm.invoke(question);
  return { answer: reply.content };
}, { name: "worker_handle" });
const result = parent ? await withRunTree(parent, () => handle("summarize the docs")) : await handle("summarize the docs");
await RunTree.getSharedClient().awaitPendingTraceBatches();
console.log(JSON.stringify(result));
`;

let traces: TraceServerHandle;
let model: ModelServerHandle;

before(async () => {
  traces = await startTraceServer({ port: 0 });
  model = await startModelServer({ port: 0 });
  applyConfig(
    loadConfig({
      env: Object.assign(process.env, { TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: model.url, TRACING_PATTERNS_OFFLINE: "true" }),
      envFile: false,
    }),
  );
  setServiceName("gateway");
});

after(async () => {
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  await Promise.all([traces.close(), model.close()]);
});

async function callWorker(propagate: boolean): Promise<void> {
  const headers = propagate ? getCurrentRunTree().toHeaders() : undefined;
  await run(process.execPath, ["--input-type=module", "-e", WORKER], {
    cwd: process.cwd(),
    env: { ...process.env, LANGSMITH_SERVICE: "worker", ...(headers ? { INCOMING_HEADERS: JSON.stringify(headers) } : {}) },
  });
}

async function gatewayRequest(propagate: boolean): Promise<string> {
  let traceId = "";
  const retrieve = RunnableLambda.from(async (q: string) => [`doc about ${q}`]).withConfig({ runName: "retrieve" });
  await traceable(
    async (question: string) => {
      await retrieve.invoke(question);
      await traceable(() => callWorker(propagate), { name: "call_worker", run_type: "tool" })();
    },
    {
      name: "handle_request",
      on_start: (runTree) => {
        traceId = runTree?.trace_id ?? "";
      },
    },
  )("what is distributed tracing?");
  return traceId;
}

test("a trace continued in another process reads back as one complete tree spanning both services", async () => {
  const traceId = await gatewayRequest(true);
  const runs = await readTrace(traceId, { expectRuns: 5 });
  const report = verifyTrace(runs, {
    traceId,
    rootName: "handle_request",
    services: ["gateway", "worker"],
    runNames: ["retrieve", "call_worker", "worker_handle", "ChatOpenAI"],
    minRuns: 5,
  });
  assert.equal(report.ok, true, formatReport(report));
  assert.equal(report.completeness, 100);
  assert.equal(report.propagation, 100);
  assert.deepEqual(report.hops, [{ from: "gateway", to: "worker", count: 1 }]);
  const text = renderTraceText(runs);
  assert.match(text, /└─ call_worker {2}tool {2}\[gateway\]/);
  assert.match(text, / {3}└─ worker_handle {2}chain {2}\[worker\]/);
  assert.match(text, / {6}└─ ChatOpenAI {2}llm {2}\[worker\]/);
});

test("a worker that ignores the incoming headers starts its own trace: verifyTrace reports the missing service", async () => {
  const traceId = await gatewayRequest(false);
  const runs = await readTrace(traceId, { expectRuns: 3 });
  const report = verifyTrace(runs, { traceId, rootName: "handle_request", services: ["gateway", "worker"] });
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems, [`no run from service "worker"`]);
  assert.equal(report.propagation, 50);
  assert.equal(report.completeness, 100, "what did arrive is complete; the worker's runs are simply in another trace");
});
