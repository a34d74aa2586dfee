// Background work that outlives the response, in server.ts as a real process:
// POST /chat answers, then remember_conversation runs in the background (its
// model call made slow with the local model's latency directive). SIGTERM right
// after the response must still leave the background run in the trace when the
// server flushes on shutdown, and loses it when the process just dies.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, type Run } from "langsmith";
import { formatReport, verifyTrace } from "@tracing-patterns/setup";
import { SERVER_SCRIPT, startProcess } from "../index.js";
import { isolateEnv, readProjectTraces, startLocalStack, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;
let client: Client;

before(async () => {
  stack = await startLocalStack();
  client = new Client({ apiUrl: stack.traces.url, apiKey: "local" });
});

after(async () => {
  await stack?.close();
});

/** One POST /chat, then SIGTERM as soon as the answer arrives; returns the trace and how the process ended. */
async function chatThenTerminate(project: string, shutdown: "graceful" | "immediate"): Promise<{ runs: Run[]; traceId: string; code: number | null; signal: string | null }> {
  const server = await startProcess(SERVER_SCRIPT, {
    env: {
      ...process.env,
      ...stack.env("chat", project, { SUMMARY_MODEL: "gpt-4o-mini+latency-1000" }),
      ...(shutdown === "immediate" ? { SHUTDOWN: "immediate" } : {}),
    },
    ready: /chat listening on (\S+)/,
  });
  const response = await fetch(`${server.ready}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ question: "What happens to work started after the response?" }),
  });
  assert.equal(response.status, 200);
  await response.json();
  const traceId = response.headers.get("x-trace-id") ?? "";
  const code = await server.stop("SIGTERM");
  const runs = (await readProjectTraces(client, project)).get(traceId) ?? [];
  return { runs, traceId, code, signal: server.child.signalCode };
}

describe("background work and shutdown", () => {
  test("a server that flushes on SIGTERM keeps the background run, which ends after its request", async () => {
    const { runs, traceId, code } = await chatThenTerminate("shutdown-graceful", "graceful");
    assert.equal(code, 0);
    const expectations = {
      traceId,
      rootName: "POST /chat",
      runNames: ["POST /chat", "answer_question", "remember_conversation"],
      services: ["chat"],
      minRuns: 5,
    };
    const strict = verifyTrace(runs, expectations);
    // Outliving the request is what background work does; the time window is the only finding.
    assert.ok(strict.problems.length > 0);
    for (const problem of strict.problems) assert.match(problem, /ends .* after its parent "POST \/chat"/, formatReport(strict));
    const relaxed = verifyTrace(runs, { ...expectations, skewMs: Number.POSITIVE_INFINITY });
    assert.ok(relaxed.ok, formatReport(relaxed));
    const remember = runs.find((r) => r.name === "remember_conversation");
    assert.ok(remember?.end_time && remember.error == null);
  });

  test("a server that dies on SIGTERM loses the background run (and every run still waiting in the SDK's batch queue)", async () => {
    const { runs, traceId, signal } = await chatThenTerminate("shutdown-immediate", "immediate");
    assert.equal(signal, "SIGTERM");
    const report = verifyTrace(runs, { traceId, rootName: "POST /chat", runNames: ["remember_conversation"], services: ["chat"], skewMs: Number.POSITIVE_INFINITY });
    assert.equal(report.ok, false, formatReport(report));
    const remember = runs.find((r) => r.name === "remember_conversation");
    assert.ok(remember === undefined || !remember.end_time, "the background run was either never sent or never ended");
  });
});
