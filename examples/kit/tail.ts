/**
 * The tail decision: record a request's runs, decide when it ends. Used by
 * sampling.ts; you configure it there.
 *
 *   const sampler = createSampler({ rate: 0.1, tail: { slowMs: 2000 }, signingKey });
 *   app.use(langsmithTracing({ trust: { signedBy: signingKey }, sampling: sampler }));
 *
 * A request that is not sampled in gets `tail`: its runs are built as usual
 * but `TailClient` (a langsmith Client) holds their creates and updates per
 * trace instead of queueing them. They go through the SDK's normal batching
 * only if the request failed (5xx or thrown), took longer than `slowMs`, or
 * another service kept the trace; otherwise they are discarded.
 *
 * Every service of the trace must send its part, so:
 * - a service that keeps says so in its response (`x-langsmith-keep: error`);
 *   its caller's `tracedFetch` sees it, keeps too, and says so in its own;
 * - a service still holding says `x-langsmith-tail: held` (plus
 *   `x-langsmith-tail-participants` for those below it), so the service that
 *   decided tail (the root) knows who holds runs and, when it keeps, tells
 *   each one with `POST /.well-known/langsmith-tail` (signed with
 *   `signingKey`; the adapters answer it under their trust policy).
 *
 * Memory is bounded (TailLimits): traces past `maxTraces` are not held (the
 * request is then traced as dropped), runs past a trace's `maxRunsPerTrace` /
 * `maxBytesPerTrace` or the total `maxBytes` are discarded, and a trace nobody
 * decided for is discarded `ttlMs` after it started. All of it is counted;
 * nothing here throws into a request.
 */
import { Client, type ClientConfig } from "langsmith";
import { MAX_PARTICIPANTS, readTailAnswer, sendKeepNotices, tailAnswerHeaders } from "./tail-notice.js";

export { KEEP_HEADER, PARTICIPANTS_HEADER, TAIL_HEADER, TAIL_ROUTE } from "./tail-notice.js";

export type KeepReason = "error" | "slow" | "downstream" | "notified";

export interface TailLimits {
  /** Traces held at once; a tail request beyond that is not recorded. Default 1000. */
  maxTraces: number;
  /** Run operations (creates and updates) held per trace. Default 256. */
  maxRunsPerTrace: number;
  /** Serialized bytes held per trace. Default 1 MiB. */
  maxBytesPerTrace: number;
  /** Serialized bytes held over all traces. Default 32 MiB. */
  maxBytes: number;
  /** How long a trace is held waiting for a decision, from its first run here. Default 30 s; longer than your slowest request. */
  ttlMs: number;
}

export const DEFAULT_TAIL_LIMITS: Readonly<TailLimits> = Object.freeze({
  maxTraces: 1000,
  maxRunsPerTrace: 256,
  maxBytesPerTrace: 1024 * 1024,
  maxBytes: 32 * 1024 * 1024,
  ttlMs: 30_000,
});

/** The counters of the tail buffer; `held*` are gauges, the rest only grow. */
export interface TailStats {
  kept: Record<KeepReason, number>;
  discarded: number;
  heldTraces: number;
  heldRuns: number;
  heldBytes: number;
  /** Tail requests not recorded because `maxTraces` traces were held. */
  overflowTraces: number;
  /** Run operations discarded because a trace or the buffer was full. */
  overflowRuns: number;
  /** Traces discarded at `ttlMs` while their request here was still running. */
  expired: number;
  notificationsSent: number;
  notificationsFailed: number;
}

export type TailEvent =
  | { type: "tail-kept"; reason: KeepReason; traceId: string }
  | { type: "tail-discarded"; traceId: string }
  | { type: "tail-overflow"; what: "trace" | "run"; traceId: string }
  | { type: "tail-expired"; traceId: string };

type CreateArgs = Parameters<Client["createRun"]>;
type UpdateArgs = Parameters<Client["updateRun"]>;
type HeldOp = { kind: "create"; args: CreateArgs; bytes: number } | { kind: "update"; args: UpdateArgs; bytes: number };

interface HeldTrace {
  ops: HeldOp[];
  bytes: number;
  expiresAt: number;
  /** This service decided tail; it discards at the end and notifies the participants when it keeps. */
  root: boolean;
  finished: boolean;
  keep?: KeepReason;
  releasing: boolean;
  participants: Set<string>;
}

/** A langsmith Client that holds the runs of tail traces (see TailBuffer) and sends everything else as usual. */
export class TailClient extends Client {
  constructor(
    private readonly tail: TailBuffer,
    config?: ClientConfig,
  ) {
    super(config);
    // flushTraces (flush.ts) and so installShutdown flush these too, not only the SDK's shared client.
    liveClients.add(this);
  }

