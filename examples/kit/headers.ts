/**
 * Validation of the two tracing headers a caller sends, before the langsmith
 * SDK sees them. Pure functions: no run is created here (propagator.ts does that).
 *
 *   const trace = parseTraceHeader(req.headersDistinct["langsmith-trace"]);
 *   // { kind: "absent" } | { kind: "valid", header: { dottedOrder, traceId, parentRunId } } | { kind: "invalid", reason }
 *   const baggage = sanitizeBaggage(req.headersDistinct["baggage"], {
 *     allowProjectOverride: false, allowReplicas: false, limits: DEFAULT_LIMITS, ownProject: "my-project",
 *   });
 *   // { kind: "valid", baggage: "langsmith-metadata=...", adjustments: [...] } | { kind: "invalid", reason }
 *
 * Why: in langsmith 0.12 `RunTree.fromHeaders` throws on bad percent-encoding
 * or bad JSON in `baggage`, accepts any `langsmith-trace` string as a parent
 * ("x" becomes a run id and a trace id), and lets the caller choose the project
 * and extra replicas the run is written to. Header values arrive as arrays
 * (node's `headersDistinct`): two `langsmith-trace` lines are two claims, and
 * neither is believed.
 */

export interface HeaderLimits {
  /** Longest accepted `langsmith-trace` value, in characters. */
  maxTraceHeaderLength: number;
  /** Most dotted-order segments (nesting depth of the caller's run). */
  maxTraceDepth: number;
  /** Largest accepted `baggage` (all headers together), in UTF-8 bytes; W3C suggests 8192. */
  maxBaggageBytes: number;
  /** Caller metadata entries kept; the rest are dropped. */
  maxMetadataEntries: number;
  /** Caller tags kept; the rest are dropped. */
  maxTags: number;
  /** Longest metadata key, value (as JSON), tag or project name kept. */
  maxValueLength: number;
  /** Replica projects kept when `allowReplicas` is on; each one is another write of every run in the trace. */
  maxReplicas: number;
}

export const DEFAULT_LIMITS: Readonly<HeaderLimits> = Object.freeze({
  maxTraceHeaderLength: 8192,
  maxTraceDepth: 128,
  maxBaggageBytes: 8192,
  maxMetadataEntries: 32,
  maxTags: 32,
  maxValueLength: 256,
  maxReplicas: 4,
});

/** Why an inbound context was not continued (the request or message still gets a run). */
export type InboundRejection =
  | "trace-header-duplicate"
  | "trace-header-too-long"
  | "trace-header-too-deep"
  | "trace-header-malformed"
  | "baggage-too-large"
  | "baggage-bad-encoding"
  | "baggage-bad-metadata"
  | "baggage-bad-replicas"
  | "baggage-duplicate-entry"
  | "sdk-rejected";

/** Parts of trusted baggage that were dropped while the trace was still continued. */
export type BaggageAdjustment =
  | "project-override-ignored"
  | "address-override-ignored"
  | "replicas-ignored"
  | "metadata-trimmed"
  | "tags-trimmed"
  | "replicas-trimmed";

export interface TraceHeader {
  /** The validated `langsmith-trace` value: the caller's run's dotted order. */
  dottedOrder: string;
  traceId: string;
  /** The caller's run, which becomes the parent of this service's run. */
  parentRunId: string;
}

export type TraceHeaderResult =
  | { kind: "absent" }
  | { kind: "valid"; header: TraceHeader }
  | { kind: "invalid"; reason: InboundRejection };

export type BaggageResult =
  | { kind: "valid"; baggage: string; adjustments: BaggageAdjustment[] }
  | { kind: "invalid"; reason: InboundRejection };

export interface BaggagePolicy {
  allowProjectOverride: boolean;
  allowReplicas: boolean;
  limits: HeaderLimits;
  /**
   * The project this service writes to. The SDK's toHeaders always names the
   * sender's project, so a caller naming this same one overrides nothing and
   * is not reported.
   */
  ownProject?: string;
}

