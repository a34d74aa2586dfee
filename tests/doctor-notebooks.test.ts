// The trace doctor behind the notebook helpers (setup/src/notebook/healthy.ts), against real traces
// in an in-process trace server: a trace expectTrace or expectIsolated verifies must give the doctor
// no problem (unless the cell names it in allowFindings), and expectBrokenTrace's `diagnosis` must
// be what the doctor reports. Also the false alarms the notebooks' healthy traces raised, each
// reproduced with the pattern that raised it.
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import type { Run } from "langsmith";
import { traceable } from "langsmith/traceable";
import {
  applyConfig,
  concurrentRequests,
  diagnoseTrace,
  expectBrokenTrace,
  expectIsolated,
  expectTrace,
  loadConfig,
  readDoctorBatch,
  readDoctorInput,
  readTraces,
  setServiceName,
  startTraceServer,
  traceRoot,
  type TraceDiagnosis,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { checkIsolation, formatIsolation } from "@tracing-patterns/example-async-streaming";

const isolation = { checkIsolation, formatIsolation };
let traces: TraceServerHandle;

before(async () => {
  traces = await startTraceServer({ port: 0 });
  applyConfig(loadConfig({ env: Object.assign(process.env, { TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: "http://127.0.0.1:9" }), envFile: false }));
  setServiceName("notebook");
});
after(async () => {
  await traces?.close();
});

/** Keeps what the helpers print out of the test output. */
function quiet(t: TestContext): void {
  t.mock.method(console, "log", () => undefined);
}

function problems(d: TraceDiagnosis): string[] {
  return d.findings.filter((f) => f.severity === "problem").map((f) => `${f.kind}: ${f.title}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const step = traceable(async (input: { request_id: string }) => sleep(1 + (input.request_id.charCodeAt(6) % 5)), { name: "step" });
const summarize = traceable(async (doc: { text: string }) => ({ words: doc.text.split(" ").length }), { name: "summarize_document" });

describe("false alarms on healthy traces, reproduced", () => {
  test("concurrent requests of one process: a peer request starting while a step runs is not lost context, the same call fanned out is not a retry", async () => {
    // notebook-helpers' and notebook 03's load: requests started together, each running its steps
    // at once. Peers' roots start inside other requests' short steps (same service, same name as
    // the request's own root); a request calls `step` twice with the same input at the same time.
    const requests = await concurrentRequests(12, (request_id) => Promise.all([step({ request_id }), step({ request_id })]));
    const ids = [...requests.values()];
    const runs = await readTraces(ids, { expectRuns: 3 });
    const batch = await readDoctorBatch(new Map(ids.map((id, i) => [id, runs[i] as Run[]])), { waitMs: 1000 });
    for (const input of batch) assert.deepEqual(problems(diagnoseTrace(input)), [], input.traceId);
    // The standalone doctor (npm run doctor) reads the neighbours itself and agrees.
    for (const id of ids.slice(0, 3)) assert.deepEqual(problems(diagnoseTrace(await readDoctorInput(id, { waitMs: 1000 }))), [], id);
  });

  test("a retry is still a duplicate: the same call sent again after the first attempt was given up on", async () => {
    const price = traceable(async (_input: { sku: string }) => sleep(120).then(() => 42), { name: "price_quote" });
    const quote = await traceRoot("quote_order", async () => {
      const first = price({ sku: "sku-7" });
      await sleep(40); // the caller's timeout: it gives up on the first attempt and sends the call again
      return Promise.all([first, price({ sku: "sku-7" })]);
    });
    const d = diagnoseTrace(await readDoctorInput(quote.traceId, { waitMs: 1000 }));
    assert.deepEqual(d.findings.map((f) => `${f.kind}/${f.severity}`), ["duplicate/problem"]);
  });
});

describe("the doctor behind the notebook helpers", () => {
  test("expectTrace: a problem the doctor finds on a verified trace fails the cell, naming it; allowFindings names one with its reason", async (t) => {
    quiet(t);
    const big = await traceRoot("upload_document", () => summarize({ text: "tracing ".repeat(200_000) }));
    await assert.rejects(
      expectTrace(big.traceId, { rootName: "upload_document", minRuns: 2 }),
      /expectTrace: the trace verified, but the trace doctor reports oversized on it[\s\S]*1\. oversized: "summarize_document"/,
    );
    const trace = await expectTrace(big.traceId, { rootName: "upload_document", minRuns: 2, allowFindings: { oversized: "the cell traces the whole document on purpose" } });
    assert.equal(trace.report.ok, true);
    const small = await traceRoot("upload_document", () => summarize({ text: "tracing" }));
    await assert.rejects(
      expectTrace(small.traceId, { rootName: "upload_document", minRuns: 2, allowFindings: { oversized: "no longer true" } }),
      /allowFindings names oversized, and the doctor found no such problem; drop the allowance/,
    );
    await expectTrace(small.traceId, { rootName: "upload_document", minRuns: 2 });
  });

  test("expectIsolated: every request's trace goes to the doctor, in one batch", async (t) => {
    quiet(t);
    const requests = await concurrentRequests(8, (request_id) => step({ request_id }));
    await expectIsolated(requests, { runNames: ["step"], ownRuns: 2, services: ["notebook"], ...isolation });
    const big = await concurrentRequests(2, (request_id) => summarize({ text: `${request_id} `.repeat(150_000) }));
    await assert.rejects(
      expectIsolated(big, { runNames: ["summarize_document"], ownRuns: 1, services: ["notebook"], ...isolation }),
      /expectIsolated: the trace verified, but the trace doctor reports oversized on 2 of the 2 traces/,
    );
  });

  test("expectBrokenTrace: `diagnosis` is what the doctor must report, exactly", async (t) => {
    quiet(t);
    const big = await traceRoot("upload_document", () => summarize({ text: "tracing ".repeat(200_000) }));
    const check = { rootName: "upload_document", runNames: ["chunk_document"], problem: 'no run named "chunk_document"' };
    await expectBrokenTrace(big.traceId, { ...check, diagnosis: ["oversized"] });
    await assert.rejects(
      expectBrokenTrace(big.traceId, { ...check, diagnosis: ["split"] }),
      /expectBrokenTrace: the trace is broken as the cell expects, but the trace doctor reports oversized, not split/,
    );
    const small = await traceRoot("upload_document", () => summarize({ text: "tracing" }));
    await expectBrokenTrace(small.traceId, { ...check, diagnosis: [] });
    await assert.rejects(expectBrokenTrace(small.traceId, { ...check, diagnosis: ["flat"] }), /the trace doctor reports nothing, not flat/);
  });
});
