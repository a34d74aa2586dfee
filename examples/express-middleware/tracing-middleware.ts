/**
 * LangSmith tracing for express 5: the JS counterpart of the Python SDK's
 * `TracingMiddleware`. Copy this one file into your service.
 *
 *   app.use(langsmithTracing({ trust: "edge" }));   // first, before body parsers and routes
 *   app.post("/chat", handler);                       // traceable() calls nest under the request
 *
 * For every request it creates one "server" run (`POST /chat`), either as the
 * child of a trusted caller's run or as a fresh root, keeps it current for the
 * request's lifetime (so `traceable` functions and `getCurrentRunTree()` nest
 * under it), puts its trace id in the `x-trace-id` response header and ends it
 * with the status code, matched route and error, also when the client hangs up.
 * `tracedFetch` / `injectTraceHeaders` carry the context to the next service.
 *
 * Why a file and not three lines of `RunTree.fromHeaders`: in langsmith 0.12
 * that call throws on bad percent-encoding or bad JSON in `baggage`, accepts any
 * `langsmith-trace` string as a parent, and lets the caller choose the project
 * and extra replicas the run is written to. Everything that reaches it here has
 * been validated and filtered first, and the call is still wrapped.
 *
 * The matched route pattern and thrown errors come from the router's
 * `express.router.request` diagnostics channel (router 2.3+, which express 5
 * installs by default). With an older router the run still ends, marked as an
 * error from its 5xx status, just without the message and stack.
 *
 * Imports: express types, langsmith and node built-ins only.
 */
import { subscribe } from "node:diagnostics_channel";
import type {
  NextFunction,
  Request as ExpressRequest,
  RequestHandler,
  Response as ExpressResponse,
} from "express";
import type { Client } from "langsmith";
import { RunTree, isRunTree } from "langsmith/run_trees";
// Import these from "langsmith/traceable", not "langsmith/singletons/traceable":
// loading traceable.js is what installs the SDK's AsyncLocalStorage. Without it
// the singleton store is a no-op and withRunTree silently keeps no context.
import { getCurrentRunTree, withRunTree } from "langsmith/traceable";

/**
 * Whose tracing headers to believe.
 * - "edge": public traffic. Inbound headers never become the parent; the
 *   request starts a new trace and the caller's claim is kept as metadata.
 * - "mesh": traffic from your own services. Valid headers are continued.
 * - a function: decide per request (say, by a verified mTLS identity or an
 *   internal network interface). Returning true means trusted. It should be
 *   cheap and must not read the body; if it throws, the request is untrusted.
 */
export type TrustPolicy = "edge" | "mesh" | ((req: ExpressRequest) => boolean);

export interface TracingLogger {
  warn(message: string): void;
}

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

export interface LangSmithTracingOptions {
  /** Default "edge": a service that forgets to choose must not be steerable from outside. */
  trust?: TrustPolicy;
  /** Let a trusted caller's baggage pick the project (or agent address) the run goes to. Default false. */
  allowProjectOverride?: boolean;
  /** Let a trusted caller's baggage add `langsmith-replicas` (extra projects written to). Default false. */
  allowReplicas?: boolean;
  limits?: Partial<HeaderLimits>;
  /** Recorded as metadata `LANGSMITH_SERVICE` on this service's runs. Default: the env var of that name. */
  service?: string;
  /** Project for runs this service starts. Default: LANGSMITH_PROJECT, as in the SDK. */
  projectName?: string;
  /** Client to write runs with. Default: the SDK's shared client (configured from env). */
  client?: Client;
  /** Force tracing on or off. Default: LANGSMITH_TRACING / LANGSMITH_TRACING_V2 (and LANGCHAIN_ forms), read per request. */
  enabled?: boolean;
  /** Added to every server run (and inherited by its children). */
  metadata?: Record<string, string | number | boolean>;
  tags?: readonly string[];
  /**
   * Request headers copied into the run's inputs. Credential-looking headers
   * (authorization, cookies, api keys, tokens) are never copied, even if listed.
   */
  recordHeaders?: readonly string[];
  /** Run name. Default: `${method} ${route}`, with the matched route pattern once known. */
  runName?: (req: ExpressRequest) => string;
  /** Response header that carries the trace id; false to not send one. Default "x-trace-id". */
  traceIdHeader?: string | false;
  /** Where warnings go; each cause is reported once per middleware instance. Default: console. */
  logger?: TracingLogger;
  /**
   * Called after the run's final update is queued: metrics, logs. Without
   * `flushBeforeEnd` it runs once the response has gone out, too late to
   * flush on a platform that freezes the process then.
   */
  onRunEnd?: (run: RunTree, req: ExpressRequest, res: ExpressResponse) => void | Promise<void>;
  /**
   * For serverless platforms that freeze the process once the response is
   * complete: when the handler ends the response, the run is ended and its
   * client's queue sent (waiting at most `timeoutMs`) before the response's
   * last bytes go out. Every response is delayed by that flush. Off by default.
   */
  flushBeforeEnd?: { timeoutMs: number };
}

