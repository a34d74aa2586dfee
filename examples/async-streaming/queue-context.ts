/**
 * Trace context through a message queue. The producer writes the current run's
 * `langsmith-trace` and `baggage` into the message's metadata; the consumer,
 * in another process and possibly much later, continues the trace from them.
 *
 *   // producer, inside a traced request
 *   await queue.add("summarize", { payload, metadata: injectTraceContext() });
 *
 *   // consumer
 *   await continueTrace(job.data.metadata, { name: "process summarize" }, () => summarize(job.data.payload));
 *
 * The metadata is a flat string map on purpose: it is what every broker's
 * per-message headers can carry (SQS message attributes, Kafka record headers,
 * NATS headers, AMQP headers, a field in a Redis job's JSON). The README shows
 * the mapping for each.
 *
 * A message is data from the past, maybe from an older producer or a bug, so
 * the consumer never trusts it blindly: missing context starts a new root,
 * malformed context starts a new root and logs a warning, and nothing about
 * the context can make the handler throw. The validation and the run are the
 * kit's (`readInbound`, `startRun`), so a queue accepts exactly what an HTTP hop
 * accepts and records it the same way.
 */
import { isTracingEnabled, type Client } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import {
  DEFAULT_LIMITS,
  currentRun,
  describeError,
  injectTraceHeaders,
  onceWarner,
  readInbound,
  startRun,
  type BaggageAdjustment,
  type HeaderLimits,
  type InboundRejection,
  type TracingLogger,
  type Warn,
} from "@tracing-patterns/kit";

/** Message metadata: string keys to string values, as broker headers are. */
export type TraceCarrier = Record<string, string>;

export const TRACE_KEY = "langsmith-trace";
export const BAGGAGE_KEY = "baggage";

/**
 * Writes the current run's trace context into `carrier` (created if omitted)
 * and returns it. Outside a traced context it adds nothing, so the consumer
 * starts a root, which is the right outcome for untraced producers.
 * Baggage goes through the kit's outbound filter: the producer's
 * LANGSMITH_SERVICE label stays behind and oversized baggage is dropped.
 */
export function injectTraceContext(carrier: TraceCarrier = {}): TraceCarrier {
  if (currentRun() === undefined) return carrier;
  const headers = injectTraceHeaders();
  const trace = headers.get(TRACE_KEY);
  const baggage = headers.get(BAGGAGE_KEY);
  if (trace) carrier[TRACE_KEY] = trace;
  if (baggage) carrier[BAGGAGE_KEY] = baggage;
  return carrier;
}

/** Why a message's context was not continued, beyond the HTTP reasons. */
export type CarrierRejection = InboundRejection | "metadata-not-an-object" | "trace-context-not-a-string" | "baggage-not-a-string";

export type ExtractedContext =
  | { kind: "none" }
  | { kind: "restarted"; reason: CarrierRejection }
  | { kind: "continued"; parent: RunTree; adjustments: BaggageAdjustment[] };

export interface ExtractOptions {
  limits?: Partial<HeaderLimits>;
  /** Client the continued runs are written with. Default: the SDK's shared client. */
  client?: Client;
  /** Project for this consumer's runs. Default: LANGSMITH_PROJECT. A message cannot choose it. */
  projectName?: string;
}

/**
 * Reads a message's metadata. Never throws: whatever arrives (undefined, a
 * string, an array, numbers, a forged or truncated dotted order, bad baggage)
 * ends up as "none", "restarted" with a reason, or "continued" with the
 * producer's run as a synthetic parent (never posted; its children point at it).
 */
export function extractTraceContext(carrier: unknown, options: ExtractOptions = {}): ExtractedContext {
  return readCarrier(carrier, options, undefined);
}

export interface ContinueTraceOptions extends ExtractOptions {
  /** Run name, e.g. "process summarize" (OpenTelemetry's messaging convention: "<operation> <destination>"). */
  name: string;
  run_type?: string;
  inputs?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  tags?: string[];
  /** Where warnings about malformed context go. Default: console. Each cause is reported once per logger. */
  logger?: TracingLogger;
  /** Force tracing on or off. Default: the SDK's rule (LANGSMITH_TRACING, or the enclosing run's setting). */
  enabled?: boolean;
}

