// OTLP ingest with real processes: LangSmith's own OTel mode (initializeOTEL, run in child
// processes so its global registration stays there), alone and across two processes; two
// OpenTelemetry-instrumented services propagating W3C `traceparent` over HTTP, whose spans must
// form one connected tree; a service continuing a parent that is never exported leaves an
// orphan, kept and flagged.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import type { Run } from "langsmith/schemas";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { otlpIngestFor } from "../setup/src/trace-server/otlp/ingest.js";
import { spanIdToRunId } from "../setup/src/trace-server/otlp/mapping.js";
import { verifyTrace } from "../setup/src/traces/index.js";
import { collect, LOCAL_KEY, sdkClient, serverFor } from "./fixtures/trace-server/helpers.js";

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/otlp/${name}`, import.meta.url));

function byName(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  assert.ok(run, `no run named ${name} among ${runs.map((r) => r.name).join(", ")}`);
  return run;
}

/** Start a fixture under tsx with `env` (on top of PATH/HOME only: no LANGSMITH_* from this process); killed when the test ends. */
function start(t: TestContext, script: string, env: Record<string, string>, args: string[] = []): { child: ChildProcess; firstLine: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", fixture(script), ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => child.kill());
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const firstLine = Promise.race([
    new Promise<string>((resolve) => lines.once("line", resolve)),
    exit.then((code): never => assert.fail(`${script} exited with ${code} before printing a line:\n${stderr}`)),
  ]);
  return { child, firstLine, exit, stderr: () => stderr };
}

async function startService(t: TestContext, server: TraceServerHandle, name: string, project: string, downstream?: string): Promise<string> {
  const env: Record<string, string> = { SERVICE_NAME: name, OTLP_URL: `${server.url}/otel/v1/traces`, OTLP_PROJECT: project };
  if (downstream) env.DOWNSTREAM_URL = downstream;
  const { port } = JSON.parse(await start(t, "otel-service.ts", env).firstLine) as { port: number };
  return `http://127.0.0.1:${port}`;
}

test("LangSmith's OTel mode (initializeOTEL, LANGSMITH_TRACING_MODE=otel) writes spans the SDK reads back as its runs", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (line) => log.push(line) });
  const project = `otel-mode-${randomUUID().slice(0, 8)}`;
  const proc = start(t, "langsmith-otel-mode.ts", {
    LANGSMITH_TRACING: "true",
    LANGSMITH_TRACING_MODE: "otel",
    LANGSMITH_ENDPOINT: server.url,
    LANGSMITH_API_KEY: LOCAL_KEY,
    LANGSMITH_PROJECT: project,
  });
  const seen = JSON.parse(await proc.firstLine) as { rootRunId: string; traceId: string };
  assert.equal(await proc.exit, 0, proc.stderr());
  // OTel mode sends runs only as spans, never to the native run endpoints.
  assert.ok(log.some((l) => l.startsWith("POST /otel/v1/traces 200 ")), log.join("\n"));
  assert.ok(!log.some((l) => /^POST \/runs/.test(l)), log.join("\n"));

  const client = sdkClient(server);
  const runs = await collect(client.listRuns({ projectName: project }));
  assert.deepEqual(runs.map((r) => r.name).sort(), ["fails", "fake-llm", "lookup", "pipeline"]);
  const root = byName(runs, "pipeline");
  // The ids the SDK handed out in-process are the ones stored.
  assert.equal(root.id, seen.rootRunId);
  assert.equal(root.trace_id, seen.traceId);
  assert.equal(root.parent_run_id ?? null, null);
  assert.equal(root.run_type, "chain");
  assert.deepEqual(root.inputs, { input: "refunds" });
  assert.deepEqual(root.outputs, { answer: "answer to refunds doc about refunds" });
  assert.deepEqual(root.tags, ["otel-mode"]);
  assert.equal(root.extra?.metadata?.tenant, "acme");
  for (const run of runs) {
    assert.equal(run.trace_id, root.id, `${run.name} is in another trace`);
    if (run !== root) assert.equal(run.parent_run_id, root.id, `${run.name}'s parent`);
  }
  const lookup = byName(runs, "lookup");
  assert.equal(lookup.run_type, "tool");
  assert.deepEqual(lookup.inputs, { input: "refunds" });
  assert.deepEqual(lookup.outputs, { documents: ["doc about refunds"] });
  const llm = byName(runs, "fake-llm");
  assert.equal(llm.run_type, "llm");
  assert.deepEqual([llm.prompt_tokens, llm.completion_tokens, llm.total_tokens], [7, 3, 10]);
  const fails = byName(runs, "fails");
  assert.equal(fails.status, "error");
  assert.match(String(fails.error), /the tool broke/);
  const report = verifyTrace(runs, { traceId: root.id, rootName: "pipeline" });
  assert.ok(report.ok, report.problems.join("; "));
});

