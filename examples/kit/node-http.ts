/**
 * LangSmith tracing for a plain `node:http` server, and the response handling
 * the express middleware shares: the run ends when the handler calls
 * `res.end()`, a client that leaves first ends it as "client disconnected", and
 * `x-trace-id` is set before the handler runs.
 *
 *   import { createServer } from "node:http";
 *   const server = createServer(tracedListener(async (req, res) => {
 *     res.end(await shout(await readBody(req)));     // traceable() calls nest under the request's run
 *   }, { trust: "mesh" }));
 *
 * A handler that throws or rejects ends the run with that error; if nothing was
 * sent yet the client gets a bare 500, otherwise the connection is closed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { describeError, type Warn } from "./propagator.js";
import { droppedRun } from "./sampling.js";
import { endServerRun, noticeAllowed, serverTracing, settleTail, startServerRun, type HttpTracingOptions, type ServerTracing } from "./server-run.js";
import { TAIL_ROUTE } from "./tail.js";

export interface NodeTracingOptions<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> extends HttpTracingOptions<Req> {
  /**
   * Called after the run's final update is queued: metrics, logs. Without
   * `flushBeforeEnd` it runs once the response has gone out, too late to
   * flush on a platform that freezes the process then.
   */
  onRunEnd?: (run: RunTree, req: Req, res: Res) => void | Promise<void>;
  /**
   * For serverless platforms that freeze the process once the response is
   * complete: when the handler ends the response, the run is ended and its
   * client's queue sent (waiting at most `timeoutMs`) before the response's
   * last bytes go out. Every response is delayed by that flush. Off by default.
   */
  flushBeforeEnd?: { timeoutMs: number };
}

export interface NodeTracing<Req extends IncomingMessage, Res extends ServerResponse> extends ServerTracing<Req> {
  onRunEnd: NodeTracingOptions<Req, Res>["onRunEnd"];
  flushBeforeEnd: NodeTracingOptions<Req, Res>["flushBeforeEnd"];
}

/** What the framework knows about a request that node does not. */
export interface NodeRequestHooks {
  /** The URL as the client sent it (express rewrites `req.url` inside routers). */
  url: string;
  /** The matched route pattern, asked when the run ends. */
  route?: () => string | undefined;
  /** What the handler threw, asked when the run ends. */
  error?: () => string | undefined;
}

/** A request listener whose every request is one run. */
export function tracedListener<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  handler: (req: Req, res: Res) => unknown,
  options: NodeTracingOptions<Req, Res> = {},
): (req: Req, res: Res) => void {
  const tracing = nodeTracing(options);
  return (req, res) => {
    if (answerTailNotice(tracing, req, res)) return;
    let thrown: string | undefined;
    const run = traceNodeRequest(tracing, req, res, { url: req.url ?? "/", error: () => thrown });
    const call = (): unknown => handler(req, res);
    (run ? withRunTree(run, call) : Promise.resolve().then(call)).catch((err: unknown) => {
      thrown ??= describeError(err);
      // As express's final handler does: the run has the error, the log has it even with tracing off.
      console.error(`${req.method} ${req.url} failed:`, err);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else {
        res.destroy();
      }
    });
  };
}

/** The options resolved once; `flushBeforeEnd` is checked here so a bad value fails at start-up. */
export function nodeTracing<Req extends IncomingMessage, Res extends ServerResponse>(options: NodeTracingOptions<Req, Res>): NodeTracing<Req, Res> {
  const flush = options.flushBeforeEnd;
  if (flush !== undefined && !(Number.isFinite(flush.timeoutMs) && flush.timeoutMs >= 0)) {
    throw new RangeError(`langsmithTracing: flushBeforeEnd.timeoutMs must be a finite number >= 0, got ${flush.timeoutMs}`);
  }
  return { ...serverTracing(options), onRunEnd: options.onRunEnd, flushBeforeEnd: flush };
}

/**
 * Starts the request's run and arranges for it to end with the response.
 * Returns the run to make current for the handler (`droppedRun()` when the
 * request is sampled out), or undefined when tracing is off or the run could
 * not start (the request is then served untraced).
 */