/** One sentence per cause, for warnings: "langsmith-trace that is not a valid dotted order". */
export const CAUSES: Readonly<Record<InboundRejection | BaggageAdjustment, string>> = {
  "trace-header-duplicate": "more than one langsmith-trace header",
  "trace-header-too-long": "langsmith-trace longer than the limit",
  "trace-header-too-deep": "langsmith-trace with more segments than the limit",
  "trace-header-malformed": "langsmith-trace that is not a valid dotted order",
  "baggage-too-large": "baggage larger than the limit",
  "baggage-bad-encoding": "baggage with invalid percent-encoding",
  "baggage-bad-metadata": "baggage with langsmith-metadata that is not a JSON object",
  "baggage-bad-replicas": "baggage with langsmith-replicas that is not a JSON array of objects",
  "baggage-duplicate-entry": "baggage naming the same langsmith entry twice",
  "sdk-rejected": "tracing headers the langsmith SDK refused",
  "project-override-ignored": "baggage choosing the project (set allowProjectOverride to honour it)",
  "address-override-ignored": "baggage choosing the agent address (set allowProjectOverride to honour it)",
  "replicas-ignored": "baggage adding replicas (set allowReplicas to honour it)",
  "metadata-trimmed": "baggage metadata over the limits; the excess was dropped",
  "tags-trimmed": "baggage tags over the limits; the excess was dropped",
  "replicas-trimmed": "baggage replicas over the limit or carrying more than a project name; only project names were kept",
};

/**
 * Validates `langsmith-trace` before the SDK sees it. `RunTree.fromHeaders`
 * splits on "." and "Z" and takes whatever is there as ids, so "x" or
 * "Z../../etc" would become a parent run id and a trace id.
 */
export function parseTraceHeader(values: readonly string[] | undefined, limits: HeaderLimits = DEFAULT_LIMITS): TraceHeaderResult {
  if (values === undefined || values.length === 0) return { kind: "absent" };
  // Two values means two callers' claims (or a proxy appending its own): neither is the parent.
  if (values.length > 1) return { kind: "invalid", reason: "trace-header-duplicate" };
  const raw = (values[0] ?? "").trim();
  if (raw.length > limits.maxTraceHeaderLength) return { kind: "invalid", reason: "trace-header-too-long" };
  const segments = raw.split(".");
  if (segments.length > limits.maxTraceDepth) return { kind: "invalid", reason: "trace-header-too-deep" };
  // Run ids are compared and stored in lower case (as the SDKs write them), so
  // one written in capitals by another tracer is the same run, not a new one.
  const ids = new Set<string>();
  const normalized: string[] = [];
  for (const segment of segments) {
    const m = SEGMENT.exec(segment);
    if (m === null) return { kind: "invalid", reason: "trace-header-malformed" };
    const [y, mo, d, h, mi, s] = m.slice(2, 8).map(Number) as [number, number, number, number, number, number];
    const id = (m[8] as string).toLowerCase();
    if (!isRealUtcTime(y, mo, d, h, mi, s) || ids.has(id)) return { kind: "invalid", reason: "trace-header-malformed" };
    ids.add(id);
    normalized.push(`${m[1] as string}${id}`);
  }
  const order = [...ids];
  return {
    kind: "valid",
    header: { dottedOrder: normalized.join("."), traceId: order[0] as string, parentRunId: order[order.length - 1] as string },
  };
}

/**
 * Rebuilds `baggage` from the langsmith members a caller may set, validated.
 * Only the result goes to `RunTree.fromHeaders`, whose own parser would
 * - throw URIError on one bad escape anywhere, including in another vendor's
 *   member, since it decodes every member;
 * - throw SyntaxError on bad JSON in `langsmith-metadata`/`langsmith-replicas`;
 * - let `langsmith-project` / `langsmith-address` redirect the run and
 *   `langsmith-replicas` copy it into more projects.
 * Bad encoding or JSON rejects the whole context (a malformed header means a
 * caller that is not a well-behaved SDK); over-limit entries are just dropped.
 */