  override async createRun(...args: CreateArgs): Promise<void> {
    if (this.tail.offer(args[0].trace_id, { kind: "create", args, bytes: sizeOf(args[0]) })) return;
    return super.createRun(...args);
  }

  override async updateRun(...args: UpdateArgs): Promise<void> {
    if (this.tail.offer(args[1].trace_id, { kind: "update", args, bytes: sizeOf(args[1]) })) return;
    return super.updateRun(...args);
  }

  /** What injectTraceHeaders forwards for this trace; nothing for keep, which a trace header alone means. */
  samplingDecision(traceId: string): "tail" | undefined {
    return this.tail.isHolding(traceId) ? "tail" : undefined;
  }

  /** Called by tracedFetch with each answer from a service of this trace. */
  observeResponse(traceId: string, url: string, headers: Headers): void {
    this.tail.observe(traceId, url, headers);
  }

  /** Also waits for held runs being released and keep notices being sent, so a shutdown flush covers them. */
  override async awaitPendingTraceBatches(): Promise<void> {
    await this.tail.settled();
    return super.awaitPendingTraceBatches();
  }

  /** Sends a held operation through the SDK's normal path. */
  async sendHeld(op: HeldOp): Promise<void> {
    if (op.kind === "create") await super.createRun(...op.args);
    else await super.updateRun(...op.args);
  }
}

/** The TailClients of samplers not closed, for flushTraces. */
export function tailClients(): TailClient[] {
  return [...liveClients];
}

const liveClients = new Set<TailClient>();