test("two OpenTelemetry services propagating W3C traceparent over HTTP make one connected tree", async (t) => {
  const server = await serverFor(t);
  const project = `w3c-${randomUUID().slice(0, 8)}`;
  const llmService = await startService(t, server, "llm-service", project);
  const frontend = await startService(t, server, "frontend", project, llmService);

  const res = await fetch(`${frontend}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "status?" }) });
  assert.equal(res.status, 200);
  const answer = (await res.json()) as { answer: string; traceId: string; spanId: string };
  assert.equal(answer.answer, "echo: status?");

  const client = sdkClient(server);
  const rootId = spanIdToRunId(answer.spanId);
  const runs = await collect(client.listRuns({ projectName: project }));
  assert.equal(runs.length, 4, JSON.stringify(runs.map((r) => [r.name, r.extra?.metadata?.["service.name"]])));
  const report = verifyTrace(runs, { traceId: rootId, services: ["frontend", "llm-service"], rootName: "POST /ask" });
  assert.ok(report.ok, report.problems.join("; "));
  assert.deepEqual(report.hops, [{ from: "frontend", to: "llm-service", count: 1 }]);
  const call = byName(runs, "POST /ask (downstream)");
  const downstreamServer = runs.find((r) => r.name === "POST /ask" && r.extra?.metadata?.["service.name"] === "llm-service");
  assert.ok(downstreamServer);
  assert.equal(downstreamServer.parent_run_id, call.id, "the downstream SERVER span hangs under the caller's CLIENT span");
  assert.equal(downstreamServer.extra?.otel?.trace_id, answer.traceId);
  const llm = byName(runs, "chat gpt-4o-mini");
  assert.equal(llm.run_type, "llm");
  assert.equal(llm.total_tokens, 13);
  assert.equal(llm.parent_run_id, downstreamServer.id);
  assert.deepEqual(otlpIngestFor(server.store).listPending(), []);
});

test("a service continuing a traceparent whose span is never exported leaves an orphan, kept and flagged", async (t) => {
  const server = await serverFor(t);
  const project = `w3c-orphan-${randomUUID().slice(0, 8)}`;
  const llmService = await startService(t, server, "llm-service", project);
  // An uninstrumented (or not exporting) caller: its span id never reaches the trace server.
  const traceId = randomBytes(16).toString("hex");
  const missingParent = randomBytes(8).toString("hex");
  const res = await fetch(`${llmService}/ask`, {
    method: "POST",
    headers: { "content-type": "application/json", traceparent: `00-${traceId}-${missingParent}-01` },
    body: JSON.stringify({ question: "anyone?" }),
  });
  const answer = (await res.json()) as { traceId: string; spanId: string };
  assert.equal(answer.traceId, traceId);
  const ingest = otlpIngestFor(server.store);
  // Its SERVER span waits for the missing parent, and its LLM span for the SERVER span.
  const pending = ingest.listPending();
  assert.deepEqual(pending.map((p) => p.name).sort(), ["POST /ask", "chat gpt-4o-mini"]);
  assert.equal(pending.find((p) => p.name === "POST /ask")?.parent_run_id, spanIdToRunId(missingParent));

  ingest.sweep(Date.now() + 61_000);
  const client = sdkClient(server);
  const runs = await collect(client.listRuns({ projectName: project }));
  const top = await client.readRun(spanIdToRunId(answer.spanId));
  assert.equal(top.parent_run_id, spanIdToRunId(missingParent));
  assert.equal(top.extra?.otel?.orphan?.missing_parent_run_id, spanIdToRunId(missingParent));
  const report = verifyTrace(runs, { traceId: top.trace_id });
  assert.equal(report.orphanCount, 1, report.problems.join("; "));
  assert.equal(report.runCount, 2);
  assert.equal(server.store.listTraces({ projectName: project })[0]?.orphan_count, 1);
});

test("LangSmith's OTel mode across two processes with W3C traceparent: two LangSmith traces sharing one OTel trace id", async (t) => {
  const server = await serverFor(t);
  const project = `otel-mode-hop-${randomUUID().slice(0, 8)}`;
  const env = { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_MODE: "otel", LANGSMITH_ENDPOINT: server.url, LANGSMITH_API_KEY: LOCAL_KEY, LANGSMITH_PROJECT: project };
  const { port } = JSON.parse(await start(t, "langsmith-otel-hop.ts", env, ["serve"]).firstLine) as { port: number };
  const caller = start(t, "langsmith-otel-hop.ts", { ...env, HOP_URL: `http://127.0.0.1:${port}` }, ["call"]);
  const seen = JSON.parse(await caller.firstLine) as { rootRunId: string; otelTraceId: string };
  assert.equal(await caller.exit, 0, caller.stderr());

  const client = sdkClient(server);
  const runs = await collect(client.listRuns({ projectName: project }));
  const ask = byName(runs, "ask");
  const answer = byName(runs, "answer");
  assert.equal(ask.id, seen.rootRunId);
  // The SDK's span processor marks the first traceable span of a process langsmith.is_root when
  // its OTel parent is remote, so the downstream run starts a trace of its own in LangSmith...
  assert.equal(answer.parent_run_id ?? null, null);
  assert.equal(answer.trace_id, answer.id);
  assert.notEqual(answer.trace_id, ask.trace_id);
  // ...while OpenTelemetry saw one trace: the shared trace id and the parent span id find one from the other.
  assert.equal(ask.extra?.otel?.trace_id, seen.otelTraceId);
  assert.equal(answer.extra?.otel?.trace_id, seen.otelTraceId);
  assert.equal(spanIdToRunId(String(answer.extra?.otel?.parent_span_id)), ask.id);
  assert.deepEqual(server.store.listTraces({ projectName: project }).map((s) => s.orphan_count), [0, 0]);
});

test("the same two processes as one LangSmith trace: the downstream root span continues its remote parent through langsmith.span.parent_id", async (t) => {
  const server = await serverFor(t);
  const project = `otel-mode-linked-${randomUUID().slice(0, 8)}`;
  const env = { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_MODE: "otel", LANGSMITH_ENDPOINT: server.url, LANGSMITH_API_KEY: LOCAL_KEY, LANGSMITH_PROJECT: project, LINK_REMOTE_PARENT: "1" };
  const { port } = JSON.parse(await start(t, "langsmith-otel-hop.ts", env, ["serve"]).firstLine) as { port: number };
  const caller = start(t, "langsmith-otel-hop.ts", { ...env, HOP_URL: `http://127.0.0.1:${port}` }, ["call"]);
  const seen = JSON.parse(await caller.firstLine) as { rootRunId: string; otelTraceId: string };
  assert.equal(await caller.exit, 0, caller.stderr());

  const client = sdkClient(server);
  const runs = await collect(client.listRuns({ projectName: project }));
  const ask = byName(runs, "ask");
  const answer = byName(runs, "answer");
  assert.equal(ask.id, seen.rootRunId);
  assert.equal(answer.parent_run_id, ask.id);
  assert.equal(answer.trace_id, ask.id);
  const report = verifyTrace(runs, { traceId: ask.id, rootName: "ask" });
  assert.ok(report.ok, report.problems.join("; "));
});
