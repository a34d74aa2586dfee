// Child process of the hostile-input campaign: a small express app behind the kit's middleware,
// three times over (`/edge`, `/mesh`, `/signed/...`, one trust policy each), writing its runs to a
// trace server. Driven over IPC by targets.ts (forkBench's protocol):
//   { kind: "start", traceServerUrl, signingKey } -> { url }
//   { kind: "stats" } -> { stats: { rssBytes, heapUsedBytes, warnings } }
//   { kind: "flush" } -> {}   (every queued run uploaded)
//   { kind: "stop" } -> {}
// traceable() reads LANGSMITH_TRACING from the environment, which targets.ts sets for this process.
// Each route answers { runId, currentRunId, childParentId }: the request's run, the run current in
// the handler and the parent of a traceable() child, so a case can check the handler ran inside it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import express, { type Request, type Response } from "express";
import { Client } from "langsmith";
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { currentRun, getRequestRun, jsonErrors, langsmithTracing, type TrustPolicy } from "@tracing-patterns/kit";
import { KIT_MAX_HEADER_BYTES } from "./targets.js";

export type KitAppRequest = { kind: "start"; traceServerUrl: string; signingKey: string } | { kind: "stats" } | { kind: "flush" } | { kind: "stop" };

export interface KitAppStats {
  rssBytes: number;
  heapUsedBytes: number;
  /** Middleware warnings so far (each cause once per trust policy). */
  warnings: string[];
}


let server: http.Server | undefined;
let client: Client | undefined;
const warnings: string[] = [];

// A child run keeps its parent as an object (parent_run); parent_run_id is set only when continued from headers.
const child = traceable(async () => {
  const run = getCurrentRunTree();
  return run?.parent_run?.id ?? run?.parent_run_id ?? null;
}, { name: "handler-step" });

async function answer(req: Request, res: Response): Promise<void> {
  const childParentId = await child();
  res.json({ runId: getRequestRun(req)?.id ?? null, currentRunId: currentRun()?.id ?? null, childParentId });
}

function start(traceServerUrl: string, signingKey: string): Promise<string> {
  client = new Client({ apiUrl: traceServerUrl, apiKey: "local" });
  const app = express();
  const mount = (prefix: string, trust: TrustPolicy<Request>): void => {
    const router = express.Router();
    router.use(langsmithTracing({ trust, client, projectName: `hostile-kit${prefix.replace(/\//g, "-")}`, service: "hostile-kit", enabled: true, logger: { warn: (m) => warnings.push(m) } }));
    router.get("/probe", (req, res) => answer(req, res));
    // A body parser after the middleware, as the middleware asks: a body it refuses still has a run.
    router.post("/probe", express.json({ limit: "64kb" }), (req, res) => answer(req, res));
    router.use(jsonErrors({ service: "hostile-kit" }));
    app.use(prefix, router);
  };
  mount("/edge", "edge");
  mount("/mesh", "mesh");
  mount("/signed", { signedBy: signingKey });
  app.get("/health", (_req, res) => {
    res.json({ ok: true });
  });
  server = http.createServer({ maxHeaderSize: KIT_MAX_HEADER_BYTES }, app);
  return new Promise((resolve, reject) => {
    server?.once("error", reject);
    server?.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server?.address() as AddressInfo).port}`));
  });
}

process.on("disconnect", () => process.exit(1));

process.on("message", (msg: KitAppRequest) => {
  const reply = (body: object): void => void process.send?.(body);
  const fail = (e: unknown): void => reply({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  if (msg.kind === "start") {
    start(msg.traceServerUrl, msg.signingKey).then((url) => reply({ ok: true, url }), fail);
  } else if (msg.kind === "stats") {
    globalThis.gc?.();
    const mem = process.memoryUsage();
    const stats: KitAppStats = { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, warnings: [...warnings] };
    reply({ ok: true, stats });
  } else if (msg.kind === "flush") {
    (client?.awaitPendingTraceBatches() ?? Promise.resolve()).then(() => reply({ ok: true }), fail);
  } else {
    server?.closeAllConnections();
    server?.close(() => process.send?.({ ok: true }, () => process.exit(0)));
  }
});