export function sanitizeBaggage(values: readonly string[] | undefined, policy: BaggagePolicy): BaggageResult {
  const adjustments = new Set<BaggageAdjustment>();
  if (values === undefined || values.length === 0) return { kind: "valid", baggage: "", adjustments: [] };
  // W3C baggage may arrive in several header lines; together they are one list.
  const raw = values.join(",");
  if (Buffer.byteLength(raw, "utf8") > policy.limits.maxBaggageBytes) return { kind: "invalid", reason: "baggage-too-large" };

  const seen = new Set<string>();
  const members: string[] = [];
  for (const member of raw.split(",")) {
    const eq = member.indexOf("=");
    if (eq < 0) continue;
    const key = member.slice(0, eq).trim();
    // Other vendors' members are not ours to judge, so they are neither decoded nor forwarded.
    if (!key.startsWith("langsmith-")) continue;
    if (seen.has(key)) return { kind: "invalid", reason: "baggage-duplicate-entry" };
    seen.add(key);

    if (key === "langsmith-project" || key === "langsmith-address") {
      if (!policy.allowProjectOverride) {
        const sameProject = key === "langsmith-project" && policy.ownProject !== undefined && safeDecode(member.slice(eq + 1).trim()) === policy.ownProject;
        if (!sameProject) adjustments.add(key === "langsmith-project" ? "project-override-ignored" : "address-override-ignored");
        continue;
      }
    } else if (key === "langsmith-replicas") {
      if (!policy.allowReplicas) {
        adjustments.add("replicas-ignored");
        continue;
      }
    } else if (key !== "langsmith-metadata" && key !== "langsmith-tags") {
      continue;
    }

    // W3C member properties (";k=v") carry nothing langsmith uses.
    const value = safeDecode(member.slice(eq + 1).split(";")[0]?.trim() ?? "");
    if (value === undefined) return { kind: "invalid", reason: "baggage-bad-encoding" };

    if (key === "langsmith-metadata") {
      const clean = sanitizeMetadata(parseJson(value), policy.limits);
      if (clean === undefined) return { kind: "invalid", reason: "baggage-bad-metadata" };
      if (clean.trimmed) adjustments.add("metadata-trimmed");
      if (Object.keys(clean.metadata).length > 0) members.push(`${key}=${encodeURIComponent(JSON.stringify(clean.metadata))}`);
    } else if (key === "langsmith-tags") {
      const clean = sanitizeTags(value, policy.limits);
      if (clean.trimmed) adjustments.add("tags-trimmed");
      if (clean.tags.length > 0) members.push(`${key}=${encodeURIComponent(clean.tags.join(","))}`);
    } else if (key === "langsmith-replicas") {
      const parsed = parseJson(value);
      if (!Array.isArray(parsed) || parsed.some((r) => typeof r !== "object" || r === null)) {
        return { kind: "invalid", reason: "baggage-bad-replicas" };
      }
      const clean = sanitizeReplicas(parsed as object[], policy.limits);
      if (clean.trimmed) adjustments.add("replicas-trimmed");
      if (clean.replicas.length > 0) members.push(`${key}=${encodeURIComponent(JSON.stringify(clean.replicas))}`);
    } else if (isPlainName(value, policy.limits)) {
      members.push(`${key}=${encodeURIComponent(value)}`);
    } else {
      adjustments.add(key === "langsmith-project" ? "project-override-ignored" : "address-override-ignored");
    }
  }
  return { kind: "valid", baggage: members.join(","), adjustments: [...adjustments] };
}

