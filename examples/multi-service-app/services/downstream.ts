// Calls between the services: JSON over HTTP that carries the trace, with the
// answer checked against its contract. Every way a call can fail becomes one
// DownstreamError, which the caller's error handler answers with a 502.
import type { z } from "zod";
import { tracedFetch } from "@tracing-patterns/kit";
import { describeIssues } from "./contracts.js";
import { numberFromEnv } from "./env.js";

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

/** For `jsonErrors({ upstreamFailure })`: a DownstreamError is a 502, not this service's 500. */
export function isDownstreamError(err: unknown): boolean {
  return err instanceof DownstreamError;
}

const TIMEOUT_MS = numberFromEnv("DOWNSTREAM_TIMEOUT_MS", 30_000);

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
