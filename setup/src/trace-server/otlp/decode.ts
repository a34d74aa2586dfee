// OTLP/HTTP trace export requests (protobuf or JSON) decoded into plain spans.
//
//   const format = otlpFormat(req.headers["content-type"]);   // 415 for anything else
//   const { spans, invalid } = decodeExportRequest(body, format); // 400 if the body is not a request
//
// Protobuf is decoded by the protobufjs root that the OpenTelemetry project generates from its
// official protos (shipped by @opentelemetry/otlp-transformer up to 0.216; later releases hand-write
// an encoder and cannot decode). JSON follows the OTLP JSON mapping (lowerCamelCase names, trace and
// span ids as hex, 64-bit integers as strings or numbers). Both become the same object shape and go
// through one walker, so a span that breaks a rule (an id of the wrong length, a nesting bomb in an
// attribute) is set aside with a reason while the rest of the request is kept.
import otlpRoot from "@opentelemetry/otlp-transformer/build/src/generated/root.js";
import { HttpError } from "../body.js";
import { MAX_NESTING } from "../wire.js";

export type OtlpFormat = "protobuf" | "json";

export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };
export type Attributes = Record<string, AttributeValue>;

export interface OtlpEvent {
  name: string;
  timeNanos: bigint;
  attributes: Attributes;
}

/** One span with its resource and scope, ids as lowercase hex. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a span without a parent. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNanos: bigint;
  endNanos: bigint | undefined;
  attributes: Attributes;
  events: OtlpEvent[];
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Attributes;
  scope: { name: string; version: string };
  /** Position in the request, for messages: `resourceSpans[0].scopeSpans[1].spans[2]`. */
  where: string;
}

/** A span that could not be decoded; the other spans of the request are unaffected. */
export interface InvalidSpan {
  where: string;
  message: string;
  traceId: string | undefined;
  spanId: string | undefined;
}

export interface DecodedRequest {
  spans: OtlpSpan[];
  invalid: InvalidSpan[];
}

export interface GeneratedMessage {
  decode(data: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(value: object): object;
  toObject(message: object, options: { longs: StringConstructor; bytes: StringConstructor; enums: NumberConstructor; arrays: boolean; defaults: boolean }): Record<string, unknown>;
}

const traceService = (otlpRoot as unknown as { opentelemetry?: { proto?: { collector?: { trace?: { v1?: Record<string, GeneratedMessage | undefined> } } } } }).opentelemetry?.proto?.collector?.trace?.v1;
/** The generated ExportTraceServiceRequest (tests build protobuf requests with it). */
export const requestType = traceService?.ExportTraceServiceRequest as GeneratedMessage;
/** The generated ExportTraceServiceResponse, which answers are encoded with. */
export const responseType = traceService?.ExportTraceServiceResponse as GeneratedMessage;
if (!traceService?.ExportTraceServiceRequest || !traceService.ExportTraceServiceResponse) {
  throw new Error("@opentelemetry/otlp-transformer no longer ships the generated trace protos; pin the version in setup/package.json");
}

/** Which OTLP encoding a Content-Type names; anything else is refused with 415. */
export function otlpFormat(contentType: string | undefined): OtlpFormat {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType === "application/x-protobuf" || mediaType === "application/protobuf") return "protobuf";
  if (mediaType === "application/json") return "json";
  throw new HttpError(
    415,
    `unsupported Content-Type ${JSON.stringify(contentType ?? "")}: OTLP/HTTP takes application/x-protobuf or application/json`,
  );
}

/** Decode an ExportTraceServiceRequest; a body that is not one at all is a 400. */
export function decodeExportRequest(body: Uint8Array, format: OtlpFormat): DecodedRequest {
  let plain: unknown;
  if (format === "protobuf") {
    try {
      const message = requestType.decode(body);
      plain = requestType.toObject(message, { longs: String, bytes: String, enums: Number, arrays: true, defaults: false });
    } catch (e) {
      throw new HttpError(400, `request body is not an OTLP ExportTraceServiceRequest in protobuf: ${(e as Error).message}`);
    }
  } else {
    if (body.length === 0) throw new HttpError(400, "request body is empty; expected an OTLP ExportTraceServiceRequest in JSON");
    try {
      plain = JSON.parse(Buffer.from(body).toString("utf8"));
    } catch (e) {
      throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
    }
  }
  return walkRequest(plain, format === "protobuf" ? "base64" : "hex");
}

/**
 * Far more spans than an exporter sends at once (the OpenTelemetry SDK's BatchSpanProcessor sends
 * at most 512), few enough that one request cannot hold the single-threaded server: a 19 MB
 * request of 362,235 spans took 34 s to ingest, 10,000 take about a second.
 */