/** Why an inbound context was not continued (the request still gets a trace). */
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
  /** The caller's run, which becomes this request's parent. */
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

const TRACE_HEADER = "langsmith-trace";
const BAGGAGE_HEADER = "baggage";

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

// Metadata keys this middleware writes itself. A caller must not be able to
// pre-set them (a spoofed `untrusted_parent_trace_id` would survive when the
// middleware has no value of its own), and LANGSMITH_SERVICE must describe the
// service that emitted the run, not the one that called it.
const OWN_KEY = /^(?:http\.|trace\.|untrusted_)|^LANGSMITH_SERVICE$/;
// JSON.parse creates these as own properties; they are harmless when spread,
// but nothing legitimate sends them.
const PROTOTYPE_KEYS = new Set(["__proto__", "constructor", "prototype"]);
// eslint-disable-next-line no-control-regex -- control characters are exactly what is being rejected
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

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

/**
 * `RunTree.fromHeaders` on a context that `parseTraceHeader` and
 * `sanitizeBaggage` already accepted, for any carrier (HTTP headers, queue
 * message metadata). `undefined` when the SDK still refuses it: it must never
 * throw into the request or job that carried it.
 */
export function parentFromValidatedContext(
  dottedOrder: string,
  baggage: string | undefined,
  options: { client?: Client; projectName?: string } = {},
): RunTree | undefined {
  try {
    return RunTree.fromHeaders(
      { [TRACE_HEADER]: dottedOrder, ...(baggage ? { [BAGGAGE_HEADER]: baggage } : {}) },
      { client: options.client, project_name: options.projectName, tracingEnabled: true },
    );
  } catch {
    return undefined;
  }
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
    const encoded = member.slice(eq + 1).split(";")[0]?.trim() ?? "";
    let value: string;
    try {
      value = decodeURIComponent(encoded);
    } catch {
      return { kind: "invalid", reason: "baggage-bad-encoding" };
    }

    if (key === "langsmith-metadata") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        return { kind: "invalid", reason: "baggage-bad-metadata" };
      }
      const clean = sanitizeMetadata(parsed, policy.limits);
      if (clean === undefined) return { kind: "invalid", reason: "baggage-bad-metadata" };
      if (clean.trimmed) adjustments.add("metadata-trimmed");
      if (Object.keys(clean.metadata).length > 0) members.push(`${key}=${encodeURIComponent(JSON.stringify(clean.metadata))}`);
    } else if (key === "langsmith-tags") {
      const clean = sanitizeTags(value, policy.limits);
      if (clean.trimmed) adjustments.add("tags-trimmed");
      if (clean.tags.length > 0) members.push(`${key}=${encodeURIComponent(clean.tags.join(","))}`);
    } else if (key === "langsmith-replicas") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        return { kind: "invalid", reason: "baggage-bad-replicas" };
      }
      if (!Array.isArray(parsed) || parsed.some((r) => typeof r !== "object" || r === null)) {
        return { kind: "invalid", reason: "baggage-bad-replicas" };
      }
      const clean = sanitizeReplicas(parsed, policy.limits);
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

