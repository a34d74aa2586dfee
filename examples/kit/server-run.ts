/**
 * One "server" run per inbound HTTP request, for any framework: the options
 * every HTTP adapter takes, the run started from the request (continued or
 * restarted by propagator.ts), and the run ended with the status code, route
 * and error. The adapters (express.ts, node-http.ts, hono.ts) only connect
 * their framework's request and response to these two calls.
 *
 *   const tracing = serverTracing({ trust: "mesh" });
 *   const started = startServerRun(tracing, { req, method: "GET", path: "/orders/7", header: (n) => values(n) });
 *   // ... handle the request inside withRunTree(started.run, ...)
 *   await endServerRun(tracing, started, { status: 200, endTime: Date.now() });
 *
 * The run is named `METHOD /path` (then `METHOD /route/:pattern` once the
 * route is known), records method, path and a few safe request headers as
 * inputs, and is posted at the start so in-flight requests are visible.
 */
import type { Client } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import { DEFAULT_LIMITS, type HeaderLimits } from "./headers.js";
import { parseDecision, type Sampler, type SamplingDecision } from "./sampling.js";
import { SIGNATURE_HEADER, assertSigningKey, verifyContext, type SignedTrust } from "./signing.js";
import {
  BAGGAGE_HEADER,
  SAMPLING_HEADER,
  TRACE_HEADER,
  continueInbound,
  inboundMetadata,
  onceWarner,
  tracingEnabledFromEnv,
  type InboundContext,
  type InboundOptions,
  type TracingLogger,
  type TrustPolicy,
  type Warn,
} from "./propagator.js";

export interface HttpTracingOptions<Req> {
  /** Default "edge": a service that forgets to choose must not be steerable from outside. `{ signedBy: key }`: only signed context (signing.ts). */
  trust?: TrustPolicy<Req>;
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
  /**
   * Force tracing on or off. Default: LANGSMITH_TRACING / LANGSMITH_TRACING_V2
   * (and LANGCHAIN_ forms), read per request; with `sampling`, the value the
   * sampler took from them (`sampler.tracingEnabled()`).
   */
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
  runName?: (req: Req) => string;
  /** Response header that carries the trace id; false to not send one. Default "x-trace-id". */
  traceIdHeader?: string | false;
  /** Where warnings go; each cause is reported once per adapter instance. Default: console. */
  logger?: TracingLogger;
  /**
   * Sampling across services (sampling.ts): the request's decision, made here
   * at an edge or taken from a trusted caller. A dropped request gets no run
   * and no `x-trace-id`. Default: every request traced.
   */
  sampling?: Sampler;
}

/** The options resolved once per adapter instance. */
export interface ServerTracing<Req> {
  enabled(): boolean;
  trust: TrustPolicy<Req>;
  inbound: Omit<InboundOptions, "trusted">;
  service: string | undefined;
  metadata: Record<string, string | number | boolean>;
  tags: string[];
  recordHeaders: string[];
  runName: ((req: Req) => string) | undefined;
  traceIdHeader: string | false;
  warn: Warn;
  sampler: Sampler | undefined;
}

/** A request as the adapters see it. `header` returns every line of one header, lower-case name. */
export interface HttpRequestInfo<Req> {
  req: Req;
  method: string;
  /** The path as requested, query string included or not: it is dropped here. */
  path: string;
  header(name: string): readonly string[] | undefined;
}

export interface ServerRun {
  run: RunTree;
  context: InboundContext;
  /** The run's create, queued at the start; the final patch must not overtake it. */
  posted: Promise<void>;
  method: string;
  decision: SamplingDecision;
  /** performance.now() at the start, for the tail rule's slowMs. */
  startedAt: number;
  /** The tail rule was applied (settleTail). */
  settled: boolean;
}

export interface ServerRunEnd {
  /** The status sent; undefined when the client left before any response went out. */
  status: number | undefined;
  /** The route pattern that handled the request ("/api/users/:id"), if known. */
  route?: string;
  /** What the handler threw. Without it a 5xx status is the error. */
  error?: string;
  disconnected?: boolean;
  /** When the response was complete (ms since epoch); the run ends then. */
  endTime: number;
}

