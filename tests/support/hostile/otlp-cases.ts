// Generated hostile OTLP/HTTP exports to the trace server's `/otel/v1/traces`. Each case starts
// from valid ExportTraceServiceRequests that the OpenTelemetry SDK itself serializes (spans made
// by a BasicTracerProvider, encoded by @opentelemetry/otlp-transformer's protobuf or JSON
// serializer, with ids and times from the case so a seed reproduces the bytes), then mutates
// them: JSON nodes replaced, deleted, made huge or deeply nested; protobuf bytes edited; gzip
// corrupted or truncated; content types wrong or swapped. Use:
//   const verdict = await runOtlpCase(targets, c);
// Judged: no 5xx; a 200 is an ExportTraceServiceResponse, a refusal a 4xx google.rpc.Status with
// a message, both in the request's encoding; the valid spans of a request whose bytes are intact
// (bad spans in a resource of their own) are stored.
import { maxHeaderSize } from "node:http";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { ROOT_CONTEXT, trace, type Context, type Span } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import protobuf from "protobufjs";
import { spanIdToRunId } from "../../../setup/src/trace-server/otlp/mapping.js";
import { anyJsonArb, applyEdit, deepJson, hostileStringArb, hugeString, stringEditArb, type StringEdit } from "./arbitraries.js";
import { judgeStatus, type Verdict } from "./runner.js";
import type { Targets } from "./targets.js";
import { applicationAnswer, exchange, type RawRequest } from "./wire.js";

interface SpanSpec {
  name: string;
  /** Index of the parent among the earlier spans; -1 for a root. */
  parent: number;
  attributes: Record<string, string | number | boolean | string[]>;
  startMs: number;
  durationMs: number;
  error: boolean;
}

interface Batch {
  traceId: string;
  spanIds: string[];
  spans: SpanSpec[];
  service: string;
}

type JsonMutation =
  | { kind: "set"; path: number[]; value: unknown }
  | { kind: "delete"; path: number[] }
  | { kind: "huge"; path: number[]; size: number }
  | { kind: "deep"; path: number[]; depth: number }
  | { kind: "text"; edits: StringEdit[] };

export interface OtlpCase {
  format: "json" | "protobuf";
  good: Batch;
  bad: Batch;
  mutations: JsonMutation[];
  /** Protobuf bytes edited (protobuf only). */
  byteEdits: StringEdit[];
  contentType: "right" | "swapped" | string;
  gzip: "none" | "gzip" | "corrupt" | "truncated" | "labelled-only";
}

const hexArb = (bytes: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((a) => Buffer.from(a).toString("hex"));

// Keys whose values the trace server maps (a span kind, token counts) only in the spans to mutate: a good span must be valid.
const PLAIN_KEYS = ["gen_ai.prompt", "gen_ai.completion", "input.value", "langsmith.metadata.user"];
const MAPPED_KEYS = [...PLAIN_KEYS, "langsmith.span.kind", "gen_ai.usage.input_tokens", "langsmith.trace.name", "langsmith.span.parent_id"];

const batchArb = (keys: readonly string[]): fc.Arbitrary<Batch> => fc.integer({ min: 1, max: 6 }).chain((n) =>
  fc.record({
    traceId: hexArb(16).filter((h) => !/^0+$/.test(h)),
    spanIds: fc.uniqueArray(hexArb(8).filter((h) => !/^0+$/.test(h)), { minLength: n, maxLength: n }),
    spans: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.record({
          name: fc.string({ maxLength: 30 }),
          parent: i === 0 ? fc.constant(-1) : fc.integer({ min: 0, max: i - 1 }),
          attributes: fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 12 }).map((k) => `x.${k}`)), fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })), { maxKeys: 4 }),
          startMs: fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
          durationMs: fc.integer({ min: 0, max: 60_000 }),
          error: fc.boolean(),
        }),
      ),
    ),
    service: fc.string({ maxLength: 20 }),
  }),
);

