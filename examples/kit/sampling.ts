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
 *   LangGraph then trace nothing either), `traced` calls the function itself,
 *   and `tracedFetch` sends `x-langsmith-sampling: drop` without `langsmith-trace`.
 * - `tail`: see tail.ts (with `tail: { slowMs }`, requests not sampled in are
 *   recorded and sent only if they fail or are slow).
 *
 * An edge (`trust: "edge"`) decides itself and ignores what the caller sent: a
 * public caller cannot force a trace. Other services take a trusted caller's
 * decision (covered by the signature under `{ signedBy }`); a trusted
 * `langsmith-trace` without a decision means the caller traced it: keep. Every
 * service of the mesh needs a sampler, or a sampled-out request becomes a new
 * root wherever one is missing. `stats()` and `on(listener)` feed metrics.
 */
import type { ClientConfig } from "langsmith";
import { isRunTree, RunTree } from "langsmith/run_trees";
import { getCurrentRunTree, traceable, type TraceableFunction } from "langsmith/traceable";
import { SAMPLING_HEADER, tracingEnabledFromEnv } from "./propagator.js";

/** What happens to one request's runs. */
export type SamplingDecision = "keep" | "drop" | "tail";

export { SAMPLING_HEADER };

export interface SamplingOptions {
  /** Share of requests traced in full, decided where the request enters (0 to 1). Default 1. */
  rate?: number;
  /** Client settings for this service's runs (the sampler makes its own client). Default: from env. */
  clientConfig?: ClientConfig;
  /** Where the edge draws its numbers; a test can make it deterministic. Default Math.random. */
  random?: () => number;
}

/** Counters since the sampler was made. Names map one-to-one onto metrics. */
export interface SamplingStats {
  /** Requests per decision this service applied (`langsmith_sampling_requests_total{decision}`). */
  requests: Record<SamplingDecision, number>;
}

export type SamplingEvent = { type: "decision"; decision: SamplingDecision; source: "own" | "caller" };

export type SamplingListener = (event: SamplingEvent) => void;

/** One service's sampling policy, counters and client. Pass it as `sampling` to an adapter. */
export class Sampler {
  readonly rate: number;
  readonly clientConfig: ClientConfig | undefined;
  private readonly random: () => number;
  private readonly listeners = new Set<SamplingListener>();
  private readonly counts: SamplingStats = { requests: { keep: 0, drop: 0, tail: 0 } };

  constructor(options: SamplingOptions = {}) {
    const rate = options.rate ?? 1;
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) throw new RangeError(`sampling rate must be a number from 0 to 1, got ${String(rate)}`);
    this.rate = rate;
    this.clientConfig = options.clientConfig;
    this.random = options.random ?? Math.random;
  }

  /**
   * This service's own decision, for a request no trusted caller decided. Not
   * by trace id: at the edge there is none yet, and deciding before a run
   * exists is what makes a dropped request cost nothing. Downstream services
   * follow this decision instead of deciding again, so they always agree.
   */
  decide(): SamplingDecision {
    return this.rate >= 1 || this.random() < this.rate ? "keep" : "drop";
  }

  /** Counts a decision applied to a request and tells the listeners. */
  record(decision: SamplingDecision, source: "own" | "caller"): void {
    this.counts.requests[decision] += 1;
    if (this.listeners.size > 0) this.emit({ type: "decision", decision, source });
  }

  stats(): SamplingStats {
    return { requests: { ...this.counts.requests } };
  }

  /** Calls `listener` on every event (for a metrics library that counts without polling). Returns the unsubscribe. */
  on(listener: SamplingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected emit(event: SamplingEvent): void {
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
 * `traceable` makes no runs, and `currentRun()` is undefined. It collects no
 * children and sends nothing, so sharing it costs no memory.
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