/** How this request's run relates to what the caller sent; recorded as run metadata. */
export interface InboundDecision {
  inbound: "none" | "continued" | "restarted";
  reason?: "untrusted-caller" | InboundRejection;
  /** At the edge: the ids the caller claimed, validated as UUIDs, never followed. */
  claimed?: TraceHeader;
  adjustments: BaggageAdjustment[];
}

interface Settings {
  trust: TrustPolicy;
  policy: BaggagePolicy;
  service: string | undefined;
  projectName: string | undefined;
  client: Client | undefined;
  metadata: Record<string, string | number | boolean>;
  tags: string[];
  recordHeaders: string[];
  runName: ((req: ExpressRequest) => string) | undefined;
  traceIdHeader: string | false;
  onRunEnd: LangSmithTracingOptions["onRunEnd"];
  flushBeforeEnd: LangSmithTracingOptions["flushBeforeEnd"];
}

const DEFAULT_RECORDED_HEADERS = ["user-agent", "content-type", "content-length", "accept", "x-request-id"];
const SECRET_HEADER = /auth|cookie|token|secret|key|session|password|signature|^langsmith-trace$|^baggage$/i;
const MAX_PATH_LENGTH = 512;

// Per request, without touching the request object's shape.
const requestRuns = new WeakMap<ExpressRequest, RunTree>();
const requestErrors = new WeakMap<ExpressRequest, string>();
const requestRoutes = new WeakMap<ExpressRequest, string>();

/** The SDK's default project (langsmith/lib/utils/addressing.js), for runs that name none. */
function envProject(): string {
  return process.env.LANGSMITH_PROJECT || process.env.LANGCHAIN_PROJECT || process.env.LANGCHAIN_SESSION || "default";
}

/** The SDK's own rule (langsmith/lib/env.js), so this middleware and `traceable` agree. */
function tracingEnabledFromEnv(): boolean {
  const read = (name: string): string | undefined => process.env[`LANGSMITH_${name}`] || process.env[`LANGCHAIN_${name}`];
  return read("TRACING_V2") === "true" || read("TRACING") === "true";
}