export const MAX_SPANS_PER_REQUEST = 10_000;

/** Spans in the request, counted before any is walked; malformed levels count as none (they are refused later). */
function countSpans(resourceSpans: readonly unknown[]): number {
  let count = 0;
  for (const rs of resourceSpans) {
    if (!isPlain(rs) || !Array.isArray(rs.scopeSpans)) continue;
    for (const ss of rs.scopeSpans) if (isPlain(ss) && Array.isArray(ss.spans)) count += ss.spans.length;
  }
  return count;
}

class SpanError extends Error {}

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new SpanError(`${where} must be a list`);
  return value;
}

function text(value: unknown, where: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw new SpanError(`${where} must be a string`);
  return value;
}

function integer(value: unknown, where: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
  throw new SpanError(`${where} must be an integer`);
}

function nanos(value: unknown, where: string): bigint | undefined {
  if (value === undefined || value === null || value === "" || value === "0" || value === 0) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return BigInt(value);
  if (typeof value === "string" && /^\d{1,20}$/.test(value)) return BigInt(value);
  throw new SpanError(`${where} must be nanoseconds since the epoch (a decimal string or integer), got ${quoted(value)}`);
}

/**
 * A short description of a value sent where another was expected, for a rejection message. Never
 * JSON.stringify of the value itself: JSON.parse takes any depth, and stringifying a value nested
 * 10,000 levels overflows the stack, which refused the whole request instead of this one span.
 */
function quoted(value: unknown): string {
  if (typeof value === "string") return value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}... (${value.length} characters)` : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return Array.isArray(value) ? "a list" : "an object";
}

/** An id as lowercase hex; empty (no parent) gives undefined. */
function id(value: unknown, bytes: number, encoding: "hex" | "base64", where: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new SpanError(`${where} must be a string`);
  const hex = encoding === "hex" ? value.toLowerCase() : Buffer.from(value, "base64").toString("hex");
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(hex)) {
    throw new SpanError(`${where} must be ${bytes} bytes${encoding === "hex" ? ` (${bytes * 2} hex digits)` : ""}, got ${JSON.stringify(value.slice(0, 80))}`);
  }
  if (/^0+$/.test(hex)) throw new SpanError(`${where} is all zeros, which OTLP defines as invalid`);
  return hex;
}

/** Attribute nesting allowed; the mapping nests attributes a few levels down (extra.otel.resource, events[].kwargs). */
const MAX_ATTRIBUTE_NESTING = MAX_NESTING - 8;

function anyValue(value: unknown, where: string, depth: number): AttributeValue {
  if (depth > MAX_ATTRIBUTE_NESTING) throw new SpanError(`${where} nests arrays/maps deeper than ${MAX_ATTRIBUTE_NESTING} levels`);
  if (!isPlain(value)) return null;
  if (typeof value.stringValue === "string") return value.stringValue;
  if (typeof value.boolValue === "boolean") return value.boolValue;
  if (value.intValue !== undefined && value.intValue !== null) {
    const n = typeof value.intValue === "string" ? Number(value.intValue) : value.intValue;
    if (typeof n !== "number" || !Number.isInteger(n)) throw new SpanError(`${where}.intValue must be an integer`);
    // Beyond 2^53 a number would silently change the value; the decimal text keeps it.
    return Number.isSafeInteger(n) ? n : String(value.intValue);
  }
  if (value.doubleValue !== undefined && value.doubleValue !== null) {
    const n = Number(value.doubleValue);
    if (Number.isNaN(n) && value.doubleValue !== "NaN") throw new SpanError(`${where}.doubleValue must be a number`);
    return Number.isFinite(n) ? n : String(value.doubleValue);
  }
  if (isPlain(value.arrayValue)) {
    return list(value.arrayValue.values, `${where}.arrayValue.values`).map((v, i) => anyValue(v, `${where}.arrayValue.values[${i}]`, depth + 1));
  }
  if (isPlain(value.kvlistValue)) {
    return keyValues(value.kvlistValue.values, `${where}.kvlistValue.values`, depth + 1);
  }
  if (typeof value.bytesValue === "string") return value.bytesValue;
  return null;
}

function keyValues(values: unknown, where: string, depth = 0): Attributes {
  const out: Attributes = Object.create(null) as Attributes;
  list(values, where).forEach((kv, i) => {
    if (!isPlain(kv)) throw new SpanError(`${where}[${i}] must be an object`);
    const key = text(kv.key, `${where}[${i}].key`);
    out[key] = anyValue(kv.value, `${where}[${i}].value`, depth);
  });
  return out;
}

function walkRequest(plain: unknown, idEncoding: "hex" | "base64"): DecodedRequest {
  if (!isPlain(plain)) throw new HttpError(400, "an OTLP trace export request must be a JSON object with resourceSpans");
  const resourceSpans = plain.resourceSpans;
  if (resourceSpans !== undefined && resourceSpans !== null && !Array.isArray(resourceSpans)) throw new HttpError(400, "resourceSpans must be a list");
  const count = countSpans(resourceSpans ?? []);
  if (count > MAX_SPANS_PER_REQUEST) {
    throw new HttpError(413, `the request holds ${count} spans, over the limit of ${MAX_SPANS_PER_REQUEST} per request; export in smaller batches (the OpenTelemetry SDK's default is 512)`);
  }
  const out: DecodedRequest = { spans: [], invalid: [] };
  (resourceSpans ?? []).forEach((rs: unknown, r: number) => {
    const rsWhere = `resourceSpans[${r}]`;
    let resource: Attributes;
    let scopeSpans: unknown[];
    try {
      if (!isPlain(rs)) throw new SpanError(`${rsWhere} must be an object`);
      resource = keyValues(isPlain(rs.resource) ? rs.resource.attributes : undefined, `${rsWhere}.resource.attributes`);
      scopeSpans = list(rs.scopeSpans, `${rsWhere}.scopeSpans`);
    } catch (e) {
      if (!(e instanceof SpanError)) throw e;
      out.invalid.push({ where: rsWhere, message: `all spans of ${rsWhere} dropped: ${e.message}`, traceId: undefined, spanId: undefined });
      return;
    }
    scopeSpans.forEach((ss, s) => {
      const ssWhere = `${rsWhere}.scopeSpans[${s}]`;
      if (!isPlain(ss)) {
        out.invalid.push({ where: ssWhere, message: `${ssWhere} must be an object`, traceId: undefined, spanId: undefined });
        return;
      }
      const scopeObject = isPlain(ss.scope) ? ss.scope : {};
      const scope = { name: typeof scopeObject.name === "string" ? scopeObject.name : "", version: typeof scopeObject.version === "string" ? scopeObject.version : "" };
      let spans: unknown[];
      try {
        spans = list(ss.spans, `${ssWhere}.spans`);
      } catch (e) {
        out.invalid.push({ where: ssWhere, message: (e as Error).message, traceId: undefined, spanId: undefined });
        return;
      }
      spans.forEach((span, i) => {
        const where = `${ssWhere}.spans[${i}]`;
        try {
          out.spans.push(walkSpan(span, where, resource, scope, idEncoding));
        } catch (e) {
          if (!(e instanceof SpanError)) throw e;
          const raw = isPlain(span) ? span : {};
          out.invalid.push({ where, message: `${where}: ${e.message}`, traceId: safeId(raw.traceId, 16, idEncoding), spanId: safeId(raw.spanId, 8, idEncoding) });
        }
      });
    });
  });
  return out;
}