export function serverTracing<Req>(options: HttpTracingOptions<Req>): ServerTracing<Req> {
  const warn = onceWarner(options.logger ?? console);
  const limits: HeaderLimits = { ...DEFAULT_LIMITS, ...options.limits };
  // A missing or short key must stop the service at start-up, not silently restart every trace.
  if (typeof options.trust === "object") assertSigningKey(options.trust.signedBy, "trust.signedBy");
  // The sampler's client is the one that can hold tail runs; a second one would send them.
  if (options.sampling !== undefined && options.client !== undefined && options.client !== options.sampling.client) {
    throw new Error("langsmithTracing: pass either `client` or `sampling` (give the client's settings to createSampler({ clientConfig }))");
  }
  return {
    // A sampler owns the switch (sampling.ts): the environment no longer holds it.
    enabled: () => options.enabled ?? options.sampling?.tracingEnabled() ?? tracingEnabledFromEnv(),
    trust: options.trust ?? "edge",
    inbound: {
      allowProjectOverride: options.allowProjectOverride ?? false,
      allowReplicas: options.allowReplicas ?? false,
      limits,
      client: options.sampling?.client ?? options.client,
      projectName: options.projectName,
      warn,
    },
    service: options.service ?? process.env.LANGSMITH_SERVICE,
    metadata: { ...options.metadata },
    tags: [...(options.tags ?? [])],
    recordHeaders: [...(options.recordHeaders ?? DEFAULT_RECORDED_HEADERS)],
    runName: options.runName,
    traceIdHeader: options.traceIdHeader ?? "x-trace-id",
    warn,
    sampler: options.sampling,
  };
}

/**
 * Starts and posts the request's run. Undefined when the request is sampled
 * out: the adapter then runs it under `droppedRun()`. Throws only if the SDK
 * cannot create a run at all (say, a bad LANGSMITH_RUNS_ENDPOINTS).
 */
export function startServerRun<Req>(tracing: ServerTracing<Req>, request: HttpRequestInfo<Req>): ServerRun | undefined {
  const sampler = tracing.sampler;
  const claimed = sampler === undefined || tracing.trust === "edge" ? undefined : parseDecision(request.header(SAMPLING_HEADER));
  // Decided before any run is built, where possible: that is what makes a dropped request cheap.
  let decision: SamplingDecision | undefined;
  let source: "own" | "caller" = "own";
  if (sampler !== undefined && (tracing.trust === "edge" || claimed === undefined || claimed === "drop")) {
    if (claimed === "drop" && callerMayDecide(tracing.trust, request)) {
      decision = "drop";
      source = "caller";
    } else if (request.header(TRACE_HEADER) === undefined || tracing.trust === "edge") {
      decision = sampler.decide();
    }
  }
  if (sampler !== undefined && decision === "drop") {
    sampler.record("drop", source);
    return undefined;
  }
  const path = requestPath(request.path);
  const metadata: Record<string, unknown> = { ...tracing.metadata };
  if (tracing.service) metadata.LANGSMITH_SERVICE = tracing.service;
  const { run, context } = continueInbound(
    {
      trace: request.header(TRACE_HEADER),
      baggage: request.header(BAGGAGE_HEADER),
      signature: request.header(SIGNATURE_HEADER),
      sampling: request.header(SAMPLING_HEADER),
    },
    {
      name: tracing.runName ? tracing.runName(request.req) : `${request.method} ${path}`,
      run_type: "chain",
      // Inputs must be set before the run is posted: the SDK leaves them out of
      // the final patch by default (LANGSMITH_EXCLUDE_INPUTS_ON_PATCH).
      inputs: { method: request.method, path, headers: recordedHeaders(request.header, tracing.recordHeaders) },
      metadata,
      tags: tracing.tags,
    },
    { ...tracing.inbound, trusted: trustFor(tracing.trust, request.req) },
  );
  if (sampler !== undefined) {
    if (decision === undefined) {
      // A caller we continue decided already; a trace header alone means it traced the request.
      if (context.kind === "continued") {
        decision = claimed === "tail" ? "tail" : "keep";
        source = "caller";
      } else {
        decision = sampler.decide();
      }
    }
    // A full tail buffer (counted there) means this request is not recorded at all.
    if (decision === "tail" && !sampler.hold(run.trace_id, source === "own")) decision = "drop";
    sampler.record(decision, source);
    // The run was built but is never posted: nothing of it reaches the backend.
    if (decision === "drop") return undefined;
  }
  // postRun logs its own failures.
  return { run, context, posted: run.postRun(), method: request.method, decision: decision ?? "keep", startedAt: performance.now(), settled: false };
}

