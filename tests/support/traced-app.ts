// The application under test in the reliability tests: express + the copyable
// tracing middleware + a traceable child + (optionally) a real ChatOpenAI call
// to the local model server. Imported by tests, or run as a child process:
//   TRACED_APP_MODEL_URL=... TRACED_APP_DEPENDENCY_URL=... TRACED_APP_SHUTDOWN_MS=...
//   LANGSMITH_ENDPOINT=... node --conditions=source --import tsx tests/support/traced-app.ts
// As a child it uses the SDK's shared client (configured from the environment),
// prints "listening on <url>" and installs the graceful shutdown, which prints
// its result as one JSON line ("shutdown-result {...}") before exiting.
import type { Server } from "node:http";
import { pathToFileURL } from "node:url";
import express from "express";
import type { Client } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { ChatOpenAI } from "@langchain/openai";
import { installGracefulShutdown, startApp } from "@tracing-patterns/setup";
import { langsmithTracing } from "@tracing-patterns/kit";

export const PROJECT = "reliability";

export interface TracedAppOptions {
  /** Default: the SDK's shared client. */
  client?: Client;
  /** The local model server's base URL (ending in /v1); without it /chat answers without a model call. */
  modelUrl?: string;
  /** What GET /slow fetches (inside a traceable) before answering. */
  dependencyUrl?: string;
  /** Called once the middleware has queued a request's final run update. */
  onRunEnd?: (run: RunTree) => void;
  /** Middleware warnings. Default: console.warn. */
  warn?: (message: string) => void;
}

export interface TracedApp {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Routes: GET /chat?q=..&pad=N (traceable "answer", with a ChatOpenAI call when a
 * model URL is given; `pad` appends N characters to the traced input) and
 * GET /slow (traceable "call_dependency" that fetches the dependency URL).
 * A trace of /chat has 3 runs with a model (server run, answer, ChatOpenAI), else 2.
 */
export async function startTracedApp(options: TracedAppOptions = {}): Promise<TracedApp> {
  const llm = options.modelUrl
    ? new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", maxRetries: 0, configuration: { baseURL: options.modelUrl } })
    : undefined;
  const answer = traceable(
    async (question: string) => (llm ? String((await llm.invoke(question)).content) : `echo: ${question.slice(0, 40)}`),
    { name: "answer", run_type: "chain" },
  );
  const callDependency = traceable(
    async (url: string) => {
      const response = await fetch(url);
      return { status: response.status, body: await response.text() };
    },
    { name: "call_dependency", run_type: "tool" },
  );
  const app = express();
  app.use(
    langsmithTracing({
      client: options.client,
      enabled: true,
      projectName: PROJECT,
      logger: { warn: options.warn ?? ((m) => console.warn(m)) },
      onRunEnd: options.onRunEnd,
    }),
  );
  app.get("/chat", async (req, res) => {
    const pad = Number(req.query.pad ?? 0);
    const question = String(req.query.q ?? "hello") + "x".repeat(Number.isSafeInteger(pad) && pad > 0 ? pad : 0);
    const reply = await answer(question);
    res.json({ answer: reply.slice(0, 80) });
  });
  app.get("/slow", async (_req, res) => {
    if (!options.dependencyUrl) {
      res.status(500).json({ error: "no dependency configured" });
      return;
    }
    res.json(await callDependency(options.dependencyUrl));
  });
  const running = await startApp(app);
  return { url: running.url, server: running.server, close: running.close };
}

async function main(): Promise<void> {
  const app = await startTracedApp({
    modelUrl: process.env.TRACED_APP_MODEL_URL || undefined,
    dependencyUrl: process.env.TRACED_APP_DEPENDENCY_URL || undefined,
  });
  installGracefulShutdown(app.server, {
    timeoutMs: Number(process.env.TRACED_APP_SHUTDOWN_MS ?? 5_000),
    exit: (code, result) => {
      if (result) console.log(`shutdown-result ${JSON.stringify(result)}`);
      process.exit(code);
    },
  });
  console.log(`listening on ${app.url}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
