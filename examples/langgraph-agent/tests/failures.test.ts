// An agent that cannot be reached, and the research service on its own. No
// Agent Server here: a dead address stands in for one that is down. A failing
// agent call must show in the trace where it failed, once per attempt, and the
// caller must get a 502 that names the agent and quotes the trace id.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { Client } from "langsmith";
import { assertTrace, readTrace, startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { spawnAgentServer, spawnService, type ServiceProcess } from "../launch.js";
import { byName, postRun, serviceOfRun, shape, stackEnv } from "./helpers.js";

let traceServer: TraceServerHandle;
let modelServer: ModelServerHandle;
let research: ServiceProcess;
let env: NodeJS.ProcessEnv;
let client: Client;
/** An address nothing listens on: a port taken and released. */
let deadUrl: string;

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  modelServer = await startModelServer({ port: 0 });
  env = stackEnv(traceServer, modelServer, "langgraph-agent-failures");
  research = await spawnService("research-agent", { env: { ...env, RESEARCH_PORT: "0" } });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  deadUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

after(async () => {
  const code = await research?.stop();
  await Promise.all([traceServer?.close(), modelServer?.close()]);
  assert.equal(code, 0, research?.output());
});

async function supervisorWith(urls: { research: string; writing: string }, extra: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  return spawnService("supervisor", { env: { ...env, SUPERVISOR_PORT: "0", RESEARCH_URL: urls.research, AGENT_SERVER_URL: urls.writing, ...extra } });
}

test("a writing agent that is down: 502 naming it, and every attempt in the trace with its error", async () => {
  const supervisor = await supervisorWith({ research: research.url, writing: deadUrl }, { WRITING_ATTEMPTS: "3" });
  try {
    const response = await postRun(supervisor.url, { message: "Look up in the notes how baggage carries the user id.", thread_id: "thread-down", user_id: "frank" });
    assert.equal(response.status, 502, JSON.stringify(response.body));
    assert.match(String(response.body.error), /^writing-agent: unreachable/);
    assert.equal(response.body.traceId, response.traceId);
    const runs = await readTrace(response.traceId, { client, expectRuns: 20 });
    assertTrace(runs, { traceId: response.traceId, rootName: "POST /run", services: ["supervisor", "research-agent"] });
    const attempts = runs.filter((r) => r.name === "writing_agent");
    assert.equal(attempts.length, 3, shape(runs).join("\n"));
    for (const attempt of attempts) {
      assert.match(String(attempt.error), /writing-agent: unreachable/);
      assert.equal(attempt.parent_run_id, byName(runs, "supervisor").id);
    }
    // The research before it succeeded, and the failure is on the runs above the failed node, up to the request.
    assert.equal(byName(runs, "research_agent", "supervisor").error ?? undefined, undefined);
    assert.match(String(byName(runs, "supervisor").error), /writing-agent/);
    assert.match(String(byName(runs, "POST /run").error), /HTTP 502|writing-agent/);
  } finally {
    assert.equal(await supervisor.stop(), 0, supervisor.output());
  }
});

test("a research service that is down fails its node once (no retry policy there), then the request", async () => {
  const supervisor = await supervisorWith({ research: deadUrl, writing: deadUrl });
  try {
    const response = await postRun(supervisor.url, { message: "Look up in the notes what the trace header carries." });
    assert.equal(response.status, 502, JSON.stringify(response.body));
    assert.match(String(response.body.error), /^research-agent: unreachable/);
    const runs = await readTrace(response.traceId, { client, expectRuns: 6 });
    assertTrace(runs, { traceId: response.traceId, rootName: "POST /run", services: ["supervisor"] });
    const node = byName(runs, "research_agent", "supervisor");
    assert.match(String(node.error), /research-agent: unreachable/);
    assert.equal(runs.filter((r) => r.name === "writing_agent").length, 0);
  } finally {
    assert.equal(await supervisor.stop(), 0, supervisor.output());
  }
});

test("the research service answers JSON too, and its graph runs nest under its request run", async () => {
  const response = await fetch(`${research.url}/research`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "How do threads keep headers?" }) });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { notes: string; sources: string[] };
  assert.equal(body.sources[0], "doc-threads");
  assert.match(body.notes, /search_notes returned/);
  const traceId = response.headers.get("x-trace-id") ?? "";
  const runs = await readTrace(traceId, { client, expectRuns: 11 });
  assertTrace(runs, { traceId, rootName: "POST /research", services: ["research-agent"], minRuns: 11 });
  assert.equal(byName(runs, "research_agent").parent_run_id, traceId);
  for (const run of runs) assert.equal(serviceOfRun(run), "research-agent", run.name);
});

test("the research service refuses a bad body with a 400 and a trace id", async () => {
  for (const body of ['{"question": ""}', "{}", '{"question": 7}', "[not json"]) {
    const response = await fetch(`${research.url}/research`, { method: "POST", headers: { "content-type": "application/json" }, body });
    assert.equal(response.status, 400, body);
    const json = (await response.json()) as { error?: unknown; traceId?: unknown };
    assert.equal(typeof json.error, "string");
    assert.equal(json.traceId, response.headers.get("x-trace-id"));
  }
});

test("an Agent Server whose port is taken fails to start with a clear error instead of hanging", async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  const address = taken.address();
  const port = typeof address === "object" && address ? address.port : 0;
  try {
    // The CLI itself stays up after its server fails to listen; the launcher must notice the logged error.
    await assert.rejects(spawnAgentServer({ env, port, timeoutMs: 60_000, isolatedState: true }), new RegExp(`failed to start: port ${port} is in use \\(set AGENT_SERVER_PORT`));
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
});