function bounded(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}...`;
}

function requestPath(req: ExpressRequest): string {
  // The query string is left out: it is where tokens and personal data tend to be.
  return bounded(req.originalUrl.split("?")[0] ?? "/", MAX_PATH_LENGTH);
}

function routePattern(path: unknown): string | undefined {
  if (typeof path === "string") return path;
  return Array.isArray(path) ? path.map(String).join("|") : undefined;
}

/** The route handling this request ("/api/users/:id"), with the prefix of the router it is mounted under. */
function currentRoute(req: ExpressRequest): string | undefined {
  const route: unknown = req.route;
  if (typeof route !== "object" || route === null || !("path" in route)) return undefined;
  const pattern = routePattern(route.path);
  return pattern === undefined ? undefined : bounded(`${req.baseUrl ?? ""}${pattern}`, MAX_PATH_LENGTH);
}

function isTracedRequest(message: unknown): message is { req: ExpressRequest; route?: unknown; error?: unknown } {
  return typeof message === "object" && message !== null && "req" in message && requestRuns.has(message.req as ExpressRequest);
}

let routerObserved = false;

/**
 * Reads route and errors from the router's diagnostics channel. Looking at
 * `req.route` when the response finishes is not enough: when an error leaves
 * a mounted router, the router restores `req.baseUrl` and "/api/boom" reads as
 * "/boom". And errors never come back through this middleware's `next`.
 */
function observeRouter(): void {
  if (routerObserved) return;
  routerObserved = true;
  subscribe("tracing:express.router.request:start", (message) => {
    // Route handlers run with req.route set to their route; middleware does not.
    if (!isTracedRequest(message)) return;
    const route: unknown = message.req.route;
    if (typeof route === "object" && route !== null && "path" in route && route.path === message.route) {
      const matched = currentRoute(message.req);
      if (matched !== undefined) requestRoutes.set(message.req, matched);
    }
  });
  subscribe("tracing:express.router.request:error", (message) => {
    // Published once, where the error originated; the first one is the cause.
    if (isTracedRequest(message) && !requestErrors.has(message.req)) requestErrors.set(message.req, describeError(message.error));
  });
}

function recordedHeaders(req: ExpressRequest, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const lower = name.toLowerCase();
    if (SECRET_HEADER.test(lower)) continue;
    const value = req.headers[lower];
    if (value !== undefined) out[lower] = bounded(Array.isArray(value) ? value.join(", ") : value, DEFAULT_LIMITS.maxValueLength);
  }
  return out;
}

function describeError(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return bounded(text, 4096);
}

function isTrusted(req: ExpressRequest, trust: TrustPolicy, warn: (cause: string, message: string) => void): boolean {
  if (trust === "edge") return false;
  if (trust === "mesh") return true;
  try {
    return trust(req) === true;
  } catch {
    warn("trust-threw", "The trust policy function threw; the request was treated as untrusted.");
    return false;
  }
}

const WARNINGS: Record<InboundRejection | BaggageAdjustment, string> = {
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

interface Started {
  run: RunTree;
  decision: InboundDecision;
}

function startServerRun(req: ExpressRequest, settings: Settings, warn: (cause: string, message: string) => void): Started {
  const name = settings.runName ? settings.runName(req) : `${req.method} ${requestPath(req)}`;
  const metadata: Record<string, unknown> = { ...settings.metadata };
  if (settings.service) metadata.LANGSMITH_SERVICE = settings.service;
  const inputs = { method: req.method, path: requestPath(req), headers: recordedHeaders(req, settings.recordHeaders) };
  const runConfig = { name, run_type: "chain", inputs, metadata };
  const root = (decision: InboundDecision): Started => ({
    run: new RunTree({
      ...runConfig,
      tags: [...settings.tags],
      client: settings.client,
      project_name: settings.projectName,
      tracingEnabled: true,
    }),
    decision,
  });

  const headers = req.headersDistinct;
  const trace = parseTraceHeader(headers[TRACE_HEADER], settings.policy.limits);
  if (trace.kind === "absent") return root({ inbound: "none", adjustments: [] });

  if (!isTrusted(req, settings.trust, warn)) {
    // Not a warning: browsers and partners sending headers to a public edge is normal.
    return root({
      inbound: "restarted",
      reason: "untrusted-caller",
      claimed: trace.kind === "valid" ? trace.header : undefined,
      adjustments: [],
    });
  }
  if (trace.kind === "invalid") {
    warn(trace.reason, `Started a new trace instead of continuing ${WARNINGS[trace.reason]}.`);
    return root({ inbound: "restarted", reason: trace.reason, adjustments: [] });
  }

  const baggage = sanitizeBaggage(headers[BAGGAGE_HEADER], { ...settings.policy, ownProject: settings.projectName ?? envProject() });
  if (baggage.kind === "invalid") {
    warn(baggage.reason, `Started a new trace instead of continuing one with ${WARNINGS[baggage.reason]}.`);
    return root({ inbound: "restarted", reason: baggage.reason, adjustments: [] });
  }
  for (const adjustment of baggage.adjustments) warn(adjustment, `Continued a trace but ignored ${WARNINGS[adjustment]}.`);

  const parent = parentFromValidatedContext(trace.header.dottedOrder, baggage.baggage, settings);
  if (parent === undefined) {
    warn("sdk-rejected", `Started a new trace instead of continuing ${WARNINGS["sdk-rejected"]}.`);
    return root({ inbound: "restarted", reason: "sdk-rejected", adjustments: baggage.adjustments });
  }
  // createChild does not inherit tags, so the caller's (already filtered) baggage
  // tags would otherwise stay on the synthetic parent, which is never sent.
  const run = parent.createChild({ ...runConfig, tags: [...new Set([...(parent.tags ?? []), ...settings.tags])] });
  return { run, decision: { inbound: "continued", adjustments: baggage.adjustments } };
}

function decisionMetadata(decision: InboundDecision): Record<string, string> {
  const out: Record<string, string> = { "trace.inbound": decision.inbound };
  if (decision.reason) out["trace.inbound_reason"] = decision.reason;
  if (decision.adjustments.length > 0) out["trace.baggage_adjusted"] = decision.adjustments.join(",");
  if (decision.claimed) {
    out.untrusted_parent_trace_id = decision.claimed.traceId;
    out.untrusted_parent_run_id = decision.claimed.parentRunId;
  }
  return out;
}

/**
 * The middleware. Register it before body parsers and routes so every request,
 * including rejected ones, gets a run and an `x-trace-id`.
 */
export function langsmithTracing(options: LangSmithTracingOptions = {}): RequestHandler {
  const limits: HeaderLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const settings: Settings = {
    trust: options.trust ?? "edge",
    policy: { allowProjectOverride: options.allowProjectOverride ?? false, allowReplicas: options.allowReplicas ?? false, limits },
    service: options.service ?? process.env.LANGSMITH_SERVICE,
    projectName: options.projectName,
    client: options.client,
    metadata: { ...options.metadata },
    tags: [...(options.tags ?? [])],
    recordHeaders: [...(options.recordHeaders ?? DEFAULT_RECORDED_HEADERS)],
    runName: options.runName,
    traceIdHeader: options.traceIdHeader ?? "x-trace-id",
    onRunEnd: options.onRunEnd,
    flushBeforeEnd: options.flushBeforeEnd,
  };
  if (options.flushBeforeEnd !== undefined && !(Number.isFinite(options.flushBeforeEnd.timeoutMs) && options.flushBeforeEnd.timeoutMs >= 0)) {
    throw new RangeError(`langsmithTracing: flushBeforeEnd.timeoutMs must be a finite number >= 0, got ${options.flushBeforeEnd.timeoutMs}`);
  }
  const logger = options.logger ?? console;
  observeRouter();
  // Once per cause: an attacker replaying bad headers must not be able to flood the logs.
  const warned = new Set<string>();
  const warn = (cause: string, message: string): void => {
    if (warned.has(cause)) return;
    warned.add(cause);
    try {
      logger.warn(`[langsmith-tracing] ${message} (cause: ${cause}; reported once)`);
    } catch {
      // A broken logger must not break requests.
    }
  };

  return (req: ExpressRequest, res: ExpressResponse, next: NextFunction): void => {
    if (!(options.enabled ?? tracingEnabledFromEnv())) {
      next();
      return;
    }
    let started: Started;
    try {
      started = startServerRun(req, settings, warn);
    } catch (err) {
      // Tracing is an observer: if it cannot start (say, a bad LANGSMITH_RUNS_ENDPOINTS), serve untraced.
      warn("start-failed", `Could not start a run; serving the request untraced: ${describeError(err).split("\n")[0]}`);
      next();
      return;
    }
    const { run, decision } = started;
    requestRuns.set(req, run);
    // Before the handler runs, so the id is present on errors and streamed responses too.
    if (settings.traceIdHeader) res.setHeader(settings.traceIdHeader, run.trace_id);

    // Posting now makes in-flight requests visible. Inputs must be set before
    // this: the SDK leaves inputs out of the final patch by default
    // (LANGSMITH_EXCLUDE_INPUTS_ON_PATCH). postRun logs its own failures.
    const posted = run.postRun();
    // The run ends when the handler calls res.end(), not when "finish" is
    // processed: under load the event loop can deliver "finish" tens of ms
    // later, after the caller already has the response, and the server run
    // would then end outside its parent's time window.
    let respondedAt: number | undefined;
    const originalEnd = res.end as (...a: unknown[]) => ExpressResponse;
    let flushed: Promise<void> | undefined;
    res.end = function (this: ExpressResponse, ...args: unknown[]) {
      respondedAt ??= Date.now();
      const flush = settings.flushBeforeEnd;
      if (flush === undefined) return originalEnd.apply(this, args);
      // A second end() waits behind the first, so the calls keep their order.
      flushed ??= finish(false).then(() => flushWithin(run, flush.timeoutMs, warn));
      void flushed.then(() => originalEnd.apply(this, args));
      return this;
    } as ExpressResponse["end"];
    let ended = false;
    const finish = (disconnected: boolean): Promise<void> => {
      if (ended) return Promise.resolve();
      ended = true;
      const route = requestRoutes.get(req) ?? currentRoute(req);
      if (!settings.runName && route !== undefined) run.name = `${req.method} ${route}`;
      const status = res.statusCode;
      const thrown = requestErrors.get(req);
      const error = disconnected ? "client disconnected" : (thrown ?? (status >= 500 ? `HTTP ${status}` : undefined));
      const metadata: Record<string, unknown> = { "http.method": req.method, ...decisionMetadata(decision) };
      if (route !== undefined) metadata["http.route"] = route;
      if (!disconnected || res.headersSent) metadata["http.status_code"] = status;
      if (disconnected) metadata["http.client_disconnected"] = true;
      const outputs = disconnected && !res.headersSent ? {} : { status_code: status };
      return (async () => {
        await run.end(outputs, error, disconnected ? Date.now() : (respondedAt ?? Date.now()), metadata);
        // The patch must not overtake the create: both go through the same batch queue.
        await posted;
        await run.patchRun();
        await settings.onRunEnd?.(run, req, res);
      })().catch((err: unknown) => warn("end-failed", `Could not finish a run: ${describeError(err).split("\n")[0]}`));
    };
    res.once("finish", () => void finish(false));
    // "close" without "finish": the client went away before the response was complete.
    res.once("close", () => void finish(!res.writableFinished));

    // withRunTree keeps the run current for everything the rest of the chain
    // awaits: traceable() calls, getCurrentRunTree(), tracedFetch().
    withRunTree(run, () => next()).catch((err: unknown) => next(err));
  };
}

/** Sends what the run's client has queued (this run, its children, anything else pending), giving up after `ms`. */
async function flushWithin(run: RunTree, ms: number, warn: (cause: string, message: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    const outcome = await Promise.race([run.client.awaitPendingTraceBatches(), deadline]);
    if (outcome === "timeout") warn("flush-timeout", `Sent the response after waiting ${ms} ms for the trace flush (flushBeforeEnd); runs still queued may be lost if the process is frozen.`);
  } catch (err) {
    warn("flush-failed", `Could not flush before ending the response: ${describeError(err).split("\n")[0]}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The request's server run, or undefined when tracing is off. Works outside the async context too (e.g. in event callbacks). */
