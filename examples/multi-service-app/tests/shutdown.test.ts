// A service stops within its shutdown budget, below the launcher's SIGKILL
// deadline, even while a request is stuck on a model call that never answers:
// the request is cut off when the drain share of the budget is spent, and its
// run, ended by the disconnect, is still flushed before the process exits.
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, test } from "node:test";
import { Client, type Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { runFromV2, startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { spawnService } from "../launch.js";
import { stackEnv } from "./helpers.js";

const PROJECT = "multi-service-shutdown";
/** runs.query returns only ids unless told which fields to send. */
const SELECTS: RunSelectField[] = ["ID", "NAME", "START_TIME", "END_TIME", "ERROR", "EXTRA", "METADATA", "TRACE_ID", "PARENT_RUN_IDS"];

let traceServer: TraceServerHandle;
let modelServer: ModelServerHandle;
let client: Client;

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  modelServer = await startModelServer({ port: 0 });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});

after(async () => {
  await Promise.all([traceServer?.close(), modelServer?.close()]);
});

async function projectRuns(): Promise<Run[]> {
  // A project exists once its first run has arrived.
  if (!(await client.hasProject({ projectName: PROJECT }))) return [];
  const project = await client.readProject({ projectName: PROJECT });
  const runs: Run[] = [];
  for await (const item of client.runs.query({ project_ids: [project.id], selects: SELECTS })) runs.push(runFromV2(item));
  return runs;
}

// The guard turns "waits for the hung request forever" into a failure; the budget under test is 2 s,
// and without one the launcher's SIGKILL (10 s) ends the process with no exit code.
test("a service with a request that never ends exits 0 on SIGTERM within its budget, with that request's run ended and flushed", { timeout: 60_000 }, async () => {
  const llm = await spawnService("llm", {
    // "+hang": the local model endpoint never answers.
    env: { ...stackEnv(traceServer, modelServer, PROJECT), LLM_PORT: "0", OPENAI_MODEL: "gpt-4o-mini+hang", SHUTDOWN_TIMEOUT_MS: "2000" },
  });
  const answer = fetch(`${llm.url}/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message: "Will this answer arrive?", documents: [] }),
  }).then(
    (response) => response.status,
    (error: unknown) => error,
  );
  // Readiness: the request's run has reached the trace server, so the request is in flight.
  let root: Run | undefined;
  while (root === undefined) {
    root = (await projectRuns()).find((r) => r.parent_run_id == null);
    if (root === undefined) await delay(50);
  }

  const code = await llm.stop();
  assert.equal(code, 0, llm.output());
  assert.match(llm.output(), /\[shutdown\] SIGTERM: not accepting connections; finishing 1 in-flight request\(s\) within 1500 ms/);
  assert.match(llm.output(), /\[shutdown\] in-flight requests cut off at the deadline; traces flushed in \d+ ms/);
  assert.ok((await answer) instanceof Error, "the cut-off caller sees its connection end, not an answer");

  const runs = await projectRuns();
  const request = runs.find((r) => r.id === root.id);
  assert.ok(request?.end_time, `the request's run was ended and flushed: ${JSON.stringify(runs.map((r) => [r.name, r.end_time ?? null, r.error ?? null]))}`);
  assert.equal(request.name, "POST /generate");
  assert.match(String(request.error), /client disconnected/);
  assert.equal(request.extra?.metadata?.["http.client_disconnected"], true);
});