export function traceNodeRequest<Req extends IncomingMessage, Res extends ServerResponse>(
  tracing: NodeTracing<Req, Res>,
  req: Req,
  res: Res,
  hooks: NodeRequestHooks,
): RunTree | undefined {
  if (!tracing.enabled()) return undefined;
  let maybeStarted: ReturnType<typeof startServerRun>;
  try {
    maybeStarted = startServerRun(tracing, { req, method: req.method ?? "GET", path: hooks.url, header: (name) => req.headersDistinct[name] });
  } catch (err) {
    // Tracing is an observer: if it cannot start (say, a bad LANGSMITH_RUNS_ENDPOINTS), serve untraced.
    tracing.warn("start-failed", `Could not start a run; serving the request untraced: ${describeError(err).split("\n")[0]}`);
    return undefined;
  }
  // Sampled out: no run to end, nothing to send; the shared run keeps tracing off below.
  if (maybeStarted === undefined) return droppedRun();
  const started = maybeStarted;
  const { run } = started;
  // Before the handler runs, so the id is present on errors and streamed responses too.
  if (tracing.traceIdHeader) res.setHeader(tracing.traceIdHeader, run.trace_id);

  // The run ends when the handler calls res.end(), not when "finish" is
  // processed: under load the event loop can deliver "finish" tens of ms
  // later, after the caller already has the response, and the server run
  // would then end outside its parent's time window.
  let respondedAt: number | undefined;
  let ended = false;
  const finish = (disconnected: boolean): Promise<void> => {
    if (ended) return Promise.resolve();
    ended = true;
    const sent = !disconnected || res.headersSent;
    return (async () => {
      await endServerRun(tracing, started, {
        status: sent ? res.statusCode : undefined,
        route: hooks.route?.(),
        error: hooks.error?.(),
        disconnected,
        endTime: disconnected ? Date.now() : (respondedAt ?? Date.now()),
      });
      await tracing.onRunEnd?.(run, req, res);
    })().catch((err: unknown) => tracing.warn("end-failed", `Could not finish a run: ${describeError(err).split("\n")[0]}`));
  };
  const response: ServerResponse = res;
  const originalEnd = response.end as (...a: unknown[]) => ServerResponse;
  let flushed: Promise<void> | undefined;
  response.end = function (this: ServerResponse, ...args: unknown[]) {
    respondedAt ??= Date.now();
    // Tail requests tell their caller keep or held in the response head, which goes out in this call.
    const tailHeaders = settleTail(tracing, started, { status: this.statusCode, error: hooks.error?.() });
    if (!this.headersSent) for (const [name, value] of Object.entries(tailHeaders)) this.setHeader(name, value);
    const flush = tracing.flushBeforeEnd;
    if (flush === undefined) return originalEnd.apply(this, args);
    // A second end() waits behind the first, so the calls keep their order.
    flushed ??= finish(false).then(() => flushWithin(run, flush.timeoutMs, tracing.warn));
    void flushed.then(() => originalEnd.apply(this, args));
    return this;
  } as ServerResponse["end"];
  res.once("finish", () => void finish(false));
  // "close" without "finish": the client went away before the response was complete.
  res.once("close", () => void finish(!res.writableFinished));
  return run;
}

/**
 * Answers a tail root's keep notice (`POST /.well-known/langsmith-tail`, tail.ts)
 * when the adapter has a sampler; true when it did, and the request is then
 * not passed on. The trust policy decides who may send one: never anyone at an
 * edge, only signed notices under `{ signedBy }`.
 */
export function answerTailNotice<Req extends IncomingMessage, Res extends ServerResponse>(tracing: ServerTracing<Req>, req: Req, res: Res): boolean {
  const sampler = tracing.sampler;
  if (sampler === undefined || req.method !== "POST" || (req.url ?? "").split("?")[0] !== TAIL_ROUTE) return false;
  const reply = (status: number, body: Record<string, unknown>): void => {
    if (res.headersSent) return;
    res.statusCode = status;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(body));
  };
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
    // A notice is one trace id; anything larger is not one.
    if (body.length > MAX_NOTICE_BYTES) {
      reply(413, { error: "notice too large" });
      req.destroy();
    }
  });
  req.on("error", () => undefined);
  req.on("end", () => {
    if (!noticeAllowed(tracing.trust, req, body, req.headersDistinct["x-langsmith-context-signature"])) {
      reply(403, { error: "keep notices are accepted only from trusted callers" });
      return;
    }
    const answer = sampler.receiveNotice(body);
    reply(answer.status, answer.body);
  });
  return true;
}

const MAX_NOTICE_BYTES = 1024;

/** Sends what the run's client has queued (this run, its children, anything else pending), giving up after `ms`. */
async function flushWithin(run: RunTree, ms: number, warn: Warn): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    const outcome = await Promise.race([run.client.awaitPendingTraceBatches(), deadline]);
    if (outcome === "timeout") {
      warn("flush-timeout", `Sent the response after waiting ${ms} ms for the trace flush (flushBeforeEnd); runs still queued may be lost if the process is frozen.`);
    }
  } catch (err) {
    warn("flush-failed", `Could not flush before ending the response: ${describeError(err).split("\n")[0]}`);
  } finally {
    clearTimeout(timer);
  }
}