export function getRequestRun(req: ExpressRequest): RunTree | undefined {
  return requestRuns.get(req);
}

/** The current run inside a traced request or traceable; undefined elsewhere and when tracing is off. */
export function currentRun(): RunTree | undefined {
  // With tracing off, traceable stores a placeholder ({ tracingEnabled: false }),
  // not a RunTree: its toHeaders does not exist, so check before using it.
  const current: unknown = getCurrentRunTree(true);
  return isRunTree(current) && current.tracingEnabled !== false ? current : undefined;
}

const OUTBOUND_DROPPED_KEYS = /^LANGSMITH_SERVICE$/;

/** The SDK's baggage members without this service's name, which must describe the receiver's runs, not the caller's. */
function outboundMembers(sdkBaggage: string): string[] {
  return sdkBaggage
    .split(",")
    .filter((m) => m.length > 0)
    .map((member) => {
      if (!member.startsWith("langsmith-metadata=")) return member;
      // The SDK wrote this member itself, so it decodes and parses.
      const metadata = JSON.parse(decodeURIComponent(member.slice("langsmith-metadata=".length))) as Record<string, unknown>;
      const kept = Object.fromEntries(Object.entries(metadata).filter(([k]) => !OUTBOUND_DROPPED_KEYS.test(k)));
      return Object.keys(kept).length > 0 ? `langsmith-metadata=${encodeURIComponent(JSON.stringify(kept))}` : "";
    })
    .filter((m) => m.length > 0);
}

