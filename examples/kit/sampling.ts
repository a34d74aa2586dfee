/**
 * Sampling that holds across services: one decision per request, made at the
 * edge and carried to every hop in `x-langsmith-sampling`, so no service
 * starts its own root or sends an orphan.
 *
 *   const sampler = createSampler({ rate: 0.1 });                     // 10% of requests traced
 *   app.use(langsmithTracing({ trust: "edge", sampling: sampler }));  // every adapter takes `sampling`
 *   const plan = traced(async (q: string) => planFor(q), { name: "plan" });   // drop-in for traceable
 *   await tracedFetch(url, init, { signingKey });                      // forwards the decision
 *
 * Decisions:
 * - `keep`: traced and sent as usual.
 * - `drop`: pass-through. No run on any service: the adapter starts none, runs
 *   the request under one shared `tracingEnabled: false` RunTree (LangChain and
 *   LangGraph then trace nothing either, given the switch below), `traced` calls
 *   the function itself, and `tracedFetch` sends `x-langsmith-sampling: drop`
 *   without `langsmith-trace`.
 * - `tail`: with `tail: { slowMs }`, requests not sampled in are recorded and
 *   sent only if they fail or are slow, by every service they crossed (tail.ts).
 *
 * An edge (`trust: "edge"`) decides itself and ignores what the caller sent: a
 * public caller cannot force a trace. Other services take a trusted caller's
 * decision (covered by the signature under `{ signedBy }`); a trusted
 * `langsmith-trace` without a decision means the caller traced it: keep. Every
 * service of the mesh needs a sampler, or a sampled-out request becomes a new
 * root wherever one is missing. `stats()` and `on(listener)` feed metrics.
 *
 * The tracing switch: a sampler takes LANGSMITH_TRACING (and LANGSMITH_TRACING_V2,
 * LANGCHAIN_TRACING[_V2]) out of `process.env` when it is made, and the adapters
 * turn tracing on per request from the value it took (`tracingEnabled()`).
 * Why: LangChain's `.stream()` (AsyncGeneratorWithSetup, @langchain/core 1.4)
 * runs each step of the stream under no run at all when the caller's run does
 * not trace, and with no run LangChain falls back to the environment; left on,
 * every streamed model call of a dropped request became a root run of its own.
 * A kept or tail request's run says `tracingEnabled: true`, so it still traces
 * everything under it. The trade-off: the switch is process-wide. Outside a
 * request (start-up, a timer, a queue consumer not built on `startRun`),
 * `traceable` and LangChain no longer trace from the environment; run such work
 * under a run of its own (`traceable(fn, { tracingEnabled: sampler.tracingEnabled() })`,
 * `startRun`). Child processes inherit the environment without the variable. A
 * variable set again later is taken again on the next request. `ownTracingSwitch:
 * false` leaves the environment alone and accepts those stray roots.
 */
import type { ClientConfig } from "langsmith";
import { isRunTree, RunTree } from "langsmith/run_trees";
import { getCurrentRunTree, traceable, type TraceableFunction } from "langsmith/traceable";
import { SAMPLING_HEADER, tracingEnabledFromEnv } from "./propagator.js";
import { TailBuffer, TailClient, type KeepReason, type TailEvent, type TailLimits, type TailStats } from "./tail.js";

/** What happens to one request's runs. */
export type SamplingDecision = "keep" | "drop" | "tail";

export { SAMPLING_HEADER };

export interface SamplingOptions {
  /** Share of requests traced in full, decided where the request enters (0 to 1). Default 1. */
  rate?: number;
  /**
   * Requests not sampled in get `tail` instead of `drop`: recorded, and sent
   * only if they fail (5xx or thrown; always) or take longer than `slowMs`
   * (tail.ts). Costs most of a traced request's CPU (runs are built and held), no network unless kept: docs/performance.md.
   */
  tail?: { slowMs?: number; limits?: Partial<TailLimits> };
  /** Signs the keep notices this service sends as a tail root; receivers check them under their trust policy. */
  signingKey?: string;
  /** Client settings for this service's runs (the sampler makes its own client). Default: from env. */
  clientConfig?: ClientConfig;
  /** Where the edge draws its numbers; a test can make it deterministic. Default Math.random. */
  random?: () => number;
  /**
   * Take LANGSMITH_TRACING out of the environment (see the header) so that a
   * dropped request's streamed LangChain calls make no runs. Default true;
   * false leaves `process.env` alone.
   */
  ownTracingSwitch?: boolean;
}

/** Counters since the sampler was made. Names map one-to-one onto metrics. */
export interface SamplingStats {
  /** Requests per decision this service applied (`langsmith_sampling_requests_total{decision}`). */
  requests: Record<SamplingDecision, number>;
  /** The tail buffer: kept by reason, discarded, held now, overflow, expired, notices (tail.ts). */
  tail: TailStats;
}

