// What the four services share: where each listens, where its neighbours are,
// JSON calls that carry the trace and check the answer, JSON errors, and a
// stop that does not lose runs and ends before the launcher's SIGKILL.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { ErrorRequestHandler, Express } from "express";
import type { z } from "zod";
import { flushTraces, shutdownBudget, trackConnections } from "@tracing-patterns/setup";
import { getRequestRun, tracedFetch } from "@tracing-patterns/example-express-middleware";
import { describeIssues } from "./contracts.js";
import { DEFAULT_PORTS, PORT_ENV, URL_ENV, type DownstreamService, type ServiceName } from "./ports.js";

const HOST = process.env.SERVICE_HOST ?? "127.0.0.1";

export function portFor(service: ServiceName): number {
  const raw = process.env[PORT_ENV[service]];
  if (raw === undefined || raw.trim() === "") return DEFAULT_PORTS[service];
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${PORT_ENV[service]} must be a port number, got ${JSON.stringify(raw)}`);
  return port;
}

/** The downstream service's base URL: its *_URL variable, else its default port on loopback. */
export function urlOf(service: DownstreamService): URL {
  return new URL(process.env[URL_ENV[service]] ?? `http://127.0.0.1:${DEFAULT_PORTS[service]}`);
}

export function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
}

/** A downstream call that failed, or answered what the contract does not allow; the caller answers 502 with it. */
export class DownstreamError extends Error {
  constructor(
    readonly service: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = "DownstreamError";
  }
}

const TIMEOUT_MS = numberFromEnv("DOWNSTREAM_TIMEOUT_MS", 30_000);

/** A request a service refuses because it breaks the contract (400); the error handler answers it. */
export class InvalidRequest extends Error {
  readonly status = 400;
  readonly expose = true;

  constructor(message: string) {
    super(message);
    this.name = "InvalidRequest";
  }
}

function causeOf(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
}

/** The `error` of one of our JSON error bodies, else the start of the body as it came. */
function errorDetail(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") return parsed.error;
  } catch {
    // Not ours (a proxy's HTML page, say): quoted as it came.
  }
  return text.slice(0, 300);
}

/**
 * POSTs JSON to one of our own services and checks the answer against
 * `schema`. tracedFetch adds `langsmith-trace` and `baggage` for the current
 * run, so the receiver's server run becomes its child. Every failure, from an
 * unreachable service to a field of the wrong type, is a DownstreamError that
 * names the service and what it answered.
 */
export async function postJson<T>(service: string, url: URL, body: unknown, schema: z.ZodType<T>): Promise<T> {
  let response: Response;
  try {
    response = await tracedFetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new DownstreamError(service, undefined, `${service} at ${url.origin} unreachable: ${causeOf(err)}`);
  }
  const status = response.status;
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    throw new DownstreamError(service, status, `${service} answered ${status} but the body could not be read: ${causeOf(err)}`);
  }
  if (!response.ok) throw new DownstreamError(service, status, `${service} answered ${status}: ${errorDetail(text)}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new DownstreamError(service, status, `${service} answered ${status} with a body that is not JSON: ${text.slice(0, 100)}`);
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new DownstreamError(service, status, `${service} answered ${status} with malformed data: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * The status of an error made for the caller: ours (InvalidRequest,
 * EdgeRejection) and body-parser's, which http-errors marks `expose`. A
 * dependency's 4xx (a DownstreamError, a model's 429) has a status too, but
 * it is this service's failure, not the caller's.
 */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null || err instanceof DownstreamError) return undefined;
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return expose === true && typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

/**
 * The last handler of every service: whatever a route threw or passed to
 * `next`, the caller gets JSON. A client error (a body parser's 413, an
 * InvalidRequest, an EdgeRejection) keeps its status, headers and message; a
 * DownstreamError is a 502; anything else a 500. The middleware has already
 * put the error on the request's run. A public service (`exposeFailures:
 * false`) does not relay its own or its dependencies' failure messages: the
 * trace id leads to them.
 */
