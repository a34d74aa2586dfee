// The example's two services as real processes, auto-instrumented, exporting OTLP to the local
// trace server: one connected LangSmith trace across both (HTTP server spans as chains labelled
// by service, the model call an LLM run with tokens); without fetch instrumentation the caller
// sends no traceparent and the downstream service's spans form a trace of their own.
// A second backend (SECOND_OTLP_*) gets the same spans, and LangSmith's key with them only when it
// sits in the shared OTEL_EXPORTER_OTLP_HEADERS; redactSecrets masks span attributes before export.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test, type TestContext } from "node:test";
import { startModelServer, startOtlpReceiver, startTraceServer, verifyTrace, type TraceServerHandle } from "@tracing-patterns/setup";
import { Client } from "langsmith";
import type { Run } from "langsmith/schemas";
import { startService, type RunningService } from "../harness/processes.js";
import { langsmithRunId } from "../ids.js";
import { REDACTED, redactSecrets } from "../redact.js";

let traces: TraceServerHandle;
let model: { url: string; close(): Promise<void> };

before(async () => {
  traces = await startTraceServer({ port: 0 });
  model = await startModelServer({ port: 0 });
});
after(async () => {
  await Promise.all([traces.close(), model.close()]);
});

function serviceEnv(project: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${traces.url}/otel/v1/traces`,
    OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=local,Langsmith-Project=${project}`,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OPENAI_BASE_URL: model.url,
    OPENAI_API_KEY: "local",
    MODEL: "gpt-4o-mini",
  };
}

async function startPair(t: TestContext, project: string, frontendEnv: NodeJS.ProcessEnv = {}): Promise<{ frontend: RunningService; llm: RunningService }> {
  const llm = await startService({ name: "llm-service", role: "llm", env: serviceEnv(project) });
  t.after(() => llm.stop());
  const frontend = await startService({ name: "frontend", role: "frontend", downstream: llm.url, env: { ...serviceEnv(project), ...frontendEnv } });
  t.after(() => frontend.stop());
  return { frontend, llm };
}

/** Stop both (SIGTERM: they send what they hold), then every run of the project. */
async function projectRuns(project: string, services: RunningService[]): Promise<Run[]> {
  for (const s of services) assert.equal(await s.stop(), 0, s.output());
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  const runs: Run[] = [];
  for await (const run of client.listRuns({ projectName: project })) runs.push(run);
  return runs;
}

const serviceOfRun = (run: Run): unknown => run.extra?.metadata?.["service.name"];

