// Two express services traced with ./tracing-middleware.ts:
//
//   client --> edge  (public: trust "edge")  --tracedFetch-->  internal  (trust "mesh")
//
// One request makes one connected trace: the edge's run is the root, the
// internal service's run and its traceable steps nest under it.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import express from "express";
import { traceable } from "langsmith/traceable";
import { prepareShutdown, type ShutdownResult } from "./shutdown.js";
import { langsmithTracing, tracedFetch } from "./tracing-middleware.js";

export function createEdgeApp(internalUrl: string): express.Express {
  const app = express();
  // Public traffic: tracing headers from outside start a new trace instead of joining one.
  app.use(langsmithTracing({ trust: "edge" }));
  app.use(express.json());
  app.get("/health", (_req, res) => {
    res.json({ ok: true });
  });
  app.post("/chat", async (req, res) => {
    const question = String(req.body?.question ?? "");
    // tracedFetch adds langsmith-trace and baggage for the current run.
    const answer = await tracedFetch(new URL("/answer", internalUrl), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question }),
    });
    if (!answer.ok) {
      res.status(502).json({ error: `internal service answered ${answer.status}` });
      return;
    }
    res.json(await answer.json());
  });
  return app;
}

export function createInternalApp(): express.Express {
  const app = express();
  // Only our own services can reach this one, so their tracing headers are continued.
  app.use(langsmithTracing({ trust: "mesh" }));
  app.use(express.json());
  app.get("/health", (_req, res) => {
    res.json({ ok: true });
  });
  app.post("/answer", async (req, res) => {
    // A traceable call in a handler becomes a child of the request's run.
    res.json(await draftAnswer(String(req.body?.question ?? "")));
  });
  return app;
}

const NOTES = [
  "langsmith-trace carries the caller's dotted order; the receiving run becomes its child.",
  "baggage carries metadata, tags and, unless filtered, the project to write to.",
  "x-trace-id tells a client which trace its request produced.",
];

const retrieve = traceable(
  async (question: string) => NOTES.filter((note) => question.toLowerCase().split(/\W+/).some((w) => w.length > 3 && note.includes(w))),
  { name: "retrieve_notes", run_type: "retriever" },
);

const draftAnswer = traceable(
  async (question: string) => {
    const notes = await retrieve(question);
    return { answer: notes.length > 0 ? notes.join(" ") : "No notes match that question.", sources: notes.length };
  },
  { name: "draft_answer" },
);

// ---------------------------------------------------------------------------
// Running it. `node --import tsx server.ts internal|edge` serves one role
// (PORT, default any free port; the edge also needs INTERNAL_URL; on SIGTERM
// it stops within SHUTDOWN_TIMEOUT_MS, flush included). Without a
// role it is the demo: the local trace server, both services, one request and
// the resulting trace. `--once` exits after printing it.

const thisFile = fileURLToPath(import.meta.url);

async function listenOn(app: express.Express, port: number): Promise<{ server: Server; url: string }> {
  const server = app.listen(port, "127.0.0.1");
  await once(server, "listening");
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** SHUTDOWN_TIMEOUT_MS, default 10 s: well under Kubernetes' default 30 s grace period. */
function shutdownTimeoutMs(): number {
  const raw = process.env.SHUTDOWN_TIMEOUT_MS;
  const ms = raw === undefined || raw === "" ? 10_000 : Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`SHUTDOWN_TIMEOUT_MS must be a number of milliseconds >= 0, got ${JSON.stringify(raw)}`);
  return ms;
}

function reportShutdown(role: string, { drained, flushed }: ShutdownResult): void {
  if (!drained) console.error(`${role}: requests still running at the shutdown deadline were cut off`);
  if (!flushed) console.error(`${role}: traces not fully sent within the shutdown deadline; the rest are lost`);
}

async function serve(role: "edge" | "internal"): Promise<void> {
  const internalUrl = process.env.INTERNAL_URL;
  if (role === "edge" && !internalUrl) throw new Error("the edge needs INTERNAL_URL (the internal service's base URL)");
  const app = role === "edge" ? createEdgeApp(internalUrl as string) : createInternalApp();
  const { server, url } = await listenOn(app, Number(process.env.PORT ?? 0));
  const shutdown = prepareShutdown(server, { timeoutMs: shutdownTimeoutMs() });
  console.log(`${role} listening on ${url}`);
  const stop = async (): Promise<void> => {
    reportShutdown(role, await shutdown());
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

/** Starts this file in another process and resolves with the URL from its "listening on" line. */
async function spawnRole(role: "internal", env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...process.execArgv, thisFile, role], { env, stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before listening:\n${output}`)));
  });
  return { child, url };
}

async function demo(exitAfter: boolean): Promise<void> {
  // Loaded here only: the two roles need nothing but express and langsmith.
  const { ensureLocalStack, readTrace, renderTraceText, setServiceName, traceUrl } = await import("@tracing-patterns/setup");
  const stack = await ensureLocalStack();
  const internal = await spawnRole("internal", { ...process.env, LANGSMITH_SERVICE: "internal", PORT: "0" });
  setServiceName("edge");
  const edge = await listenOn(createEdgeApp(internal.url), Number(process.env.PORT ?? 0));
  const shutdownEdge = prepareShutdown(edge.server, { timeoutMs: shutdownTimeoutMs() });
  console.log(`edge listening on ${edge.url}, internal on ${internal.url}, traces at ${stack.traceServerUrl}`);

  // A request from the internet that claims to be part of someone else's trace.
  const forged = "20250101T000000000000Z00000000-0000-4000-8000-000000000000";
  const response = await fetch(`${edge.url}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json", "langsmith-trace": forged },
    body: JSON.stringify({ question: "What does the baggage header carry?" }),
  });
  const traceId = response.headers.get("x-trace-id") ?? "";
  console.log(`\nPOST /chat -> ${response.status} ${JSON.stringify(await response.json())}`);
  console.log(`x-trace-id: ${traceId}\n`);
  console.log(renderTraceText(await readTrace(traceId, { expectRuns: 4 })));
  console.log(`\nIn the viewer: ${traceUrl(traceId, stack.viewerUrl)}`);

  const stop = async (): Promise<void> => {
    internal.child.kill("SIGTERM");
    const [result] = await Promise.all([shutdownEdge(), once(internal.child, "exit")]);
    reportShutdown("edge", result);
    await stack.stop();
    process.exit(0);
  };
  if (exitAfter) {
    await stop();
    return;
  }
  console.log(`\nTry: curl -si -X POST ${edge.url}/chat -H 'content-type: application/json' -d '{"question":"what is x-trace-id for?"}'`);
  console.log("Ctrl-C to stop.");
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}

if (process.argv[1] === thisFile) {
  const role = process.argv[2];
  if (role === "edge" || role === "internal") await serve(role);
  else await demo(process.argv.includes("--once"));
}
