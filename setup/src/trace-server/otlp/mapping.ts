// One OTLP span as a LangSmith run, with the attribute mapping LangSmith documents ("Trace with
// OpenTelemetry") and the one langsmith's own OTel exporter relies on (lib/experimental/otel).
//
//   const mapped = spanToRun(span, { project: req.get("Langsmith-Project") });
//   if ("rule" in mapped) reject(mapped); else store(mapped.run);
//
// Ids: a span id becomes the run id `00000000-0000-0000-XXXX-XXXXXXXXXXXX` (its 8 bytes left-padded
// into a UUID, as the SDK's getUuidFromOtelSpanId does), the parent span id the parent run id.
// `langsmith.span.id`, `langsmith.span.parent_id`, `langsmith.trace.id` and
// `langsmith.span.dotted_order` override them, and `langsmith.is_root` makes a span a root even when
// it has an OpenTelemetry parent (the SDK sets it on a service's first traceable span). The run's
// trace id is its root run's id, as for native runs; the OTel trace id is kept in `extra.otel`.
// Attributes the mapping does not consume land in `extra.metadata`, resource attributes in
// `extra.otel.resource`, and `service.name` also in `extra.metadata` so the viewer can label the
// service of spans that carry no LANGSMITH_SERVICE.
import { normalizeTime } from "../time.js";
import type { JsonObject, RejectionRule, RunUpsert } from "../types.js";
import { isUuid } from "../validate.js";
import { isJsonObject, tooDeepField } from "../wire.js";
import type { AttributeValue, Attributes, OtlpSpan } from "./decode.js";

export interface MappedSpan {
  run: RunUpsert & { op: "post"; start_time: string };
  /** The parent run id, after overrides; undefined for a root. */
  parentId: string | undefined;
  /** The OpenTelemetry trace id (hex). */
  otelTraceId: string;
}

export interface SpanViolation {
  rule: RejectionRule;
  message: string;
}

const RUN_TYPES = new Set(["llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"]);
const SPAN_KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const STATUS_CODES = ["UNSET", "OK", "ERROR"];
/** gen_ai.operation.name values that make an LLM or embedding run. */
const OPERATION_RUN_TYPES: Record<string, string> = {
  chat: "llm",
  completion: "llm",
  text_completion: "llm",
  generate_content: "llm",
  embedding: "embedding",
  embeddings: "embedding",
  execute_tool: "tool",
};
const INVOCATION_PARAMS: Record<string, string> = {
  "gen_ai.request.model": "model",
  "gen_ai.request.temperature": "temperature",
  "gen_ai.request.top_p": "top_p",
  "gen_ai.request.max_tokens": "max_tokens",
  "gen_ai.request.frequency_penalty": "frequency_penalty",
  "gen_ai.request.presence_penalty": "presence_penalty",
  "gen_ai.request.seed": "seed",
  "gen_ai.request.stop_sequences": "stop",
  "gen_ai.request.top_k": "top_k",
  "gen_ai.request.encoding_formats": "encoding_formats",
  "gen_ai.tool.name": "tool_name",
};
const USAGE: Record<string, "input_tokens" | "output_tokens" | "total_tokens"> = {
  "gen_ai.usage.input_tokens": "input_tokens",
  "gen_ai.usage.prompt_tokens": "input_tokens",
  "gen_ai.usage.output_tokens": "output_tokens",
  "gen_ai.usage.completion_tokens": "output_tokens",
  "gen_ai.usage.total_tokens": "total_tokens",
};
/** Consumed by the mapping, so not repeated in metadata. */
const CONSUMED = new Set([
  ...Object.keys(INVOCATION_PARAMS),
  ...Object.keys(USAGE),
  "gen_ai.response.model",
  "gen_ai.system",
  "gen_ai.operation.name",
  "gen_ai.prompt",
  "gen_ai.completion",
  "input.value",
  "output.value",
]);
const MESSAGE_ATTRIBUTE = /^gen_ai\.(prompt|completion)\.(\d+)\.(?:message\.)?(role|content)$/;

/** Run id of an OpenTelemetry span id (16 hex digits), as the langsmith SDK computes it. */
export function spanIdToRunId(spanIdHex: string): string {
  const hex = spanIdHex.padStart(16, "0");
  return `00000000-0000-0000-${hex.slice(0, 4)}-${hex.slice(4)}`;
}

/** The OTel trace id (32 hex digits) with hyphens, as the SDK's getUuidFromOtelTraceId writes it. */
export function traceIdToUuid(traceIdHex: string): string {
  return `${traceIdHex.slice(0, 8)}-${traceIdHex.slice(8, 12)}-${traceIdHex.slice(12, 16)}-${traceIdHex.slice(16, 20)}-${traceIdHex.slice(20)}`;
}

