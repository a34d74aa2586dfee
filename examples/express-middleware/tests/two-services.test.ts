// The demo's two services as real processes on loopback: one request to the
// edge must leave exactly one connected tree in the trace server, spanning
// both services, that the caller can find from the x-trace-id header.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { Client, type Run } from "langsmith";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { isolateFromLangSmithEnv, tracingEnv } from "./helpers.js";

isolateFromLangSmithEnv();

const serverFile = fileURLToPath(new URL("../server.ts", import.meta.url));
const PROJECT = "two-services";

interface Service {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Spawns a role of server.ts and resolves with the URL from its "listening on" line. */
async function startService(role: "edge" | "internal", env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", serverFile, role], {
    env: { ...process.env, ...env, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = new RegExp(`${role} listening on (http://\\S+)`).exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`${role} exited (${code}) before listening:\n${output}`)));
  });
  return { child, url, output: () => output };
}

/** SIGTERM makes a service flush its pending runs and exit 0. */
async function stopService(service: Service): Promise<void> {
  if (service.child.exitCode !== null) return;
  const exited = once(service.child, "exit");
  service.child.kill("SIGTERM");
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, `exit code ${code}:\n${service.output()}`);
}

let traceServer: TraceServerHandle;
let internal: Service | undefined;
let edge: Service | undefined;

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  const env = tracingEnv(traceServer.url, PROJECT);
  internal = await startService("internal", { ...env, LANGSMITH_SERVICE: "internal" });
  edge = await startService("edge", { ...env, LANGSMITH_SERVICE: "edge", INTERNAL_URL: internal.url });
});

after(async () => {
  for (const service of [edge, internal]) if (service && service.child.exitCode === null) service.child.kill("SIGKILL");
  await traceServer?.close();
});

test("one request to the edge is one connected trace across both processes", async () => {
  assert.ok(edge && internal);
  const forgedTraceId = "00000000-0000-4000-8000-000000000000";
  const response = await fetch(`${edge.url}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json", "langsmith-trace": `20250101T000000000000Z${forgedTraceId}`, baggage: "langsmith-project=attacker" },
    body: JSON.stringify({ question: "What does the baggage header carry?" }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { answer: string; sources: number };
  assert.equal(body.sources, 1);
  const traceId = response.headers.get("x-trace-id");
  assert.ok(traceId);
  assert.notEqual(traceId, forgedTraceId);

  // Both services flush on the way out, so everything they traced is stored once they have exited.
  await stopService(edge);
  await stopService(internal);

  const client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  const runs: Run[] = [];
  for await (const run of client.listRuns({ projectName: PROJECT, traceId })) runs.push(run);
  const byName = new Map(runs.map((r) => [r.name, r]));
  assert.deepEqual([...byName.keys()].sort(), ["POST /answer", "POST /chat", "draft_answer", "retrieve_notes"]);
  assert.equal(runs.length, 4);

  const root = byName.get("POST /chat");
  const answer = byName.get("POST /answer");
  const draft = byName.get("draft_answer");
  const retrieve = byName.get("retrieve_notes");
  assert.ok(root && answer && draft && retrieve);
  assert.equal(root.parent_run_id ?? undefined, undefined);
  assert.equal(root.id, traceId);
  assert.equal(answer.parent_run_id, root.id);
  assert.equal(draft.parent_run_id, answer.id);
  assert.equal(retrieve.parent_run_id, draft.id);
  for (const run of runs) {
    assert.equal(run.trace_id, traceId);
    assert.ok(run.end_time, `${run.name} ended`);
    assert.equal(run.error ?? undefined, undefined, `${run.name}: ${run.error}`);
  }

  const service = (run: Run): unknown => run.extra?.metadata?.LANGSMITH_SERVICE;
  assert.equal(service(root), "edge");
  for (const run of [answer, draft, retrieve]) assert.equal(service(run), "internal", run.name);
  assert.equal(root.extra?.metadata?.untrusted_parent_trace_id, forgedTraceId);
  assert.equal(answer.extra?.metadata?.["trace.inbound"], "continued");
  assert.equal(await client.hasProject({ projectName: "attacker" }), false);
});