// A receiver rejects the whole context when the baggage header is over its
// limit, and then starts a new trace: a connected tree is worth more than any
// member. Our own metadata goes first, then our tags; other vendors' members,
// which are not ours to lose, only if that is not enough.
const FOREIGN = "other vendors' members";
const OUTBOUND_DROP_ORDER = ["langsmith-metadata", "langsmith-tags", FOREIGN, "the rest of the baggage"] as const;
let outboundWarned = false;

function dropGroup(member: string): (typeof OUTBOUND_DROP_ORDER)[number] | undefined {
  if (!member.startsWith("langsmith-")) return FOREIGN;
  const key = member.slice(0, member.indexOf("="));
  return key === "langsmith-metadata" || key === "langsmith-tags" ? key : undefined;
}

/** The merged baggage members, dropped in OUTBOUND_DROP_ORDER until they fit in what a receiver accepts. */
function fitBaggage(members: readonly string[]): string {
  let kept = members;
  const dropped: string[] = [];
  for (const group of OUTBOUND_DROP_ORDER) {
    if (Buffer.byteLength(kept.join(","), "utf8") <= DEFAULT_LIMITS.maxBaggageBytes) break;
    const before = kept.length;
    kept = group === "the rest of the baggage" ? [] : kept.filter((m) => dropGroup(m) !== group);
    if (kept.length < before) dropped.push(group);
  }
  if (dropped.length > 0 && !outboundWarned) {
    outboundWarned = true;
    console.warn(
      `[langsmith-tracing] Outbound baggage was over ${DEFAULT_LIMITS.maxBaggageBytes} bytes, which receivers reject; ` +
        `dropped ${dropped.join(", then ")} to fit. The trace header was still sent. (reported once)`,
    );
  }
  return kept.join(",");
}

