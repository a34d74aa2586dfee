/**
 * LangSmith tracing for express 5: the JS counterpart of the Python SDK's
 * `TracingMiddleware`.
 *
 *   app.use(langsmithTracing({ trust: "edge" }));   // first, before body parsers and routes
 *   app.post("/chat", handler);                       // traceable() calls nest under the request
 *   app.use(jsonErrors({ service: "chat" }));         // errors.ts: JSON errors that carry the trace id
 *
 * For every request it creates one "server" run (`POST /chat`), either as the
 * child of a trusted caller's run or as a fresh root (propagator.ts decides),
 * keeps it current for the request's lifetime (so `traceable` functions and
 * `getCurrentRunTree()` nest under it), puts its trace id in the `x-trace-id`
 * response header and ends it with the status code, matched route and error,
 * also when the client hangs up (node-http.ts). `tracedFetch` carries the
 * context to the next service.
 *
 * The matched route pattern and thrown errors come from the router's
 * `express.router.request` diagnostics channel (router 2.3+, which express 5
 * installs by default). With an older router the run still ends, marked as an
 * error from its 5xx status, just without the message and stack.
 */
import { subscribe } from "node:diagnostics_channel";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { answerTailNotice, nodeTracing, traceNodeRequest, type NodeTracingOptions } from "./node-http.js";
import { describeError } from "./propagator.js";
import { droppedRun } from "./sampling.js";

export type LangSmithTracingOptions = NodeTracingOptions<Request, Response>;

/**
 * The middleware. Register it before body parsers and routes so every request,
 * including rejected ones, gets a run and an `x-trace-id`.
 */
export function langsmithTracing(options: LangSmithTracingOptions = {}): RequestHandler {
  const tracing = nodeTracing(options);
  observeRouter();
  return (req: Request, res: Response, next: NextFunction): void => {
    if (answerTailNotice(tracing, req, res)) return;
    const run = traceNodeRequest(tracing, req, res, {
      url: req.originalUrl,
      route: () => requestRoutes.get(req) ?? currentRoute(req),
      error: () => requestErrors.get(req),
    });
    if (run === undefined) {
      next();
      return;
    }
    // A sampled-out request has no run of its own: getRequestRun stays undefined.
    if (run !== droppedRun()) requestRuns.set(req, run);
    // withRunTree keeps the run current for everything the rest of the chain
    // awaits: traceable() calls, getCurrentRunTree(), tracedFetch().
    withRunTree(run, () => next()).catch((err: unknown) => next(err));
  };
}

/** The request's server run, or undefined when tracing is off. Works outside the async context too (e.g. in event callbacks). */
export function getRequestRun(req: Request): RunTree | undefined {
  return requestRuns.get(req);
}

// Per request, without touching the request object's shape.
const requestRuns = new WeakMap<Request, RunTree>();
const requestErrors = new WeakMap<Request, string>();
const requestRoutes = new WeakMap<Request, string>();

function routePattern(path: unknown): string | undefined {
  if (typeof path === "string") return path;
  return Array.isArray(path) ? path.map(String).join("|") : undefined;
}

/** The route handling this request ("/api/users/:id"), with the prefix of the router it is mounted under. */
function currentRoute(req: Request): string | undefined {
  const route: unknown = req.route;
  if (typeof route !== "object" || route === null || !("path" in route)) return undefined;
  const pattern = routePattern(route.path);
  return pattern === undefined ? undefined : `${req.baseUrl ?? ""}${pattern}`;
}

function isTracedRequest(message: unknown): message is { req: Request; route?: unknown; error?: unknown } {
  return typeof message === "object" && message !== null && "req" in message && requestRuns.has(message.req as Request);
}

let routerObserved = false;

/**
 * Reads route and errors from the router's diagnostics channel. Looking at
 * `req.route` when the response finishes is not enough: when an error leaves
 * a mounted router, the router restores `req.baseUrl` and "/api/boom" reads as
 * "/boom". And errors never come back through this middleware's `next`.
 */
function observeRouter(): void {
  if (routerObserved) return;
  routerObserved = true;
  subscribe("tracing:express.router.request:start", (message) => {
    // Route handlers run with req.route set to their route; middleware does not.
    if (!isTracedRequest(message)) return;
    const route: unknown = message.req.route;
    if (typeof route === "object" && route !== null && "path" in route && route.path === message.route) {
      const matched = currentRoute(message.req);
      if (matched !== undefined) requestRoutes.set(message.req, matched);
    }
  });
  subscribe("tracing:express.router.request:error", (message) => {
    // Published once, where the error originated; the first one is the cause.
    if (isTracedRequest(message) && !requestErrors.has(message.req)) requestErrors.set(message.req, describeError(message.error));
  });
}