function safeId(value: unknown, bytes: number, encoding: "hex" | "base64"): string | undefined {
  try {
    return id(value, bytes, encoding, "id");
  } catch {
    return undefined;
  }
}

function walkSpan(span: unknown, where: string, resource: Attributes, scope: OtlpSpan["scope"], idEncoding: "hex" | "base64"): OtlpSpan {
  if (!isPlain(span)) throw new SpanError("must be an object");
  const traceId = id(span.traceId, 16, idEncoding, "traceId");
  const spanId = id(span.spanId, 8, idEncoding, "spanId");
  if (traceId === undefined) throw new SpanError("traceId is required");
  if (spanId === undefined) throw new SpanError("spanId is required");
  const startNanos = nanos(span.startTimeUnixNano, "startTimeUnixNano");
  if (startNanos === undefined) throw new SpanError("startTimeUnixNano is required");
  const status = isPlain(span.status) ? span.status : {};
  return {
    traceId,
    spanId,
    parentSpanId: id(span.parentSpanId, 8, idEncoding, "parentSpanId"),
    name: text(span.name, "name"),
    kind: integer(span.kind, "kind"),
    startNanos,
    endNanos: nanos(span.endTimeUnixNano, "endTimeUnixNano"),
    attributes: keyValues(span.attributes, "attributes"),
    events: list(span.events, "events").map((event, i) => {
      if (!isPlain(event)) throw new SpanError(`events[${i}] must be an object`);
      return {
        name: text(event.name, `events[${i}].name`),
        timeNanos: nanos(event.timeUnixNano, `events[${i}].timeUnixNano`) ?? startNanos,
        attributes: keyValues(event.attributes, `events[${i}].attributes`),
      };
    }),
    status: { code: integer(status.code, "status.code"), message: text(status.message, "status.message") },
    resource,
    scope,
    where,
  };
}
