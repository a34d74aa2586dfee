// No false alarms on the other examples: the trace doctor over healthy traces that each example's
// real processes make (the multi-service app has its own file, doctor-healthy.test.ts):
// express-middleware's edge and internal services, opentelemetry's two auto-instrumented services
// exporting OTLP, async-streaming's chat server with its background work, and the langgraph agent's
// supervisor, research service and Agent Server over two turns of one thread. Every trace verifies
// and the doctor, reading it as `npm run doctor` does, finds nothing, notes included.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { Client } from "langsmith";
import { assertTrace, diagnoseTrace, readDoctorInput, readTrace, startTraceServer, type TraceExpectations } from "@tracing-patterns/setup";
import { SERVER_SCRIPT, startProcess } from "@tracing-patterns/example-async-streaming";
import { isolateFromLangSmithEnv, tracingEnv } from "../examples/express-middleware/tests/helpers.js";
import { startService } from "../examples/opentelemetry/harness/processes.js";
import { startLocalStack } from "../examples/async-streaming/tests/helpers.js";
import { RESEARCH_ROUTE_SHAPE, SERVICES as AGENT_SERVICES, postRun, startTestStack } from "../examples/langgraph-agent/tests/helpers.js";

isolateFromLangSmithEnv();

/** Verifies the trace, then asserts the doctor finds nothing on it. */
async function assertHealthy(apiUrl: string, traceId: string, expectations: TraceExpectations & { minRuns: number }): Promise<void> {
  const client = new Client({ apiUrl, apiKey: "local" });
  const runs = await readTrace(traceId, { client, expectRuns: expectations.minRuns, timeoutMs: 20_000 });
  assertTrace(runs, { ...expectations, traceId });
  const d = diagnoseTrace(await readDoctorInput(traceId, { apiUrl, apiKey: "local", client, waitMs: 1000 }));
  assert.deepEqual(d.findings, [], `${traceId}: ${JSON.stringify(d.findings, null, 2)}`);
}

test("express-middleware: requests through the edge to the internal service, one at a time and three at once", async () => {
  const traces = await startTraceServer({ port: 0 });
  const serverFile = fileURLToPath(new URL("../examples/express-middleware/server.ts", import.meta.url));
  const children: Array<ReturnType<typeof spawn>> = [];
  const start = async (role: "edge" | "internal", env: Record<string, string>): Promise<string> => {
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", serverFile, role], {
      env: { ...process.env, ...tracingEnv(traces.url, "doctor-express"), ...env, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let out = "";
    child.stderr?.on("data", (chunk: Buffer) => void (out += chunk.toString()));
    return new Promise<string>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = new RegExp(`${role} listening on (http://\\S+)`).exec(out);
        if (match?.[1]) resolve(match[1]);
      });
      child.once("exit", (code) => reject(new Error(`${role} exited (${code}) before listening:\n${out}`)));
    });
  };
  try {
    const internal = await start("internal", { LANGSMITH_SERVICE: "internal" });
    const edge = await start("edge", { LANGSMITH_SERVICE: "edge", INTERNAL_URL: internal });
    const ask = async (question: string): Promise<string> => {
      const response = await fetch(`${edge}/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question }) });
      assert.equal(response.status, 200);
      await response.json();
      return response.headers.get("x-trace-id") ?? "";
    };
    const ids = [await ask("What does the baggage header carry?"), ...(await Promise.all(["a", "b", "c"].map((q) => ask(`Question ${q}: what is a span?`))))];
    // SIGTERM: both flush what they hold, then exit 0.
    for (const child of [...children].reverse()) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      assert.equal((await exited)[0], 0);
    }
    for (const id of ids) await assertHealthy(traces.url, id, { rootName: "POST /chat", services: ["edge", "internal"], minRuns: 4 });
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await traces.close();
  }
});

test("opentelemetry: an auto-instrumented frontend calling the llm service, exported over OTLP", async () => {
  const stack = await startLocalStack();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${stack.traces.url}/otel/v1/traces`,
    OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=local,Langsmith-Project=doctor-otel",
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OPENAI_BASE_URL: stack.model.url,
    OPENAI_API_KEY: "local",
    MODEL: "gpt-4o-mini",
  };
  const llm = await startService({ name: "llm-service", role: "llm", env });
  const frontend = await startService({ name: "frontend", role: "frontend", downstream: llm.url, env });
  try {
    const response = await fetch(`${frontend.url}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: "What is OTLP?" }) });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { langsmith_run_id: string };
    for (const service of [frontend, llm]) assert.equal(await service.stop(), 0, service.output());
    await assertHealthy(stack.traces.url, body.langsmith_run_id, { rootName: "POST /ask", services: ["frontend", "llm-service"], minRuns: 7 });
  } finally {
    await Promise.all([frontend.stop(), llm.stop()]);
    await stack.close();
  }
});

test("async-streaming: the chat server answers, summarises in the background and flushes on SIGTERM", async () => {
  const stack = await startLocalStack();
  const server = await startProcess(SERVER_SCRIPT, { env: { ...process.env, ...stack.env("chat", "doctor-chat") }, ready: /chat listening on (\S+)/ });
  try {
    const ids: string[] = [];
    for (const question of ["What happens to work started after the response?", "Why flush before exit?"]) {
      const response = await fetch(`${server.ready}/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question }) });
      assert.equal(response.status, 200);
      await response.json();
      ids.push(response.headers.get("x-trace-id") ?? "");
    }
    assert.equal(await server.stop("SIGTERM"), 0, server.output());
    // Background work outlives its request by design: the time window is relaxed, as the example's own tests do.
    for (const id of ids) {
      await assertHealthy(stack.traces.url, id, { rootName: "POST /chat", runNames: ["answer_question", "remember_conversation"], services: ["chat"], minRuns: 5, skewMs: Number.POSITIVE_INFINITY });
    }
  } finally {
    await server.stop("SIGKILL");
    await stack.close();
  }
});

test("langgraph-agent: two turns of one thread through the supervisor, the research service and the Agent Server", async () => {
  const stack = await startTestStack("doctor-langgraph");
  try {
    const ids: string[] = [];
    for (let turn = 0; turn < 2; turn++) {
      const message = "Look up in the notes how baggage carries the user id to the next service.";
      const response = await postRun(stack.agents.urls.supervisor, { message, thread_id: "thread-doctor", user_id: "alice" });
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.equal(response.body.route, "research");
      ids.push(response.traceId);
    }
    for (const id of ids) await assertHealthy(stack.traceServer.url, id, { rootName: "POST /run", services: AGENT_SERVICES, minRuns: RESEARCH_ROUTE_SHAPE.length });
  } finally {
    await stack.close();
  }
});