/** Runs held per trace, with the limits, counters and decisions; one per Sampler. */
export class TailBuffer {
  readonly limits: TailLimits;
  client!: TailClient;
  private readonly traces = new Map<string, HeldTrace>();
  /** Discarded traces, so their late runs (a callback after the response) are discarded too, not sent alone. */
  private readonly discarded = new Map<string, number>();
  private readonly counts: Omit<TailStats, "heldTraces" | "heldRuns" | "heldBytes"> = {
    kept: { error: 0, slow: 0, downstream: 0, notified: 0 },
    discarded: 0,
    overflowTraces: 0,
    overflowRuns: 0,
    expired: 0,
    notificationsSent: 0,
    notificationsFailed: 0,
  };
  private readonly inFlight = new Set<Promise<void>>();
  private heldBytes = 0;
  private heldRuns = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    limits: Partial<TailLimits>,
    private readonly emit: (event: TailEvent) => void,
    private readonly signingKey: string | undefined,
  ) {
    this.limits = { ...DEFAULT_TAIL_LIMITS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`tail limit ${name} must be a number > 0, got ${String(value)}`);
    }
    // Idle processes must still let go of expired traces; unref'd so it never keeps one alive.
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.min(this.limits.ttlMs, 5_000));
    this.sweeper.unref();
  }

  /** Starts holding a trace's runs. False when `maxTraces` are held (counted): the caller then drops the request. */
  hold(traceId: string, root: boolean): boolean {
    const now = Date.now();
    this.sweep(now);
    if (this.traces.has(traceId)) return true;
    if (this.traces.size >= this.limits.maxTraces) {
      this.counts.overflowTraces += 1;
      this.emit({ type: "tail-overflow", what: "trace", traceId });
      return false;
    }
    this.traces.set(traceId, { ops: [], bytes: 0, expiresAt: now + this.limits.ttlMs, root, finished: false, releasing: false, participants: new Set() });
    return true;
  }

  isHolding(traceId: string): boolean {
    const trace = this.traces.get(traceId);
    return trace !== undefined && trace.keep === undefined;
  }

  /** Takes a run operation if its trace is held (or was discarded). False: send it as usual. */
  offer(traceId: string | undefined, op: HeldOp): boolean {
    if (traceId === undefined) return false;
    const trace = this.traces.get(traceId);
    if (trace === undefined) return this.discarded.has(traceId);
    if (trace.keep !== undefined && !trace.releasing) return false;
    const full =
      trace.keep === undefined &&
      (trace.ops.length >= this.limits.maxRunsPerTrace || trace.bytes + op.bytes > this.limits.maxBytesPerTrace || this.heldBytes + op.bytes > this.limits.maxBytes);
    if (full) {
      this.counts.overflowRuns += 1;
      this.emit({ type: "tail-overflow", what: "run", traceId });
      return true;
    }
    trace.ops.push(op);
    trace.bytes += op.bytes;
    this.heldBytes += op.bytes;
    this.heldRuns += 1;
    return true;
  }

  /** Keeps a trace: its held runs are sent, in order, and later ones go straight out. False if it was not held or already kept. */
  keep(traceId: string, reason: KeepReason): boolean {
    const trace = this.traces.get(traceId);
    if (trace === undefined || trace.keep !== undefined) return false;
    trace.keep = reason;
    this.counts.kept[reason] += 1;
    this.emit({ type: "tail-kept", reason, traceId });
    this.track(this.release(traceId, trace));
    return true;
  }

  /** The reason this service keeps the trace, if it does. */
  keptReason(traceId: string): KeepReason | undefined {
    return this.traces.get(traceId)?.keep;
  }

  /** Response headers for the caller: keep, or held plus who else holds. */
  responseHeaders(traceId: string): Record<string, string> {
    const trace = this.traces.get(traceId);
    return trace === undefined ? {} : tailAnswerHeaders(trace.keep, trace.participants);
  }

  /** The request here has ended (its last run update is queued): a root discards or notifies, a participant waits. */
  ended(traceId: string): void {
    const trace = this.traces.get(traceId);
    if (trace === undefined) return;
    trace.finished = true;
    if (trace.keep !== undefined) {
      if (trace.root) this.track(this.notify(traceId, trace));
      if (!trace.releasing) this.traces.delete(traceId);
    } else if (trace.root) {
      this.discard(traceId, trace);
    }
  }

  /** Reads a callee's answer: its keep, and who holds runs below it. */
  observe(traceId: string, url: string, headers: Headers): void {
    const trace = this.traces.get(traceId);
    if (trace === undefined) return;
    const answer = readTailAnswer(url, headers);
    for (const origin of [...(answer.held === undefined ? [] : [answer.held]), ...answer.listed]) {
      if (trace.participants.size < MAX_PARTICIPANTS) trace.participants.add(origin);
    }
    if (answer.kept) this.keep(traceId, "downstream");
  }

  stats(): TailStats {
    return { ...this.counts, kept: { ...this.counts.kept }, heldTraces: this.traces.size, heldRuns: this.heldRuns, heldBytes: this.heldBytes };
  }

  /** Stops the sweeper (tests, or a sampler replaced at run time). Held runs stay held until dropped with the buffer. */
  close(): void {
    clearInterval(this.sweeper);
    liveClients.delete(this.client);
  }

  /** Resolves once the releases and notices started so far are done. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track(work: Promise<void>): void {
    const tracked = work.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async release(traceId: string, trace: HeldTrace): Promise<void> {
    trace.releasing = true;
    // Operations arriving meanwhile join the queue, so nothing overtakes a create still being sent.
    for (let op = trace.ops.shift(); op !== undefined; op = trace.ops.shift()) {
      this.forget(trace, op);
      try {
        await this.client.sendHeld(op);
      } catch {
        // The SDK logs its own send failures; a held run must never throw into a request.
      }
    }
    trace.releasing = false;
    if (trace.finished) this.traces.delete(traceId);
  }

  private discard(traceId: string, trace: HeldTrace): void {
    for (const op of trace.ops) this.forget(trace, op);
    trace.ops = [];
    this.traces.delete(traceId);
    this.counts.discarded += 1;
    this.emit({ type: "tail-discarded", traceId });
    if (this.discarded.size >= this.limits.maxTraces) this.discarded.delete(this.discarded.keys().next().value as string);
    this.discarded.set(traceId, Date.now() + this.limits.ttlMs);
  }

  private forget(trace: HeldTrace, op: HeldOp): void {
    trace.bytes -= op.bytes;
    this.heldBytes -= op.bytes;
    this.heldRuns -= 1;
  }

  /** Traces are kept in the order they started, so the expired ones are at the front. */
  private sweep(now: number): void {
    for (const [traceId, trace] of this.traces) {
      if (trace.expiresAt > now) break;
      if (trace.keep !== undefined) {
        if (!trace.releasing) this.traces.delete(traceId);
        continue;
      }
      if (!trace.finished) {
        this.counts.expired += 1;
        this.emit({ type: "tail-expired", traceId });
      }
      this.discard(traceId, trace);
    }
    for (const [traceId, until] of this.discarded) {
      if (until > now) break;
      this.discarded.delete(traceId);
    }
  }

  private async notify(traceId: string, trace: HeldTrace): Promise<void> {
    await sendKeepNotices(JSON.stringify({ traceId, decision: "keep", reason: trace.keep }), trace.participants, this.signingKey, (accepted) => {
      if (accepted) this.counts.notificationsSent += 1;
      else this.counts.notificationsFailed += 1;
    });
  }
}

/** The serialized size of a run operation, as the buffer counts it. */
function sizeOf(payload: unknown): number {
  try {
    return JSON.stringify(payload)?.length ?? 0;
  } catch {
    // Circular or otherwise unserializable here; the SDK's serializer copes, so count a nominal size.
    return 1024;
  }
}