/** Map one span to a run create, or say which rule it breaks. `project` is the request's Langsmith-Project header. */
export function spanToRun(span: OtlpSpan, ctx: { project: string | undefined }): MappedSpan | SpanViolation {
  const a = span.attributes;
  const uuidAttr = (key: string): string | undefined | SpanViolation => {
    const v = a[key];
    if (v === undefined || v === null || v === "") return undefined;
    return isUuid(v) ? v.toLowerCase() : { rule: "invalid_uuid", message: `${key} must be a UUID, got ${JSON.stringify(v)}` };
  };
  const runId = uuidAttr("langsmith.span.id");
  const parentOverride = uuidAttr("langsmith.span.parent_id");
  const traceOverride = uuidAttr("langsmith.trace.id");
  const sessionId = uuidAttr("langsmith.trace.session_id");
  const referenceExampleId = uuidAttr("langsmith.reference_example_id");
  for (const v of [runId, parentOverride, traceOverride, sessionId, referenceExampleId]) if (typeof v === "object") return v;

  const start = nanosToIso(span.startNanos);
  if (start === undefined) return { rule: "invalid_field", message: `startTimeUnixNano ${span.startNanos} is not a representable time` };
  const end = span.endNanos === undefined ? undefined : nanosToIso(span.endNanos);
  if (span.endNanos !== undefined && end === undefined) return { rule: "invalid_field", message: `endTimeUnixNano ${span.endNanos} is not a representable time` };

  const isRoot = a["langsmith.is_root"] === true || a["langsmith.is_root"] === "true";
  const parentId = (parentOverride as string | undefined) ?? (isRoot || span.parentSpanId === undefined ? undefined : spanIdToRunId(span.parentSpanId));
  const id = (runId as string | undefined) ?? spanIdToRunId(span.spanId);
  if (parentId === id) return { rule: "invalid_field", message: `span ${span.spanId} names itself as its parent` };

  const inputs = ioObject(a["gen_ai.prompt"] ?? a["input.value"], "input", messagesFrom(a, "prompt"));
  let outputs = ioObject(a["gen_ai.completion"] ?? a["output.value"], "output", messagesFrom(a, "completion"));
  const usage = usageFrom(a);
  if (usage) outputs = { ...outputs, usage_metadata: isJsonObject(outputs?.usage_metadata) ? { ...usage, ...outputs.usage_metadata } : usage };

  const run: MappedSpan["run"] = {
    op: "post",
    id,
    name: stringAttr(a["langsmith.trace.name"]) ?? span.name,
    run_type: runTypeOf(a, usage !== undefined),
    start_time: start,
    inputs: inputs ?? {},
    extra: extraOf(span),
    events: span.events.map((e) => ({ name: e.name, time: nanosToIso(e.timeNanos) ?? start, kwargs: e.attributes })),
    source: "otel",
  };
  if (parentId !== undefined) run.parent_run_id = parentId;
  if (traceOverride !== undefined) run.trace_id = traceOverride as string;
  const dotted = stringAttr(a["langsmith.span.dotted_order"]);
  if (dotted !== undefined) run.dotted_order = dotted;
  if (end !== undefined) run.end_time = end;
  if (outputs !== undefined) run.outputs = outputs;
  const error = errorOf(span);
  if (error !== undefined) run.error = error;
  const tags = tagsOf(a["langsmith.span.tags"]);
  if (tags.length > 0) run.tags = tags;
  if (sessionId !== undefined) run.session_id = sessionId as string;
  else {
    const project = stringAttr(a["langsmith.trace.session_name"]) ?? ctx.project;
    if (project !== undefined && project !== "") run.session_name = project;
  }
  if (referenceExampleId !== undefined) run.reference_example_id = referenceExampleId as string;
  return { run, parentId, otelTraceId: span.traceId };
}

/** Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds kept, as dotted_order holds). */
export function nanosToIso(nanos: bigint): string | undefined {
  return normalizeTime(Number(nanos / 1000n) / 1000);
}

function stringAttr(v: AttributeValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);
}

function runTypeOf(a: Attributes, hasUsage: boolean): string {
  const kind = stringAttr(a["langsmith.span.kind"])?.toLowerCase();
  if (kind !== undefined && RUN_TYPES.has(kind)) return kind;
  const operation = stringAttr(a["gen_ai.operation.name"])?.toLowerCase();
  if (operation !== undefined && OPERATION_RUN_TYPES[operation]) return OPERATION_RUN_TYPES[operation];
  // A span reporting token usage is a model call even when it does not say so.
  return hasUsage ? "llm" : "chain";
}

/**
 * `gen_ai.prompt` / `gen_ai.completion` (or `input.value` / `output.value`) as run inputs/outputs:
 * a JSON object as is (the SDK sends JSON.stringify of the run's inputs), anything else under
 * `key`; indexed `gen_ai.prompt.{n}.role|content` become `messages`.
 */