/**
 * For a tail request: applies the tail rule once (see Sampler.settle) and
 * returns the headers that tell the caller. Call before the response head
 * goes out; endServerRun applies it if nothing did (a client that left).
 */
export function settleTail<Req>(tracing: ServerTracing<Req>, started: ServerRun, outcome: { status: number | undefined; error?: string }): Record<string, string> {
  if (started.decision !== "tail" || started.settled || tracing.sampler === undefined) return {};
  started.settled = true;
  return tracing.sampler.settle(started.run.trace_id, { ...outcome, elapsedMs: performance.now() - started.startedAt });
}

/** May this keep notice (TAIL_ROUTE) be followed? Never at an edge; under `{ signedBy }` only when its body is signed. */
export function noticeAllowed<Req>(trust: TrustPolicy<Req>, req: Req, body: string, signature: readonly string[] | undefined): boolean {
  if (trust === "edge") return false;
  if (trust === "mesh") return true;
  if (typeof trust === "object") return verifyContext({ trace: [body], baggage: undefined, signature }, trust).ok;
  try {
    return trust(req) === true;
  } catch {
    return false;
  }
}

/** Ends the run with the response's outcome and queues its final update after its create. */
export async function endServerRun<Req>(tracing: ServerTracing<Req>, started: ServerRun, end: ServerRunEnd): Promise<void> {
  const { run, method } = started;
  const route = end.route === undefined ? undefined : bounded(end.route, MAX_PATH_LENGTH);
  if (!tracing.runName && route !== undefined) run.name = `${method} ${route}`;
  const error = end.disconnected ? "client disconnected" : (end.error ?? (end.status !== undefined && end.status >= 500 ? `HTTP ${end.status}` : undefined));
  const metadata: Record<string, unknown> = { "http.method": method, ...inboundMetadata(started.context) };
  if (route !== undefined) metadata["http.route"] = route;
  if (end.status !== undefined) metadata["http.status_code"] = end.status;
  if (end.disconnected) metadata["http.client_disconnected"] = true;
  await run.end(end.status === undefined ? {} : { status_code: end.status }, error, end.endTime, metadata);
  // Too late for headers here; it matters only when nothing settled it before (a client that left).
  settleTail(tracing, started, { status: end.status, error });
  // Both go through the same batch queue, so awaiting the create first keeps the order.
  await started.posted;
  await run.patchRun();
  if (started.decision === "tail") tracing.sampler?.ended(run.trace_id);
}

/** A trust policy applied to one request, in the form continueInbound takes. */
export function trustFor<Req>(policy: TrustPolicy<Req>, req: Req): boolean | (() => boolean) | SignedTrust {
  if (policy === "edge") return false;
  if (policy === "mesh") return true;
  if (typeof policy === "object") return policy;
  return () => policy(req);
}

/** May this caller's sampling decision stand? Under `{ signedBy }` only when the decision is signed. */
function callerMayDecide<Req>(trust: TrustPolicy<Req>, request: HttpRequestInfo<Req>): boolean {
  if (trust === "edge") return false;
  if (trust === "mesh") return true;
  if (typeof trust === "object") {
    const headers = { trace: request.header(TRACE_HEADER), baggage: request.header(BAGGAGE_HEADER), signature: request.header(SIGNATURE_HEADER), sampling: request.header(SAMPLING_HEADER) };
    return verifyContext(headers, trust).ok;
  }
  try {
    return trust(request.req) === true;
  } catch {
    return false;
  }
}

const DEFAULT_RECORDED_HEADERS = ["user-agent", "content-type", "content-length", "accept", "x-request-id"];
const SECRET_HEADER = /auth|cookie|token|secret|key|session|password|signature|^langsmith-trace$|^baggage$/i;
const MAX_PATH_LENGTH = 512;

function bounded(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}...`;
}

/** The query string is left out: it is where tokens and personal data tend to be. */
function requestPath(path: string): string {
  return bounded(path.split("?")[0] || "/", MAX_PATH_LENGTH);
}

function recordedHeaders(header: (name: string) => readonly string[] | undefined, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const lower = name.toLowerCase();
    if (SECRET_HEADER.test(lower)) continue;
    const value = header(lower);
    if (value !== undefined && value.length > 0) out[lower] = bounded(value.join(", "), DEFAULT_LIMITS.maxValueLength);
  }
  return out;
}