export type SamplingEvent = { type: "decision"; decision: SamplingDecision; source: "own" | "caller" } | TailEvent;

/** What a request did, for the tail rule. */
export interface RequestOutcome {
  status: number | undefined;
  error?: string;
  elapsedMs: number;
}

export type SamplingListener = (event: SamplingEvent) => void;

/** One service's sampling policy, counters and client. Pass it as `sampling` to an adapter. */
export class Sampler {
  readonly rate: number;
  /** Writes this service's runs; holds those of tail traces. Adapters use it for every run. */
  readonly client: TailClient;
  readonly tail: TailBuffer;
  private readonly slowMs: number | undefined;
  private readonly tailDecisions: boolean;
  private readonly random: () => number;
  private readonly ownsTracingSwitch: boolean;
  private readonly listeners = new Set<SamplingListener>();
  private readonly requests: Record<SamplingDecision, number> = { keep: 0, drop: 0, tail: 0 };

  constructor(options: SamplingOptions = {}) {
    const rate = options.rate ?? 1;
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) throw new RangeError(`sampling rate must be a number from 0 to 1, got ${String(rate)}`);
    const slowMs = options.tail?.slowMs;
    if (slowMs !== undefined && !(Number.isFinite(slowMs) && slowMs >= 0)) throw new RangeError(`tail.slowMs must be a number >= 0, got ${String(slowMs)}`);
    this.rate = rate;
    this.slowMs = slowMs;
    this.tailDecisions = options.tail !== undefined;
    this.random = options.random ?? Math.random;
    this.ownsTracingSwitch = options.ownTracingSwitch ?? true;
    // Before the client is made: it copies the LANGSMITH_* variables into every run's metadata once.
    if (this.ownsTracingSwitch) takeTracingSwitch();
    // Every sampler can hold a trace a caller marked tail; only one with `tail` decides tail itself.
    this.tail = new TailBuffer(options.tail?.limits ?? {}, (event) => this.emit(event), options.signingKey);
    this.client = new TailClient(this.tail, options.clientConfig);
    this.tail.client = this.client;
  }

  /**
   * This service's own decision, for a request no trusted caller decided. Not
   * by trace id: at the edge there is none yet, and deciding before a run
   * exists is what makes a dropped request cost nothing. Downstream services
   * follow this decision instead of deciding again, so they always agree.
   */
  decide(): SamplingDecision {
    if (this.rate >= 1 || this.random() < this.rate) return "keep";
    return this.tailDecisions ? "tail" : "drop";
  }

  /**
   * Whether requests through an adapter with this sampler are traced (the
   * adapters' default for `enabled`): the environment's switch as the kit took
   * it, or as it is now with `ownTracingSwitch: false`.
   */
  tracingEnabled(): boolean {
    return this.ownsTracingSwitch ? takeTracingSwitch() : tracingEnabledFromEnv();
  }

  /** Starts holding a tail trace; false when the buffer is full (the request is then dropped). */
  hold(traceId: string, root: boolean): boolean {
    return this.tail.hold(traceId, root);
  }

  /**
   * Applies the tail rule to a request that has answered and returns the
   * headers that tell its caller: keep (errors always, slow when `slowMs` is
   * set, or a callee kept), else held. Call once, before the response head goes out.
   */
  settle(traceId: string, outcome: RequestOutcome): Record<string, string> {
    const failed = outcome.error !== undefined || (outcome.status !== undefined && outcome.status >= 500) || outcome.status === undefined;
    const reason: KeepReason | undefined = failed ? "error" : this.slowMs !== undefined && outcome.elapsedMs > this.slowMs ? "slow" : undefined;
    if (reason !== undefined) this.tail.keep(traceId, reason);
    return this.tail.responseHeaders(traceId);
  }

  /** A root's keep notice (TAIL_ROUTE), once the adapter has checked who sent it. */
  receiveNotice(body: string): { status: number; body: Record<string, unknown> } {
    let traceId: unknown;
    try {
      traceId = (JSON.parse(body) as { traceId?: unknown } | null)?.traceId;
    } catch {
      traceId = undefined;
    }
    if (typeof traceId !== "string" || !UUID.test(traceId)) return { status: 400, body: { error: 'expected {"traceId": "<uuid>"}' } };
    return { status: 200, body: { kept: this.tail.keep(traceId.toLowerCase(), "notified") } };
  }

  /** The request's last run update is queued: a root discards what it did not keep, or tells the others it kept. */
  ended(traceId: string): void {
    this.tail.ended(traceId);
  }

  /** Counts a decision applied to a request and tells the listeners. */
  record(decision: SamplingDecision, source: "own" | "caller"): void {
    this.requests[decision] += 1;
    if (this.listeners.size > 0) this.emit({ type: "decision", decision, source });
  }

  stats(): SamplingStats {
    return { requests: { ...this.requests }, tail: this.tail.stats() };
  }

  /** Stops the tail buffer's timer (it is unref'd, so a process exits without this). */
  close(): void {
    this.tail.close();
  }

  /** Calls `listener` on every event (for a metrics library that counts without polling). Returns the unsubscribe. */
  on(listener: SamplingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: SamplingEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken metrics hook must not break a request.
      }
    }
  }
}