function ioObject(value: AttributeValue | undefined, key: string, messages: JsonObject[]): JsonObject | undefined {
  let out: JsonObject | undefined;
  if (value !== undefined && value !== null) {
    let parsed: unknown = value;
    if (typeof value === "string") {
      try {
        parsed = JSON.parse(value);
      } catch {
        parsed = value;
      }
    }
    // Past the store's nesting limit the text is kept as text: nothing lost, nothing unreadable.
    if (tooDeepField({ [key]: parsed }) !== undefined) out = { [key]: value };
    else out = isJsonObject(parsed) ? parsed : { [key]: parsed };
  }
  if (messages.length > 0) out = { ...out, messages: isJsonObject(out) && Array.isArray(out.messages) ? out.messages : messages };
  return out;
}

function messagesFrom(a: Attributes, which: "prompt" | "completion"): JsonObject[] {
  const byIndex = new Map<number, JsonObject>();
  for (const [key, value] of Object.entries(a)) {
    const m = MESSAGE_ATTRIBUTE.exec(key);
    if (!m || m[1] !== which) continue;
    const index = Number(m[2]);
    const message = byIndex.get(index) ?? {};
    message[m[3] as string] = value;
    byIndex.set(index, message);
  }
  return [...byIndex.entries()].sort(([x], [y]) => x - y).map(([, message]) => message);
}

function usageFrom(a: Attributes): JsonObject | undefined {
  const usage: JsonObject = {};
  const fromSdk = stringAttr(a["langsmith.usage_metadata"]);
  if (fromSdk !== undefined) {
    try {
      const parsed: unknown = JSON.parse(fromSdk);
      if (isJsonObject(parsed)) Object.assign(usage, parsed);
    } catch {
      // Not JSON: the gen_ai.usage.* attributes below still count.
    }
  }
  for (const [attribute, field] of Object.entries(USAGE)) {
    const v = a[attribute];
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n === "number" && Number.isFinite(n) && usage[field] === undefined) usage[field] = n;
  }
  if (Object.keys(usage).length === 0) return undefined;
  if (usage.total_tokens === undefined && (typeof usage.input_tokens === "number" || typeof usage.output_tokens === "number")) {
    usage.total_tokens = (typeof usage.input_tokens === "number" ? usage.input_tokens : 0) + (typeof usage.output_tokens === "number" ? usage.output_tokens : 0);
  }
  return usage;
}

/** Status ERROR or an `exception` event means the run failed; the message says why. */
function errorOf(span: OtlpSpan): string | undefined {
  const exception = span.events.find((e) => e.name === "exception");
  if (span.status.code !== 2 && !exception) return undefined;
  const type = stringAttr(exception?.attributes["exception.type"]);
  const message = stringAttr(exception?.attributes["exception.message"]);
  const stack = stringAttr(exception?.attributes["exception.stacktrace"]);
  const described = type && message ? `${type}: ${message}` : message ?? type;
  const head = span.status.message || described || "span status ERROR";
  return stack ? `${head}\n\n${stack}` : head;
}

function tagsOf(v: AttributeValue | undefined): string[] {
  const items = Array.isArray(v) ? v.map((t) => stringAttr(t) ?? "") : (stringAttr(v) ?? "").split(",");
  return items.map((t) => t.trim()).filter((t) => t !== "");
}

function extraOf(span: OtlpSpan): JsonObject {
  const a = span.attributes;
  const metadata: JsonObject = {};
  const invocationParams: JsonObject = {};
  let runtime: JsonObject | undefined;
  for (const [key, value] of Object.entries(a)) {
    if (key.startsWith("langsmith.metadata.")) metadata[key.slice("langsmith.metadata.".length)] = value;
    else if (INVOCATION_PARAMS[key]) invocationParams[INVOCATION_PARAMS[key]] = value;
    else if (key === "langsmith.span.runtime") {
      try {
        const parsed: unknown = JSON.parse(String(value));
        if (isJsonObject(parsed)) runtime = parsed;
      } catch {
        // Not JSON: dropped like the SDK's other internal markers.
      }
    } else if (!key.startsWith("langsmith.") && !CONSUMED.has(key) && !MESSAGE_ATTRIBUTE.test(key)) metadata[key] = value;
  }
  if (invocationParams.model === undefined && a["gen_ai.response.model"] !== undefined) invocationParams.model = a["gen_ai.response.model"];
  const provider = stringAttr(a["gen_ai.system"]);
  if (provider !== undefined) metadata.ls_provider = provider;
  const service = span.resource["service.name"];
  if (typeof service === "string" && service !== "") metadata["service.name"] = service;
  const otel: JsonObject = {
    trace_id: span.traceId,
    span_id: span.spanId,
    kind: SPAN_KINDS[span.kind] ?? String(span.kind),
    status: STATUS_CODES[span.status.code] ?? String(span.status.code),
    scope: span.scope,
    resource: span.resource,
  };
  if (span.parentSpanId !== undefined) otel.parent_span_id = span.parentSpanId;
  const extra: JsonObject = { metadata, otel };
  if (Object.keys(invocationParams).length > 0) extra.invocation_params = invocationParams;
  if (runtime) extra.runtime = runtime;
  return extra;
}