// One dotted-order segment as the SDKs write it: a UTC timestamp with
// microseconds, punctuation stripped, then the run id (a UUID).
// Example: 20250101T120000123456Z0193f1e2-7a6b-7c3d-8e9f-0123456789ab
const SEGMENT =
  /^((\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\d{6}Z)([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;

function isRealUtcTime(y: number, mo: number, d: number, h: number, mi: number, s: number): boolean {
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return (
    t.getUTCFullYear() === y &&
    t.getUTCMonth() === mo - 1 &&
    t.getUTCDate() === d &&
    t.getUTCHours() === h &&
    t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === s
  );
}

// Metadata keys the kit writes itself. A caller must not be able to pre-set
// them (a spoofed `untrusted_parent_trace_id` would survive when the receiver
// has no value of its own), and LANGSMITH_SERVICE must describe the service
// that emitted the run, not the one that called it.
const OWN_KEY = /^(?:http\.|trace\.|untrusted_)|^LANGSMITH_SERVICE$/;
// JSON.parse creates these as own properties; they are harmless when spread,
// but nothing legitimate sends them.
const PROTOTYPE_KEYS = new Set(["__proto__", "constructor", "prototype"]);
// eslint-disable-next-line no-control-regex -- control characters are exactly what is being rejected
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const NOT_JSON = Symbol("not JSON");

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return NOT_JSON;
  }
}

function jsonLength(value: unknown): number {
  return typeof value === "string" ? value.length : (JSON.stringify(value)?.length ?? Infinity);
}

function sanitizeMetadata(parsed: unknown, limits: HeaderLimits): { metadata: Record<string, unknown>; trimmed: boolean } | undefined {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const metadata: Record<string, unknown> = {};
  let kept = 0;
  let trimmed = false;
  for (const [key, value] of Object.entries(parsed)) {
    const acceptable =
      kept < limits.maxMetadataEntries &&
      key.length > 0 &&
      key.length <= limits.maxValueLength &&
      !PROTOTYPE_KEYS.has(key) &&
      !OWN_KEY.test(key) &&
      value !== undefined &&
      jsonLength(value) <= limits.maxValueLength;
    if (acceptable) {
      metadata[key] = value;
      kept += 1;
    } else {
      trimmed = true;
    }
  }
  return { metadata, trimmed };
}

function sanitizeTags(value: string, limits: HeaderLimits): { tags: string[]; trimmed: boolean } {
  const all = value.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
  const tags = [...new Set(all.filter((t) => t.length <= limits.maxValueLength && !CONTROL_CHARS.test(t)))].slice(0, limits.maxTags);
  return { tags, trimmed: tags.length !== all.length };
}

/**
 * The SDK accepts a replica as `["project", updates]` and spreads `updates` over
 * each copy's patch, and keeps `updates`, `reroot` and `primary` of an object
 * replica: a caller allowed to add copies could also rewrite their outputs,
 * error, extra or trace id. So each replica is rebuilt from its project name
 * alone (an entry without a valid one is dropped), duplicates are dropped, and
 * at most `maxReplicas` are kept, since each is another write of every run.
 */
function sanitizeReplicas(parsed: readonly object[], limits: HeaderLimits): { replicas: Array<{ projectName: string }>; trimmed: boolean } {
  const names = new Set<string>();
  let trimmed = false;
  for (const entry of parsed) {
    const name: unknown = Array.isArray(entry) ? entry[0] : (entry as { projectName?: unknown }).projectName;
    const valid = typeof name === "string" && isPlainName(name, limits);
    if (!valid || names.has(name) || names.size >= limits.maxReplicas || JSON.stringify(entry) !== JSON.stringify({ projectName: name })) {
      trimmed = true;
    }
    if (valid && names.size < limits.maxReplicas) names.add(name);
  }
  return { replicas: [...names].map((projectName) => ({ projectName })), trimmed };
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

function isPlainName(value: string, limits: HeaderLimits): boolean {
  return value.length > 0 && value.length <= limits.maxValueLength && !CONTROL_CHARS.test(value);
}