const mutationArb: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), value: fc.oneof(anyJsonArb, hexArb(3), hexArb(20), fc.constantFrom("-1", "1e30", "18446744073709551616", "0", "")) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("huge" as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), size: fc.integer({ min: 10_000, max: 3_000_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deep" as const), path: fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), depth: fc.integer({ min: 100, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("text" as const), edits: fc.array(stringEditArb, { minLength: 1, maxLength: 3 }) }) },
);

export function otlpCaseArb(): fc.Arbitrary<OtlpCase> {
  return fc.record({
    format: fc.constantFrom<"json" | "protobuf">("json", "protobuf"),
    good: batchArb(PLAIN_KEYS),
    bad: batchArb(MAPPED_KEYS),
    mutations: fc.array(mutationArb, { maxLength: 3 }),
    byteEdits: fc.array(stringEditArb, { maxLength: 3 }),
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant("right") }, { weight: 1, arbitrary: fc.constant("swapped") }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom("text/plain", "", "application/json; charset=latin1", "application/x-protobuf; proto=x", "APPLICATION/JSON", "application/protobuf"), hostileStringArb) }),
    gzip: fc.constantFrom<OtlpCase["gzip"]>("none", "none", "none", "gzip", "corrupt", "truncated", "labelled-only"),
  });
}

/** The batch's spans, made by the OpenTelemetry SDK with the batch's ids and times. */
function readableSpans(batch: Batch): ReadableSpan[] {
  let next = 0;
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": batch.service }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    idGenerator: { generateTraceId: () => batch.traceId, generateSpanId: () => batch.spanIds[next++] ?? "00000000000000ff" },
  });
  const tracer = provider.getTracer("hostile-otlp");
  const made: Span[] = [];
  for (const spec of batch.spans) {
    const parent: Span | undefined = made[spec.parent];
    const ctx: Context = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    const span = tracer.startSpan(spec.name, { attributes: spec.attributes, startTime: spec.startMs }, ctx);
    if (spec.error) span.setStatus({ code: 2, message: "failed" });
    made.push(span);
  }
  for (const [i, span] of made.entries()) span.end((batch.spans[i]?.startMs ?? 0) + (batch.spans[i]?.durationMs ?? 0));
  return exporter.getFinishedSpans();
}

/** Walks `path` (each step an index into the keys or items there) and applies the mutation at the node reached. */
function mutateJson(root: unknown, m: Exclude<JsonMutation, { kind: "text" }>, deep: string[]): void {
  let node = root;
  for (const [i, step] of m.path.entries()) {
    if (typeof node !== "object" || node === null) return;
    const keys = Array.isArray(node) ? node.map((_, k) => k) : Object.keys(node);
    if (keys.length === 0) return;
    const key = keys[step % keys.length] as string | number;
    const container = node as Record<string | number, unknown>;
    if (i === m.path.length - 1 || typeof container[key] !== "object" || container[key] === null) {
      if (m.kind === "delete") {
        if (Array.isArray(container)) container.splice(Number(key), 1);
        else delete container[key];
      } else if (m.kind === "set") container[key] = m.value;
      else if (m.kind === "huge") container[key] = hugeString(m.size);
      else {
        container[key] = `__deep_${deep.length}__`;
        // Nested lists, or the AnyValue kvlists an attribute value nests in.
        deep.push(m.depth % 2 === 0 ? deepJson(m.depth, "array") : `${'{"kvlistValue":{"values":[{"key":"k","value":'.repeat(m.depth)}{"stringValue":"x"}${"}]}}".repeat(m.depth)}`);
      }
      return;
    }
    node = container[key];
  }
}

interface Built {
  body: Buffer;
  /** Whether the good spans' bytes went out untouched, so they must be stored. */
  intact: boolean;
}

function build(c: OtlpCase): Built {
  const good = readableSpans(c.good);
  const bad = readableSpans(c.bad);
  if (c.format === "protobuf") {
    // Two serialized requests concatenated are one request with both resources: protobuf merges repeated fields.
    const goodBytes = Buffer.from(ProtobufTraceSerializer.serializeRequest(good) ?? new Uint8Array());
    const badBytes = Buffer.from(ProtobufTraceSerializer.serializeRequest(bad) ?? new Uint8Array());
    const edited = c.byteEdits.reduce(applyEdit, badBytes.toString("latin1"));
    // An edit can change a length prefix and so swallow the good bytes before it: they count as intact only when nothing was edited.
    return { body: Buffer.concat([goodBytes, Buffer.from(edited, "latin1")]), intact: c.byteEdits.length === 0 };
  }
  const request = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest([...good, ...bad]) ?? new Uint8Array()).toString("utf8")) as { resourceSpans: unknown[] };
  // The serializer groups spans by resource: one per batch when the services differ, else one for both.
  const service = (r: unknown): unknown => (r as { resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> } }).resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue;
  const badResource = c.good.service === c.bad.service ? undefined : request.resourceSpans.find((r) => service(r) === c.bad.service);
  const deep: string[] = [];
  let intact = badResource !== undefined;
  for (const m of c.mutations) {
    if (m.kind === "text") continue;
    if (badResource === undefined) mutateJson(request, m, deep);
    else mutateJson(badResource, m, deep);
  }
  let text = JSON.stringify(request);
  deep.forEach((d, i) => {
    text = text.replace(`"__deep_${i}__"`, d);
  });
  for (const m of c.mutations) {
    if (m.kind !== "text") continue;
    text = m.edits.reduce(applyEdit, text);
    intact = false;
  }
  return { body: Buffer.from(text, "utf8"), intact };
}