/**
 * Runs `handler` as a run that continues the trace in `carrier` (or as a new
 * root when there is none, or it is unusable), with the run current for
 * everything the handler awaits: traceable() calls, LangChain models,
 * injectTraceContext() for the next hop. The run records how the context was
 * handled as metadata `trace.inbound` (continued / none / restarted) and
 * `trace.inbound_reason`, ends with the handler's result or error, and the
 * handler's error is rethrown so the broker's retry logic still sees it.
 * With tracing off it only calls the handler (with no run).
 */
export async function continueTrace<T>(carrier: unknown, options: ContinueTraceOptions, handler: (run: RunTree | undefined) => Promise<T> | T): Promise<T> {
  // A RunTree posts whenever asked, so the switch has to be checked here.
  if (!(options.enabled ?? isTracingEnabled())) return handler(undefined);
  const context = readCarrier(carrier, options, warnerFor(options.logger ?? console));
  const metadata: Record<string, unknown> = { ...options.metadata, "trace.inbound": context.kind };
  if (context.kind === "restarted") metadata["trace.inbound_reason"] = context.reason;
  const config = { name: options.name, run_type: options.run_type ?? "chain", inputs: options.inputs ?? {}, metadata, tags: options.tags };
  const run = startRun(context, config, options);

  // Posting at the start makes a long job visible while it runs. The patch
  // below goes through the same batch queue, so it cannot overtake the create.
  const posted = run.postRun();
  try {
    const result = await withRunTree(run, () => handler(run));
    await run.end(asOutputs(result));
    return result;
  } catch (error) {
    await run.end(undefined, describeError(error));
    throw error;
  } finally {
    await posted;
    await run.patchRun();
  }
}

/**
 * The carrier's shape first (broker headers are strings), then the same
 * validation as an HTTP hop. A consumer trusts its queue's producers; a
 * message still cannot choose the project or add replicas.
 */
function readCarrier(carrier: unknown, options: ExtractOptions, warn: Warn | undefined): ExtractedContext {
  if (carrier === undefined || carrier === null) return { kind: "none" };
  const fields = carrierFields(carrier);
  // Each cause is reported the same way, whether the carrier's shape or its content was wrong.
  if (typeof fields === "string") {
    warn?.(fields, `Started a new trace for a message whose trace context was unusable (${fields}).`);
    return { kind: "restarted", reason: fields };
  }
  if (fields.trace === undefined) return { kind: "none" };
  const context = readInbound(
    { trace: [fields.trace], baggage: fields.baggage ? [fields.baggage] : undefined },
    { trusted: true, limits: { ...DEFAULT_LIMITS, ...options.limits }, client: options.client, projectName: options.projectName },
  );
  if (context.kind === "continued") {
    for (const adjustment of context.adjustments) warn?.(adjustment, `Continued a message's trace but ignored part of its baggage (${adjustment}).`);
    return context;
  }
  if (context.kind === "none") return context;
  // Trusted, so the reason is never "untrusted-caller".
  const reason = context.reason as InboundRejection;
  warn?.(reason, `Started a new trace for a message whose trace context was unusable (${reason}).`);
  return { kind: "restarted", reason };
}

function carrierFields(carrier: unknown): { trace?: string; baggage?: string } | Exclude<CarrierRejection, InboundRejection> {
  if (typeof carrier !== "object" || carrier === null || Array.isArray(carrier)) return "metadata-not-an-object";
  const { [TRACE_KEY]: trace, [BAGGAGE_KEY]: baggage } = carrier as Record<string, unknown>;
  if (trace === undefined) return {};
  if (typeof trace !== "string") return "trace-context-not-a-string";
  if (baggage !== undefined && typeof baggage !== "string") return "baggage-not-a-string";
  return { trace, baggage };
}

// Once per cause and logger: continueTrace runs per message, with no instance to hold the set.
const warners = new WeakMap<TracingLogger, Warn>();

function warnerFor(logger: TracingLogger): Warn {
  let warn = warners.get(logger);
  if (warn === undefined) {
    warn = onceWarner(logger, "langsmith-queue");
    warners.set(logger, warn);
  }
  return warn;
}

function asOutputs(result: unknown): Record<string, unknown> {
  return typeof result === "object" && result !== null && !Array.isArray(result) && Object.getPrototypeOf(result) === Object.prototype
    ? { ...(result as Record<string, unknown>) }
    : { output: result };
}
