/**
 * The last handler of an express service: whatever a route threw or passed to
 * `next`, the caller gets JSON with the trace id to quote.
 *
 *   app.use(langsmithTracing({ trust: "edge" }));
 *   app.post("/chat", handler);
 *   app.use(jsonErrors({ service: "gateway" }));   // last
 *
 *   // 400 {"error": "Unexpected token } in JSON at position 9", "traceId": "0193..."}
 *   // 500 {"error": "the answer could not be produced because an internal service failed; quote traceId when reporting it", "traceId": "0193..."}
 *
 * A client error keeps its status, headers and message: errors made for the
 * caller carry `expose: true` and a 4xx `status`, as body-parser's (http-errors)
 * do. A dependency's 4xx (a model's 429) has a status too, but it is this
 * service's failure, not the caller's: a 500, or a 502 if `upstreamFailure`
 * says a service this one called failed. The tracing middleware has already
 * put the error on the request's run.
 */
import type { ErrorRequestHandler } from "express";
import { getRequestRun } from "./express.js";

export interface JsonErrorsOptions {
  /** Names this service in the log line of a 500 (and in its exposed message). */
  service: string;
  /**
   * Relay this service's own and its dependencies' failure messages to the
   * caller. Default false, right for anything public: the answer says only
   * that it failed, and the trace id leads to the rest.
   */
  exposeFailures?: boolean;
  /** True for errors that mean a service this one called failed: answered 502 with the error's message. */
  upstreamFailure?: (err: unknown) => boolean;
}

export function jsonErrors(options: JsonErrorsOptions): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    // Too late for a status: express ends the connection.
    if (res.headersSent) {
      next(err);
      return;
    }
    const traceId = getRequestRun(req)?.trace_id;
    const upstream = options.upstreamFailure?.(err) === true;
    const status = upstream ? undefined : clientErrorStatus(err);
    if (status !== undefined && err instanceof Error) {
      // Such as a rate limiter's Retry-After; only plain string values, whatever else an error carries.
      const headers: unknown = (err as { headers?: unknown }).headers;
      if (typeof headers === "object" && headers !== null) {
        for (const [name, value] of Object.entries(headers)) if (typeof value === "string") res.set(name, value);
      }
      res.status(status).json({ error: err.message, traceId });
      return;
    }
    const failure = upstream ? { status: 502, message: errorMessage(err) } : { status: 500, message: `internal error in ${options.service}` };
    if (failure.status === 500) console.error(`[${options.service}] ${req.method} ${req.path} failed:`, err);
    const error = options.exposeFailures ? failure.message : "the answer could not be produced because an internal service failed; quote traceId when reporting it";
    res.status(failure.status).json({ error, traceId });
  };
}

/** The status of an error made for the caller, else undefined. */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return expose === true && typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