const statusType = protobuf.Root.fromJSON({
  nested: { google: { nested: { rpc: { nested: { Status: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } } } } } } },
}).lookupType("google.rpc.Status");

export function describeOtlpCase(c: OtlpCase): string {
  return `${c.format} good=${c.good.spans.length} bad=${c.bad.spans.length} mutations=${JSON.stringify(c.mutations).slice(0, 300)} byteEdits=${JSON.stringify(c.byteEdits).slice(0, 200)} contentType=${JSON.stringify(c.contentType)} gzip=${c.gzip}`;
}

export async function runOtlpCase(targets: Targets, c: OtlpCase): Promise<Verdict> {
  const built = build(c);
  let body = built.body;
  let intact = built.intact;
  const right = c.format === "json" ? "application/json" : "application/x-protobuf";
  const contentType = c.contentType === "right" ? right : c.contentType === "swapped" ? (c.format === "json" ? "application/x-protobuf" : "application/json") : c.contentType;
  if (c.contentType !== "right") intact = false;
  const headers: Array<[string, string]> = [["x-api-key", "local"], ["content-type", contentType]];
  if (c.gzip !== "none") {
    headers.push(["content-encoding", "gzip"]);
    if (c.gzip !== "labelled-only") body = await promisify(zlib.gzip)(body);
    if (c.gzip === "corrupt") body = Buffer.from(body.map((b, i) => (i > 10 && i % 5 === 0 ? b ^ 0xa5 : b)));
    if (c.gzip === "truncated") body = body.subarray(0, Math.floor(body.length / 2));
    if (c.gzip !== "gzip") intact = false;
  }
  const request: RawRequest = { method: "POST", path: "/otel/v1/traces", headers, body };
  // An arbitrary content type can carry a CR or another control byte, which node refuses itself.
  const answer = await applicationAnswer(targets.traceServer.port, request, maxHeaderSize);
  if ("bucket" in answer) return answer;
  const answeredType = answer.headers["content-type"] ?? "";
  let message: string | undefined;
  try {
    if (answeredType.startsWith("application/x-protobuf")) {
      if (answer.status >= 400) message = (statusType.toObject(statusType.decode(answer.body)) as { message?: string }).message;
    } else {
      const json = JSON.parse(answer.body.toString("utf8")) as { message?: unknown; detail?: unknown };
      message = typeof json.message === "string" ? json.message : typeof json.detail === "string" ? json.detail : undefined;
    }
  } catch (err) {
    return { bucket: String(answer.status), violation: `answered ${answer.status} with a body that does not decode as ${answeredType}: ${String(err)}` };
  }
  const verdict = judgeStatus(answer.status, answer.status >= 400 ? message : "");
  if (verdict.violation) return verdict;
  // A request whose content type the server understood must be answered in that encoding.
  if ((contentType === "application/json" || contentType === "application/x-protobuf") && !answeredType.startsWith(contentType)) {
    return { ...verdict, violation: `a ${contentType} request answered in ${answeredType}` };
  }
  if (intact) {
    if (answer.status !== 200) return { ...verdict, violation: `a request whose valid resource was intact was refused whole (${answer.status}: ${message ?? ""})` };
    for (const spanId of c.good.spanIds) {
      const stored = await exchange(targets.traceServer.port, { method: "GET", path: `/runs/${spanIdToRunId(spanId)}`, headers: [["x-api-key", "local"]] });
      if (stored.kind !== "answered" || stored.status !== 200) return { ...verdict, violation: `valid span ${spanId} sent beside bad ones was not stored` };
    }
    return { ...verdict, verified: c.good.spanIds.length };
  }
  return verdict;
}