export function jsonErrors(service: ServiceName, options: { exposeFailures: boolean }): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    // Too late for a status: express ends the connection.
    if (res.headersSent) {
      next(err);
      return;
    }
    const traceId = getRequestRun(req)?.trace_id;
    const status = clientErrorStatus(err);
    if (status !== undefined && err instanceof Error) {
      // Such as an EdgeRejection's Retry-After; only plain string values, whatever else an error carries.
      const headers: unknown = (err as { headers?: unknown }).headers;
      if (typeof headers === "object" && headers !== null) {
        for (const [name, value] of Object.entries(headers)) if (typeof value === "string") res.set(name, value);
      }
      res.status(status).json({ error: err.message, traceId });
      return;
    }
    const failure = err instanceof DownstreamError ? { status: 502, message: err.message } : { status: 500, message: `internal error in ${service}` };
    if (failure.status === 500) console.error(`[${service}] ${req.method} ${req.path} failed:`, err);
    const error = options.exposeFailures ? failure.message : "the answer could not be produced because an internal service failed; quote traceId when reporting it";
    res.status(failure.status).json({ error, traceId });
  };
}

// The whole stop, from the signal to exit: below the 10 s the launcher (launch.ts) waits
// before SIGKILL, as an orchestrator's grace period would be.
const SHUTDOWN_TIMEOUT_MS = numberFromEnv("SHUTDOWN_TIMEOUT_MS", 8_000);

/**
 * Listens, announces `<service> listening on <url>` on stdout (the launcher
 * and tests wait for that line), and stops cleanly on SIGINT/SIGTERM within
 * SHUTDOWN_TIMEOUT_MS: no new connections, in-flight requests finish or are
 * cut off when the drain share of the budget is spent (their runs end with the
 * disconnect), pending runs are flushed with what is left, exit 0.
 */
export async function serve(app: Express, service: ServiceName): Promise<void> {
  // Split before listening, so a bad SHUTDOWN_TIMEOUT_MS fails at start-up, not at the first SIGTERM.
  const budget = shutdownBudget(SHUTDOWN_TIMEOUT_MS);
  const port = portFor(service);
  const server = app.listen(port, HOST);
  const connections = trackConnections(server);
  try {
    await once(server, "listening");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const hint = code === "EADDRINUSE" ? ` (port ${port} is taken; set ${PORT_ENV[service]}, 0 for any free port)` : "";
    console.error(`${service} could not listen on ${HOST}:${port}: ${code ?? String(err)}${hint}`);
    process.exit(1);
  }
  const { port: actual } = server.address() as AddressInfo;
  console.log(`${service} listening on http://${HOST.includes(":") ? `[${HOST}]` : HOST}:${actual}`);

  let stopping = false;
  const stop = async (reason: string): Promise<void> => {
    // Ctrl-C in a terminal reaches every process of the group, and the launcher
    // sends SIGTERM as well: the second signal must not cut short a stop that is
    // bounded anyway.
    if (stopping) return;
    stopping = true;
    const started = performance.now();
    // A request that outlives the drain (a hung model call) is cut off: its run
    // ends with the disconnect, and the flush still keeps its reserve to send it.
    const drained = await connections.close(budget.drainMs);
    // LangChain's background callbacks too (the llm service's ChatOpenAI runs). Bounded:
    // with the trace backend down or hung the SDK's own flush takes 90 s or more.
    const flush = await flushTraces({ timeoutMs: Math.max(0, SHUTDOWN_TIMEOUT_MS - (performance.now() - started)) });
    const requests = drained ? "in-flight requests finished" : "in-flight requests cut off at the deadline";
    const traces = flush.flushed ? `traces flushed in ${flush.elapsedMs} ms` : `traces NOT flushed after ${flush.elapsedMs} ms, what is still pending is lost`;
    console.error(`[shutdown] ${reason}: ${requests}; ${traces}`);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // Set by the launcher: when it dies without stopping us (a killed notebook
  // kernel, say), its end of the stdin pipe closes and we must not linger on the port.
  if (process.env.EXIT_ON_STDIN_END === "1") {
    process.stdin.on("end", () => void stop("launcher gone"));
    process.stdin.resume();
  }
}
