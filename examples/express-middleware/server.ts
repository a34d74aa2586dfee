// Two express services traced with the kit (../kit):
//
//   client --> edge  (public: trust "edge")  --tracedFetch-->  internal  (trust "mesh")
//
// One request makes one connected trace: the edge's run is the root, the
// internal service's run and its traceable steps nest under it.
//
// `node --import tsx server.ts internal|edge` serves one role on PORT (default
// any free port; the edge also needs INTERNAL_URL) and prints "<role> listening
// on <url>". On SIGTERM/SIGINT it stops within SHUTDOWN_TIMEOUT_MS (default
// 10000), flush included. `npm run example:middleware` (start.ts) runs both
// against the local trace server and prints the trace of one request.
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import express from "express";
import { traceable } from "langsmith/traceable";
import { installShutdown, langsmithTracing, tracedFetch } from "@tracing-patterns/kit";

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

export async function listenOn(app: express.Express, port: number): Promise<{ server: Server; url: string }> {
  const server = app.listen(port, "127.0.0.1");
  await once(server, "listening");
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** SHUTDOWN_TIMEOUT_MS, default 10 s: well under Kubernetes' default 30 s grace period. */
export function shutdownTimeoutMs(): number {
  const raw = process.env.SHUTDOWN_TIMEOUT_MS;
  const ms = raw === undefined || raw === "" ? 10_000 : Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`SHUTDOWN_TIMEOUT_MS must be a number of milliseconds >= 0, got ${JSON.stringify(raw)}`);
  return ms;
}

async function serve(role: "edge" | "internal"): Promise<void> {
  const internalUrl = process.env.INTERNAL_URL;
  if (role === "edge" && !internalUrl) throw new Error("the edge needs INTERNAL_URL (the internal service's base URL)");
  const app = role === "edge" ? createEdgeApp(internalUrl as string) : createInternalApp();
  const { server, url } = await listenOn(app, Number(process.env.PORT ?? 0));
  // Drain, flush and exit on SIGTERM/SIGINT, within the budget; one line on stderr says how it went.
  installShutdown({ timeoutMs: shutdownTimeoutMs(), drain: [server] });
  console.log(`${role} listening on ${url}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const role = process.argv[2];
  if (role !== "edge" && role !== "internal") throw new Error(`usage: server.ts edge|internal (got ${JSON.stringify(role)}); npm run example:middleware runs the demo`);
  await serve(role);
}
