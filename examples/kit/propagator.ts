/**
 * The LangSmith context propagator, framework-neutral: continue (or restart)
 * a trace from the headers a caller sent, and send the current trace on to the
 * next service. Every adapter (express.ts, node-http.ts, hono.ts, a queue
 * consumer) calls the same `continueInbound`.
 *
 *   // receiving: validated headers -> a run, child of the caller's or a new root
 *   const { run, context } = continueInbound(
 *     { trace: headers["langsmith-trace"], baggage: headers["baggage"] },   // string[] | undefined each
 *     { name: "process order", run_type: "chain", inputs },
 *     { trusted: true, warn: onceWarner(console) },
 *   );
 *   await withRunTree(run, () => handle(order));   // traceable() calls nest under `run`
 *
 *   // sending, inside a traced context
 *   await tracedFetch("http://billing/charge", { method: "POST", body });
 *
 * Trust decides whether a caller's `langsmith-trace` may become the parent:
 * at a public edge it never does (the caller's claim is kept as metadata), in
 * your own mesh valid headers are continued. Whatever arrives, nothing here
 * throws into the request or message that carried it.
 */
import type { Client } from "langsmith";
import { RunTree, isRunTree, type RunTreeConfig } from "langsmith/run_trees";
// Import from "langsmith/traceable", not "langsmith/singletons/traceable":
// loading traceable.js is what installs the SDK's AsyncLocalStorage. Without it
// the singleton store is a no-op and withRunTree silently keeps no context.
import { getCurrentRunTree } from "langsmith/traceable";
import { outboundBaggage } from "./outbound-baggage.js";
import { CAUSES, DEFAULT_LIMITS, parseTraceHeader, sanitizeBaggage, type BaggageAdjustment, type HeaderLimits, type InboundRejection, type TraceHeader } from "./headers.js";
import { SIGNATURE_CAUSES, SIGNATURE_HEADER, signContext, verifyContext, type SignatureRejection, type SignedTrust } from "./signing.js";

export const TRACE_HEADER = "langsmith-trace";
export const BAGGAGE_HEADER = "baggage";
/** Carries the sampling decision (sampling.ts) next to `langsmith-trace`: `keep`, `drop` or `tail`. */
export const SAMPLING_HEADER = "x-langsmith-sampling";

/** A client that knows what this service decided for a trace (tail.ts); any other client is keep. */
interface SamplingAwareClient {
  samplingDecision?(traceId: string): "keep" | "tail" | undefined;
  /** Reads a callee's answer for its tail headers (keep, held). */
  observeResponse?(traceId: string, url: string, headers: Headers): void;
}

/**
 * Whose tracing headers to believe.
 * - "edge": public traffic. Inbound headers never become the parent; the
 *   request starts a new trace and the caller's claim is kept as metadata.
 * - "mesh": traffic from your own services. Valid headers are continued.
 * - `{ signedBy: key }`: valid headers are continued only when they carry a
 *   recent signature made with this shared key (signing.ts); anything else
 *   starts a new root, recorded with the reason.
 * - a function: decide per request (say, by a verified mTLS identity or an
 *   internal network interface). Returning true means trusted. It should be
 *   cheap and must not read the body; if it throws, the request is untrusted.
 */
export type TrustPolicy<Req> = "edge" | "mesh" | SignedTrust | ((req: Req) => boolean);

export interface TracingLogger {
  warn(message: string): void;
}

/** Reports a cause once: `(cause, message)`. */
export type Warn = (cause: string, message: string) => void;

/** The tracing headers as received; each header's lines as an array, as node's `headersDistinct` gives them. */
export interface InboundHeaders {
  trace: readonly string[] | undefined;
  baggage: readonly string[] | undefined;
  /** `x-langsmith-context-signature`, read when `trusted` is a SignedTrust. */
  signature?: readonly string[] | undefined;
  /** `x-langsmith-sampling`, covered by the signature when present (sampling.ts decides what it means). */
  sampling?: readonly string[] | undefined;
}