test("two auto-instrumented services make one connected LangSmith trace with the model call as an LLM run", async (t) => {
  const project = `otel-example-${randomUUID().slice(0, 8)}`;
  const { frontend, llm } = await startPair(t, project);
  const res = await fetch(`${frontend.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "What is OTLP?" }) });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { answer: string; trace_id: string; langsmith_run_id: string; served_by: { trace_id: string } };
  assert.ok(body.answer.length > 0);

  const runs = await projectRuns(project, [frontend, llm]);
  const roots = runs.filter((r) => !r.parent_run_id);
  assert.equal(roots.length, 1, JSON.stringify(runs.map((r) => [r.name, r.parent_run_id])));
  const root = roots[0] as Run;
  assert.equal(root.name, "POST /ask");
  assert.equal(root.id, body.langsmith_run_id, "the frontend names its LangSmith run");
  assert.equal(body.served_by.trace_id, body.trace_id, "the llm service served it in the same OTel trace");
  assert.equal(root.run_type, "chain");
  assert.equal(root.extra?.otel?.trace_id, body.trace_id);
  const report = verifyTrace(runs, { traceId: root.id, services: ["frontend", "llm-service"], rootName: "POST /ask" });
  assert.ok(report.ok, report.problems.join("; "));
  assert.deepEqual(report.hops, [{ from: "frontend", to: "llm-service", count: 1 }]);

  const byId = new Map(runs.map((r) => [r.id, r]));
  const downstream = runs.find((r) => r.name === "POST /answer" && r.extra?.otel?.kind === "SERVER");
  assert.ok(downstream, "the llm service's server span");
  const caller = byId.get(String(downstream.parent_run_id));
  assert.equal(caller?.extra?.otel?.kind, "CLIENT", "its parent is the frontend's fetch span");
  assert.equal(serviceOfRun(caller as Run), "frontend");
  const chat = runs.find((r) => r.name === "chat gpt-4o-mini");
  assert.ok(chat);
  assert.equal(chat.run_type, "llm");
  assert.equal(serviceOfRun(chat), "llm-service");
  assert.deepEqual(chat.inputs?.messages?.[1], { role: "user", content: "What is OTLP?" });
  assert.equal(chat.outputs?.messages?.[0]?.content, body.answer);
  assert.ok((chat.prompt_tokens ?? 0) > 0 && (chat.completion_tokens ?? 0) > 0, `tokens ${chat.prompt_tokens}/${chat.completion_tokens}`);
  assert.equal(chat.total_tokens, (chat.prompt_tokens ?? 0) + (chat.completion_tokens ?? 0));
  assert.equal(chat.extra?.invocation_params?.model, "gpt-4o-mini");
});

test("without fetch (undici) instrumentation the caller sends no traceparent: the downstream service starts its own trace", async (t) => {
  const project = `otel-example-nofetch-${randomUUID().slice(0, 8)}`;
  const { frontend, llm } = await startPair(t, project, { OTEL_NODE_DISABLED_INSTRUMENTATIONS: "undici" });
  const res = await fetch(`${frontend.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "hello?" }) });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { trace_id: string; served_by: { trace_id: string; langsmith_run_id: string } };
  assert.notEqual(body.served_by.trace_id, body.trace_id, "the llm service served the request in another OTel trace");

  const runs = await projectRuns(project, [frontend, llm]);
  const roots = runs.filter((r) => !r.parent_run_id);
  assert.deepEqual(roots.map((r) => `${String(serviceOfRun(r))} ${r.name}`).sort(), ["frontend POST /ask", "llm-service POST /answer"]);
  const [a, b] = roots as [Run, Run];
  assert.notEqual(a.extra?.otel?.trace_id, b.extra?.otel?.trace_id, "two OTel traces, not one");
  assert.ok(roots.some((r) => r.id === body.served_by.langsmith_run_id), "served_by names the llm service's root run");
  assert.ok(!runs.some((r) => r.extra?.otel?.kind === "CLIENT" && serviceOfRun(r) === "frontend"), "the frontend's fetch made no span");
});