export function createSampler(options: SamplingOptions = {}): Sampler {
  return new Sampler(options);
}

/**
 * `traceable(fn, config)`, except that where tracing is off for this request
 * (a dropped request, `LANGSMITH_TRACING` unset) it calls `fn` itself: the
 * SDK's wrapper builds a full RunTree per call even then (about 110 us). The
 * result is still a promise when `fn` returns a plain value or throws, as
 * traceable's is.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the constraint traceable itself declares
export function traced<Func extends (...args: any[]) => any>(fn: Func, config?: Parameters<typeof traceable<Func>>[1]): TraceableFunction<Func> {
  const wrapped = traceable(fn, config);
  // An explicit tracingEnabled is the caller's own choice; traceable honours it.
  if (config?.tracingEnabled !== undefined) return wrapped;
  const call = (...args: Parameters<Func>): unknown => (tracingOffHere() ? callDirectly(fn, args) : wrapped(...args));
  Object.defineProperty(call, "langsmith:traceable", { value: (wrapped as unknown as Record<string, unknown>)["langsmith:traceable"] });
  return call as unknown as TraceableFunction<Func>;
}

/**
 * The RunTree every dropped request runs under, shared: with it current,
 * LangChain's callback manager removes its tracer (`tracingEnabled: false`),
 * `traceable` makes no runs, and `currentRun()` is undefined. LangChain's
 * streams step outside it and read the environment instead, hence the switch
 * (see the header). It collects no children and sends nothing, so sharing it
 * costs no memory.
 */
export function droppedRun(): RunTree {
  if (dropped !== undefined) return dropped;
  const run = new RunTree({ name: "sampled out", tracingEnabled: false });
  // createChild would append every child to child_runs; traceable would push
  // one promise per call under this key. Either would grow forever here.
  run.createChild = () => run;
  Object.defineProperty(run, Symbol.for("lc:child_run_end_promises"), { get: () => undefined, set: () => undefined });
  run.postRun = async () => undefined;
  run.patchRun = async () => undefined;
  dropped = run;
  return run;
}

/** The decision in a header as received, if it is one; anything else counts as none. */
export function parseDecision(values: readonly string[] | undefined): SamplingDecision | undefined {
  if (values === undefined || values.length !== 1) return undefined;
  const value = values[0]?.trim();
  return value === "keep" || value === "drop" || value === "tail" ? value : undefined;
}

/** True where this async context traces nothing: a dropped request, traceable's placeholder with tracing off, or no context with tracing off. */
export function tracingOffHere(): boolean {
  const store: unknown = getCurrentRunTree(true);
  if (store === undefined) return !tracingEnabledFromEnv();
  const enabled = (store as { tracingEnabled?: boolean }).tracingEnabled;
  if (enabled === false) return true;
  return !isRunTree(store) && enabled === undefined && !tracingEnabledFromEnv();
}

let dropped: RunTree | undefined;

/** The variables the SDK and LangChain read for their on/off switch (langsmith/lib/env.js, @langchain/core utils/callbacks.js). */
const SWITCH_VARIABLES = ["LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING", "LANGCHAIN_TRACING"] as const;
/** The switch as last taken; one per process, so every sampler agrees whichever was made first. */
let tracingSwitch = false;

/**
 * Reads the switch from the environment when one of its variables is set,
 * then removes them all, and returns the switch as last read. Removed rather
 * than set to "false": the SDK copies LANGSMITH_* variables into run metadata,
 * and LangChain reads any LANGCHAIN_TRACING value as on.
 */
function takeTracingSwitch(): boolean {
  if (SWITCH_VARIABLES.some((name) => process.env[name] !== undefined)) {
    tracingSwitch = tracingEnabledFromEnv();
    for (const name of SWITCH_VARIABLES) delete process.env[name];
  }
  return tracingSwitch;
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function callDirectly(fn: (...args: never[]) => unknown, args: unknown[]): unknown {
  let result: unknown;
  try {
    result = fn(...(args as never[]));
  } catch (error) {
    return Promise.reject(error);
  }
  // Objects (promises, streams, generators) go back as they are; traceable hands those back too.
  return typeof result === "object" && result !== null ? result : Promise.resolve(result);
}