export interface InboundOptions {
  /**
   * May the sender choose the parent? A function is asked only when a trace
   * header is present; if it throws, no. A SignedTrust: only when the context's
   * signature verifies with that key.
   */
  trusted: boolean | (() => boolean) | SignedTrust;
  /** Let trusted baggage pick the project (or agent address) the run goes to. Default false. */
  allowProjectOverride?: boolean;
  /** Let trusted baggage add `langsmith-replicas` (extra projects written to). Default false. */
  allowReplicas?: boolean;
  limits?: HeaderLimits;
  /** Client to write runs with. Default: the SDK's shared client. */
  client?: Client;
  /** Project for the runs this service starts. Default: the SDK's (see serviceProject). */
  projectName?: string;
  /** Where rejected and trimmed contexts are reported. Default: not reported. */
  warn?: Warn;
}

/** How a run relates to what the sender sent. */
export type InboundContext =
  | { kind: "none" }
  | { kind: "restarted"; reason: "untrusted-caller" | InboundRejection | SignatureRejection; claimed?: TraceHeader; adjustments?: BaggageAdjustment[] }
  | { kind: "continued"; parent: RunTree; adjustments: BaggageAdjustment[] };

/** What a new run is: name, type, inputs, metadata, tags. */
export type RunConfig = Pick<RunTreeConfig, "name" | "run_type" | "inputs" | "metadata" | "tags">;

/**
 * The one step every adapter takes: the sender's headers, validated under the
 * trust policy, become this service's run: a child of the sender's run when
 * they are trusted and valid, otherwise a new root. Never throws on what the
 * sender sent; `context` says which it was (see inboundMetadata).
 */
export function continueInbound(headers: InboundHeaders, config: RunConfig, options: InboundOptions): { run: RunTree; context: InboundContext } {
  const context = readInbound(headers, options);
  return { run: startRun(context, config, options), context };
}

/** The sender's run as a synthetic parent (never posted), or why it is not followed. Never throws. */
export function readInbound(headers: InboundHeaders, options: InboundOptions): InboundContext {
  const warn = options.warn ?? (() => undefined);
  const limits = options.limits ?? DEFAULT_LIMITS;
  const trace = parseTraceHeader(headers.trace, limits);
  if (trace.kind === "absent") return { kind: "none" };
  if (typeof options.trusted === "object") {
    const verified = verifyContext(headers, options.trusted);
    if (!verified.ok) {
      // A warning, unlike an untrusted edge caller: inside a signed mesh this is a misconfigured or hostile sender.
      warn(verified.reason, `Started a new trace instead of continuing ${SIGNATURE_CAUSES[verified.reason]}.`);
      return { kind: "restarted", reason: verified.reason, claimed: trace.kind === "valid" ? trace.header : undefined };
    }
  } else if (!isTrusted(options.trusted, warn)) {
    // Not a warning: browsers and partners sending headers to a public edge is normal.
    return { kind: "restarted", reason: "untrusted-caller", claimed: trace.kind === "valid" ? trace.header : undefined };
  }
  if (trace.kind === "invalid") {
    warn(trace.reason, `Started a new trace instead of continuing ${CAUSES[trace.reason]}.`);
    return { kind: "restarted", reason: trace.reason };
  }
  const baggage = sanitizeBaggage(headers.baggage, {
    allowProjectOverride: options.allowProjectOverride ?? false,
    allowReplicas: options.allowReplicas ?? false,
    limits,
    ownProject: serviceProject(options.projectName),
  });
  if (baggage.kind === "invalid") {
    warn(baggage.reason, `Started a new trace instead of continuing one with ${CAUSES[baggage.reason]}.`);
    return { kind: "restarted", reason: baggage.reason };
  }
  for (const adjustment of baggage.adjustments) warn(adjustment, `Continued a trace but ignored ${CAUSES[adjustment]}.`);
  const parent = parentFromValidatedContext(trace.header.dottedOrder, baggage.baggage, options);
  if (parent === undefined) {
    warn("sdk-rejected", `Started a new trace instead of continuing ${CAUSES["sdk-rejected"]}.`);
    return { kind: "restarted", reason: "sdk-rejected", adjustments: baggage.adjustments };
  }
  return { kind: "continued", parent, adjustments: baggage.adjustments };
}

