// Background work that outlives the response, in server.ts as a real process:
// POST /chat answers, then remember_conversation runs in the background (its
// model call made slow with the local model's latency directive). SIGTERM right
// after the response must still leave the background run in the trace when the
// server flushes on shutdown, and loses it when the process just dies. A trace
// backend that accepts connections and never answers must not keep the server
// from exiting (the SDK alone would wait 90 s per wave of uploads), and a
// keep-alive connection busy at SIGTERM must not hold the close for its
// keepAliveTimeout.
import assert from "node:assert/strict";
import { once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { createServer as createHttpServer, Agent, request } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { BackgroundTasks, drainAndFlush, trackConnections } from "@tracing-patterns/kit";
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

/** A trace backend that accepts connections and never answers. */
async function startHungBackend(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

describe("shutdown has a deadline", () => {
  test("drainAndFlush returns at its deadline with a background task that never ends and a trace backend that never answers", { timeout: 60_000 }, async () => {
    // A fetch that never answers (until aborted), in process: a real hung socket would keep this
    // test process alive for the SDK's retries long after the test.
    const neverAnswers: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    const hungClient = new Client({ apiUrl: "http://127.0.0.1:9", apiKey: "local", fetchImplementation: neverAnswers });
    const run = new RunTree({ name: "never_delivered", client: hungClient, project_name: "shutdown-hung-backend" });
    await run.postRun();
    const background = new BackgroundTasks();
    background.run(() => new Promise(() => undefined));
    const result = await drainAndFlush({ timeoutMs: 500, drain: [background], client: [hungClient] });
    assert.equal(result.drained, false);
    assert.equal(result.flush.flushed, false);
  });

  test("a request still running at SIGTERM is cut off before the deadline, and its run (ended with the disconnect) is flushed", { timeout: 30_000 }, async () => {
    const project = "shutdown-cut-off";
    // The answer's model call takes a minute: far beyond the 2 s shutdown budget.
    const server = await startProcess(SERVER_SCRIPT, {
      env: { ...process.env, ...stack.env("chat", project, { OPENAI_MODEL: "gpt-4o-mini+latency-60000", SHUTDOWN_TIMEOUT_MS: "2000" }) },
      ready: /chat listening on (\S+)/,
    });
    const answer = fetch(`${server.ready}/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question: "Will this answer arrive?" }),
    }).then(
      (response) => response.status,
      (error: unknown) => error,
    );
    // Readiness: the request's run has reached the trace server, so the request is in flight.
    let traceId: string | undefined;
    while (traceId === undefined) {
      traceId = [...(await readProjectTraces(client, project)).keys()][0];
      if (traceId === undefined) await delay(50);
    }
    const code = await server.stop("SIGTERM");
    assert.equal(code, 0, server.output());
    assert.match(server.output(), /\[shutdown\] in-flight requests cut off at the deadline; background tasks finished; traces flushed/);
    assert.ok((await answer) instanceof Error, "the cut-off client sees its connection end, not an answer");
    const runs = (await readProjectTraces(client, project)).get(traceId) ?? [];
    const root = runs.find((r) => r.name === "POST /chat");
    assert.ok(root?.end_time, `the request's run was ended and flushed: ${JSON.stringify(runs.map((r) => [r.name, r.end_time ?? null, r.error ?? null]))}`);
    assert.match(String(root.error), /disconnect/);
  });

  // The guard turns "hangs for minutes" into a failure; the deadline under test is 1 s.
  test("with a hung trace backend the server still exits 0 on SIGTERM, and says what was not flushed", { timeout: 60_000 }, async () => {
    const backend = await startHungBackend();
    try {
      const server = await startProcess(SERVER_SCRIPT, {
        env: { ...process.env, ...stack.env("chat", "shutdown-hung-backend", { LANGSMITH_ENDPOINT: backend.url, SHUTDOWN_TIMEOUT_MS: "1000" }) },
        ready: /chat listening on (\S+)/,
      });
      const response = await fetch(`${server.ready}/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ question: "Is anyone receiving these runs?" }),
      });
      assert.equal(response.status, 200);
      await response.json();
      const code = await server.stop("SIGTERM");
      assert.equal(code, 0, server.output());
      assert.match(server.output(), /\[shutdown\] in-flight requests finished; background tasks finished; traces NOT flushed/);
    } finally {
      await backend.close();
    }
  });

  test("a keep-alive connection busy at close() is closed when its response ends, not kept for keepAliveTimeout", { timeout: 30_000 }, async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrived: () => void = () => undefined;
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const server = createHttpServer((_req, res) => {
      arrived();
      void released.then(() => res.end("done"));
    });
    server.keepAliveTimeout = 600_000;
    const { drain } = trackConnections(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const agent = new Agent({ keepAlive: true });
    try {
      const body = new Promise<string>((resolve, reject) => {
        request({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, agent }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve(text));
        })
          .on("error", reject)
          .end();
      });
      await requestArrived;
      // A deadline far beyond the test's life: close() resolving at all means the connection was closed.
      const closed = drain(300_000);
      release();
      assert.equal(await body, "done");
      assert.equal(await closed, true);
    } finally {
      agent.destroy();
      server.closeAllConnections();
    }
  });
});