for (const linked of [false, true]) {
  test(`LangSmith's OTel mode across the two services${linked ? " with linkRemoteParent: one trace" : ": two traces, the downstream run a root of its own"}`, async (t) => {
    const project = `otel-mode-${linked ? "linked" : "split"}-${randomUUID().slice(0, 8)}`;
    const env: NodeJS.ProcessEnv = {
      ...serviceEnv(project),
      LANGSMITH_TRACING: "true",
      LANGSMITH_TRACING_MODE: "otel",
      LANGSMITH_ENDPOINT: traces.url,
      LANGSMITH_API_KEY: "local",
      LANGSMITH_PROJECT: project,
      ...(linked ? { LINK_REMOTE_PARENT: "1" } : {}),
    };
    const llm = await startService({ name: "llm-service", role: "llm", tracing: "langsmith-otel", env });
    t.after(() => llm.stop());
    const frontend = await startService({ name: "frontend", role: "frontend", tracing: "langsmith-otel", downstream: llm.url, env });
    t.after(() => frontend.stop());
    const res = await fetch(`${frontend.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "one trace?" }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { answer: string; langsmith_run_id: string; served_by: { langsmith_run_id: string } };

    const runs = await projectRuns(project, [frontend, llm]);
    assert.deepEqual(runs.map((r) => r.name).sort(), ["answer", "ask", "call_model"]);
    const byName = (name: string): Run => runs.find((r) => r.name === name) as Run;
    assert.equal(byName("ask").id, body.langsmith_run_id);
    assert.equal(byName("answer").id, body.served_by.langsmith_run_id);
    assert.equal(byName("call_model").run_type, "llm");
    assert.ok((byName("call_model").total_tokens ?? 0) > 0);
    if (linked) {
      assert.equal(byName("answer").parent_run_id, body.langsmith_run_id);
      assert.ok(verifyTrace(runs, { traceId: body.langsmith_run_id, rootName: "ask" }).ok);
    } else {
      assert.equal(byName("answer").parent_run_id ?? null, null);
      assert.equal(byName("answer").trace_id, body.served_by.langsmith_run_id);
      assert.equal(byName("answer").extra?.otel?.trace_id, byName("ask").extra?.otel?.trace_id, "one OTel trace all the same");
    }
  });
}

for (const slot of ["shared", "second"] as const) {
  test(`a second backend gets the same spans; LangSmith's key ${slot === "shared" ? "in OTEL_EXPORTER_OTLP_HEADERS reaches it too" : "in SECOND_OTLP_HEADERS does not"}`, async (t) => {
    const project = `otel-two-${slot}-${randomUUID().slice(0, 8)}`;
    const apm = await startOtlpReceiver();
    t.after(() => apm.close());
    const langsmith = serviceEnv(project);
    const env: NodeJS.ProcessEnv =
      slot === "shared"
        ? { ...langsmith, SECOND_OTLP_TRACES_ENDPOINT: `${apm.url}/v1/traces` }
        : {
            ...langsmith,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${apm.url}/v1/traces`,
            OTEL_EXPORTER_OTLP_HEADERS: "",
            SECOND_OTLP_TRACES_ENDPOINT: langsmith.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            SECOND_OTLP_HEADERS: langsmith.OTEL_EXPORTER_OTLP_HEADERS,
          };
    const llm = await startService({ name: "llm-service", role: "llm", env });
    t.after(() => llm.stop());
    const frontend = await startService({ name: "frontend", role: "frontend", downstream: llm.url, env });
    t.after(() => frontend.stop());
    const res = await fetch(`${frontend.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "two backends?" }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { trace_id: string };

    const runs = await projectRuns(project, [frontend, llm]);
    const atApm = apm.spans.filter((span) => span.traceId === body.trace_id).map((span) => langsmithRunId(span.spanId));
    assert.ok(runs.length >= 7, `${runs.length} runs in LangSmith`);
    assert.deepEqual(atApm.sort(), runs.map((r) => r.id).sort(), "the same spans in both backends");
    assert.ok(apm.requests.length > 0);
    const keys = apm.requests.map((r) => r.headers["x-api-key"]);
    if (slot === "shared") assert.ok(keys.every((key) => key === "local"), `keys at the APM: ${JSON.stringify(keys)}`);
    else assert.deepEqual(keys.filter((key) => key !== undefined), [], "no LangSmith key at the APM");
  });
}

test("redactSecrets masks every match in string and string-array attributes, in place, and leaves the rest", () => {
  const attributes: Record<string, unknown> = {
    "gen_ai.prompt": JSON.stringify({ email: "jane.doe@example.com", key: "sk-live-4f9a8b7c6d5e4f3a" }),
    "langsmith.span.tags": ["sk-live-4f9a8b7c6d5e4f3a", "beta"],
    "gen_ai.usage.input_tokens": 12,
  };
  const span = { name: "lookup", attributes } as unknown as Parameters<ReturnType<typeof redactSecrets>>[0];
  const out = redactSecrets([/sk-[A-Za-z0-9-]{10,}/g, /[\w.+-]+@[\w-]+\.[A-Za-z]{2,}/g])(span);
  assert.equal(out, span);
  assert.equal(attributes["gen_ai.prompt"], JSON.stringify({ email: REDACTED, key: REDACTED }));
  assert.deepEqual(attributes["langsmith.span.tags"], [REDACTED, "beta"]);
  assert.equal(attributes["gen_ai.usage.input_tokens"], 12);
});
