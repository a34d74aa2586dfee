/**
 * The client side of notebook examples, so a cell shows the server pattern and not the plumbing
 * around the request that exercises it.
 *
 *   const call = await clientCall(`${server.url}/summarize`, { json: { text: "..." } });
 *   call.traceId;    // the trace of the client's root run, "client_call"
 *   const chat = await postJson(`${gateway}/chat`, { message: "hi" }, { headers: { "x-api-key": "demo-key-alice" } });
 *   chat.traceId;    // the server's x-trace-id
 *   const { traceId, result } = await traceRoot("handle_request", () => work());
 *   await withTracingDisabled(() => work());   // LANGSMITH_TRACING=false for the call
 *
 * These use the langsmith SDK directly (getCurrentRunTree().toHeaders() when a run is current), so
 * they work with any server that continues `langsmith-trace` and `baggage`.
 */
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { isRunTree, type RunTreeConfig } from "langsmith/run_trees";

export interface ClientCallOptions {
  /** The client's root run. Default "client_call". */
  name?: string;
  /** JSON body (sent with content-type application/json). */
  json?: unknown;
  /** Text body (sent with `contentType`, default text/plain). */
  text?: string;
  contentType?: string;
  /**
   * Extra request headers. They win over the trace headers, so a cell can send bad ones on purpose;
   * a `baggage` value is added to the trace's own members, as a proxy or another vendor adds one.
   */
  headers?: Record<string, string>;
  /** Default POST. */
  method?: string;
}

export interface ClientCallResult {
  /** The client root run's trace. */
  traceId: string;
  status: number;
  /** The server's x-trace-id header, null when it sent none. */
  xTraceId: string | null;
  body: string;
}

/** A traced client: one root run around a fetch that carries the current run's trace headers. */
export async function clientCall(url: string, options: ClientCallOptions = {}): Promise<ClientCallResult> {
  const { traceId, result } = await traceRoot(options.name ?? "client_call", async () => {
    const current = getCurrentRunTree(true);
    const body = options.json !== undefined ? JSON.stringify(options.json) : options.text;
    const contentType = options.json !== undefined ? "application/json" : (options.contentType ?? "text/plain");
    const traceHeaders: Record<string, string> = isRunTree(current) ? current.toHeaders() : {};
    const baggage = [traceHeaders.baggage, options.headers?.baggage].filter(Boolean).join(",");
    const response = await fetch(url, {
      method: options.method ?? "POST",
      headers: { ...traceHeaders, "content-type": contentType, ...options.headers, ...(baggage ? { baggage } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: response.status, xTraceId: response.headers.get("x-trace-id"), body: await response.text() };
  }, { inputs: { url } });
  return { traceId, ...result };
}

export interface PostJsonResult<T> {
  status: number;
  /** The server's x-trace-id header, "" when it sent none. */
  traceId: string;
  body: T;
}

/** An untraced JSON POST, as an outside caller makes it; returns the server's x-trace-id and the parsed body. */
export async function postJson<T = Record<string, unknown>>(url: string, body: unknown, options: { headers?: Record<string, string> } = {}): Promise<PostJsonResult<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...options.headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (an error page): the text is the body.
  }
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body: parsed as T };
}

/**
 * Runs fn inside a new traced root run and returns its trace id with fn's result: the "request" of a
 * cell whose pattern is what happens inside it. `config` is traceable's (metadata, tags, project_name).
 * The trace id is "" when tracing is off.
 */
export async function traceRoot<T>(name: string, fn: () => Promise<T> | T, config: Partial<RunTreeConfig> = {}): Promise<{ traceId: string; result: T }> {
  let traceId = "";
  const { inputs, ...rest } = config;
  const root = traceable(
    async (_inputs: Record<string, unknown>) => {
      const current = getCurrentRunTree(true);
      if (isRunTree(current)) traceId = current.trace_id;
      return fn();
    },
    { ...rest, name },
  );
  const result = (await root(inputs ?? {})) as T;
  return { traceId, result };
}

/**
 * Runs fn with LANGSMITH_TRACING=false and restores the previous value afterwards, even when fn
 * throws: for cells that show what code does with tracing off. The setting is process-wide, and
 * the SDK reads it per traced call, so do not run traced work concurrently meanwhile.
 */
export async function withTracingDisabled<T>(fn: () => Promise<T> | T): Promise<T> {
  const previous = process.env.LANGSMITH_TRACING;
  process.env.LANGSMITH_TRACING = "false";
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env.LANGSMITH_TRACING;
    else process.env.LANGSMITH_TRACING = previous;
  }
}

/** Reads a stream of text chunks to the end and returns the text. */
export async function collectText(stream: AsyncIterable<string>): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += chunk;
  return text;
}