/** The run for `context` (an InboundContext, or a transport's own with the same kinds): a child of the sender's run, or a root in this service's project. */
export function startRun(
  context: { kind: "none" | "restarted" } | { kind: "continued"; parent: RunTree },
  config: RunConfig,
  options: Pick<InboundOptions, "client" | "projectName">,
): RunTree {
  if (context.kind === "continued") {
    // createChild does not inherit tags, so the sender's (already filtered)
    // baggage tags would otherwise stay on the synthetic parent, which is never sent.
    return context.parent.createChild({ ...config, tags: [...new Set([...(context.parent.tags ?? []), ...(config.tags ?? [])])] });
  }
  return new RunTree({ ...config, tags: [...(config.tags ?? [])], client: options.client, project_name: options.projectName, tracingEnabled: true });
}

/** `context` as run metadata: `trace.inbound`, `trace.inbound_reason`, `trace.baggage_adjusted`, `untrusted_parent_*`. */
export function inboundMetadata(context: InboundContext): Record<string, string> {
  const out: Record<string, string> = { "trace.inbound": context.kind };
  if (context.kind === "restarted") out["trace.inbound_reason"] = context.reason;
  const adjustments = context.kind === "none" ? [] : (context.adjustments ?? []);
  if (adjustments.length > 0) out["trace.baggage_adjusted"] = adjustments.join(",");
  if (context.kind === "restarted" && context.claimed) {
    out.untrusted_parent_trace_id = context.claimed.traceId;
    out.untrusted_parent_run_id = context.claimed.parentRunId;
  }
  return out;
}

/**
 * `RunTree.fromHeaders` on a context that `parseTraceHeader` and
 * `sanitizeBaggage` already accepted. `undefined` when the SDK still refuses
 * it: it must never throw into the request or job that carried it.
 */
export function parentFromValidatedContext(dottedOrder: string, baggage: string | undefined, options: { client?: Client; projectName?: string } = {}): RunTree | undefined {
  try {
    return RunTree.fromHeaders(
      { [TRACE_HEADER]: dottedOrder, ...(baggage ? { [BAGGAGE_HEADER]: baggage } : {}) },
      { client: options.client, project_name: options.projectName, tracingEnabled: true },
    );
  } catch {
    return undefined;
  }
}

export interface OutboundOptions {
  /** The key shared with receivers that trust `{ signedBy }`: adds `x-langsmith-context-signature`. */
  signingKey?: string;
}

/** The current run inside a traced request or traceable; undefined elsewhere and when tracing is off. */
export function currentRun(): RunTree | undefined {
  // With tracing off, traceable stores a placeholder ({ tracingEnabled: false }),
  // not a RunTree: its toHeaders does not exist, so check before using it.
  const current: unknown = getCurrentRunTree(true);
  return isRunTree(current) && current.tracingEnabled !== false ? current : undefined;
}

/**
 * Returns `init` plus `langsmith-trace` and `baggage` for the current run, for
 * calls into your own services only: the headers reveal run ids, metadata and
 * tags. Other vendors' baggage members already in `init` are kept; stale
 * langsmith ones are replaced. The merged baggage is kept within 8 KiB (see
 * outbound-baggage.ts); `langsmith-trace` is always sent. With `signingKey`
 * it also signs them (`x-langsmith-context-signature`, signing.ts) for
 * receivers that trust `{ signedBy }`. Outside a traced context it adds nothing;
 * in a request sampled out (sampling.ts) it sends `x-langsmith-sampling: drop`
 * instead, so the callee does not trace it either.
 */