/**
 * Returns `init` plus `langsmith-trace` and `baggage` for the current run, for
 * calls into your own services only: the headers reveal run ids, metadata and
 * tags. Other vendors' baggage members already in `init` are kept; stale
 * langsmith ones are replaced. The merged baggage is kept within 8 KiB (see
 * OUTBOUND_DROP_ORDER); `langsmith-trace` is always sent. Outside a traced
 * context it adds nothing.
 */
export function injectTraceHeaders(init?: ConstructorParameters<typeof Headers>[0]): Headers {
  const headers = new Headers(init);
  const run = currentRun();
  if (run === undefined) return headers;
  const { [TRACE_HEADER]: trace, baggage } = run.toHeaders();
  headers.set(TRACE_HEADER, trace);
  const foreign = (headers.get(BAGGAGE_HEADER) ?? "")
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m.length > 0 && !m.startsWith("langsmith-"));
  const merged = fitBaggage([...foreign, ...outboundMembers(baggage)]);
  if (merged) headers.set(BAGGAGE_HEADER, merged);
  else headers.delete(BAGGAGE_HEADER);
  return headers;
}

let injectFailureWarned = false;

/**
 * `fetch` that continues the current trace in the service it calls. Same
 * signature as fetch. If the trace headers cannot be built (the run refuses
 * `toHeaders()`), the request is sent without them and a warning is logged
 * once: the callee starts a new trace, the call itself is unaffected. Async, so
 * nothing it does throws synchronously where a caller expects a rejection.
 */
export async function tracedFetch(input: string | URL | Request, init: NonNullable<Parameters<typeof fetch>[1]> = {}): Promise<Response> {
  const base = init.headers ?? (input instanceof Request ? input.headers : undefined);
  let headers: Headers;
  try {
    headers = injectTraceHeaders(base);
  } catch (error) {
    if (!injectFailureWarned) {
      injectFailureWarned = true;
      console.warn(`[langsmith-tracing] Could not build trace headers, sent the request without them: ${error instanceof Error ? error.message : String(error)} (reported once)`);
    }
    // fetch itself reports headers that are invalid on their own, as it would without tracing.
    return fetch(input, init);
  }
  return fetch(input, { ...init, headers });
}