export function injectTraceHeaders(init?: ConstructorParameters<typeof Headers>[0], options: OutboundOptions = {}): Headers {
  const headers = new Headers(init);
  const current: unknown = getCurrentRunTree(true);
  const run = isRunTree(current) && current.tracingEnabled !== false ? current : undefined;
  const foreign = (headers.get(BAGGAGE_HEADER) ?? "")
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m.length > 0 && !m.startsWith("langsmith-"));
  if (run === undefined) {
    // Not traced here on purpose (a request sampled out, sampling.ts): say so, so the callee does not start a root of its own.
    if ((current as { tracingEnabled?: unknown } | undefined)?.tracingEnabled === false) {
      headers.delete(TRACE_HEADER);
      if (foreign.length > 0) headers.set(BAGGAGE_HEADER, foreign.join(","));
      else headers.delete(BAGGAGE_HEADER);
      headers.set(SAMPLING_HEADER, "drop");
      if (options.signingKey !== undefined) headers.set(SIGNATURE_HEADER, signContext("", undefined, options.signingKey, Date.now(), "drop"));
      else headers.delete(SIGNATURE_HEADER);
    }
    return headers;
  }
  const { [TRACE_HEADER]: trace, baggage } = run.toHeaders();
  headers.set(TRACE_HEADER, trace);
  const merged = outboundBaggage(foreign, baggage, processWarn);
  if (merged) headers.set(BAGGAGE_HEADER, merged);
  else headers.delete(BAGGAGE_HEADER);
  const decision = (run.client as SamplingAwareClient).samplingDecision?.(run.trace_id);
  if (decision !== undefined) headers.set(SAMPLING_HEADER, decision);
  else headers.delete(SAMPLING_HEADER);
  if (options.signingKey !== undefined) headers.set(SIGNATURE_HEADER, signContext(trace, merged || undefined, options.signingKey, Date.now(), decision));
  else headers.delete(SIGNATURE_HEADER);
  return headers;
}

/**
 * `fetch` that continues the current trace in the service it calls. Same
 * signature as fetch. If the trace headers cannot be built (the run refuses
 * `toHeaders()`), the request is sent without them and a warning is logged
 * once: the callee starts a new trace, the call itself is unaffected. Async, so
 * nothing it does throws synchronously where a caller expects a rejection.
 */
export async function tracedFetch(input: string | URL | Request, init: NonNullable<Parameters<typeof fetch>[1]> = {}, options: OutboundOptions = {}): Promise<Response> {
  const base = init.headers ?? (input instanceof Request ? input.headers : undefined);
  let headers: Headers;
  try {
    headers = injectTraceHeaders(base, options);
  } catch (error) {
    processWarn("inject-failed", `Could not build trace headers, sent the request without them: ${describeError(error).split("\n")[0]}`);
    // fetch itself reports headers that are invalid on their own, as it would without tracing.
    return fetch(input, init);
  }
  const response = await fetch(input, { ...init, headers });
  // A tail trace learns from each answer whether the callee kept it or still holds runs.
  const run = currentRun();
  if (run !== undefined) {
    const url = input instanceof Request ? input.url : String(input);
    (run.client as SamplingAwareClient).observeResponse?.(run.trace_id, url, response.headers);
  }
  return response;
}

/**
 * A Warn that logs each cause once, as `[prefix] message (cause: c; reported
 * once)`: a sender replaying bad headers must not be able to flood the logs. A
 * logger that throws is ignored.
 */
export function onceWarner(logger: TracingLogger, prefix = "langsmith-tracing"): Warn {
  const warned = new Set<string>();
  return (cause, message) => {
    if (warned.has(cause)) return;
    warned.add(cause);
    try {
      logger.warn(`[${prefix}] ${message} (cause: ${cause}; reported once)`);
    } catch {
      // A broken logger must not break requests.
    }
  };
}

/** An error as one bounded string: its stack when it has one. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.length <= 4096 ? text : `${text.slice(0, 4096)}...`;
}

/**
 * The project this service's runs go to: `projectName`, else the SDK's own
 * default (langsmith/lib/utils/project.js): LANGSMITH_PROJECT,
 * LANGCHAIN_PROJECT, LANGCHAIN_SESSION, "default".
 */
export function serviceProject(projectName?: string): string {
  return projectName || process.env.LANGSMITH_PROJECT || process.env.LANGCHAIN_PROJECT || process.env.LANGCHAIN_SESSION || "default";
}

/** The SDK's own switch (langsmith/lib/env.js), so a receiver and `traceable` agree. */
export function tracingEnabledFromEnv(): boolean {
  const read = (name: string): string | undefined => process.env[`LANGSMITH_${name}`] || process.env[`LANGCHAIN_${name}`];
  return read("TRACING_V2") === "true" || read("TRACING") === "true";
}

const processWarn = onceWarner(console);

function isTrusted(trusted: boolean | (() => boolean), warn: Warn): boolean {
  if (typeof trusted === "boolean") return trusted;
  try {
    return trusted() === true;
  } catch {
    warn("trust-threw", "The trust policy function threw; the request was treated as untrusted.");
    return false;
  }
}
