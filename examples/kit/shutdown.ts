/**
 * Stopping a service without losing its last runs, within one deadline.
 *
 *   const server = app.listen(3000);
 *   const background = new BackgroundTasks();          // background.ts, optional
 *   installShutdown({ timeoutMs: 10_000, drain: [server, background] });
 *
 * On SIGTERM or SIGINT: stop accepting connections, let in-flight requests
 * finish, then the background work they started, then flush the runs
 * (flush.ts), then exit 0; all within `timeoutMs`, of which the flush always
 * keeps `flushReserveMs`. It logs one line when it starts and one when it ends:
 *
 *   [shutdown] SIGTERM: not accepting connections; finishing 1 in-flight request(s); finishing 0 background task(s) within 7500 ms, then flushing traces (budget 10000 ms, at least 2500 ms for the flush)
 *   [shutdown] in-flight requests finished; background tasks finished; traces flushed in 12 ms
 *
 * Why not `server.close()` and a flush: close() does not wait for anything,
 * so the process exits under the requests still running (their clients get no
 * answer and their runs never end). Awaiting close() instead waits without a
 * deadline: one hung request holds the exit until the orchestrator's SIGKILL,
 * and the flush never happens. A second signal (Ctrl-C reaches every process
 * of a group, and a launcher forwards its own) does not cut the stop short:
 * it is bounded anyway.
 */
import { once } from "node:events";
import type { Server, ServerResponse } from "node:http";
import { flushTraces, type FlushOptions, type FlushResult } from "./flush.js";

/** Work that can be stopped and waited for: a server's requests, background tasks, a queue worker's jobs. */
export interface Drainable {
  /** For the first log line, what is left to finish: "not accepting connections; finishing 2 in-flight request(s)". */
  describe(): string;
  /** Take no more work; true once all work in progress has finished, false if some was cut off or left running at `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  /** For the summary line: "in-flight requests finished", or "... cut off at the deadline". */
  outcome(drained: boolean): string;
}

export interface ShutdownOptions {
  /** From the call to exit: keep it under the orchestrator's grace period (Kubernetes: 30 s). */
  timeoutMs: number;
  /** The part of `timeoutMs` the flush always gets. Default: a quarter of it, at most 5 s; above `timeoutMs`, all of it. */
  flushReserveMs?: number;
  /** Drained in this order (requests first: they start background work), sharing `timeoutMs - flushReserveMs`. */
  drain?: readonly Drainable[];
  /** Clients to flush besides the SDK's shared ones. */
  client?: FlushOptions["client"];
  /** Where the two lines go. Default: nowhere. */
  log?: (line: string) => void;
}

export interface ShutdownResult {
  /** Everything drained finished in time (else some was cut off). */
  drained: boolean;
  /** Each drained thing's outcome, in order, as in the summary line. */
  outcomes: string[];
  flush: FlushResult;
}

export interface InstallShutdownOptions extends Omit<ShutdownOptions, "drain"> {
  /** A server is tracked from this call on (call it right after listen()); anything else must be a Drainable. */
  drain?: ReadonlyArray<Server | Drainable>;
  /** Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /** Default console.error. */
  log?: (line: string) => void;
  /** Called once the shutdown is done, flushed or not. Default: process.exit(code). */
  exit?: (code: number, result: ShutdownResult) => void;
}

export interface InstalledShutdown {
  /** Runs the shutdown now (as a signal would), then calls `exit`. Repeated calls share one run. */
  shutdown(reason?: string): Promise<ShutdownResult>;
  /** Removes the signal handlers and stops tracking the servers. */
  uninstall(): void;
}

/** The shutdown a long-running service needs: on a signal, drain, flush, exit 0. */
export function installShutdown(options: InstallShutdownOptions): InstalledShutdown {
  const budget = shutdownBudget(options.timeoutMs, options.flushReserveMs);
  const log = options.log ?? ((line: string) => console.error(line));
  const exit = options.exit ?? ((code: number): void => process.exit(code));
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const tracked = (options.drain ?? []).map((d) => (isDrainable(d) ? d : trackConnections(d)));
  let running: Promise<ShutdownResult> | undefined;

  const shutdown = (reason = "shutdown requested"): Promise<ShutdownResult> => {
    running ??= (async () => {
      const result = await drainAndFlush({ ...options, flushReserveMs: budget.flushReserveMs, drain: tracked, log, reason });
      uninstall();
      exit(0, result);
      return result;
    })();
    return running;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      log(`[shutdown] ${signal} while stopping: ignored, the stop in progress ends within ${options.timeoutMs} ms of the first signal`);
      return;
    }
    void shutdown(signal);
  };
  const uninstall = (): void => {
    for (const signal of signals) process.off(signal, onSignal);
    for (const d of tracked) if (isTrackedConnections(d)) d.detach();
  };
  for (const signal of signals) process.on(signal, onSignal);
  return { shutdown, uninstall };
}

/**
 * Drains each of `drain` in order within the drain share of the budget, then
 * flushes with what is left of `timeoutMs`. No signals, no exit: for scripts,
 * serverless handlers and tests. The first drain starts before the first line
 * is logged, so "not accepting connections" is true when it is read.
 */
export async function drainAndFlush(options: ShutdownOptions & { reason?: string }): Promise<ShutdownResult> {
  const { timeoutMs } = options;
  const budget = shutdownBudget(timeoutMs, options.flushReserveMs);
  const started = performance.now();
  const drains = options.drain ?? [];
  const pending = drains.map((d) => d.describe());
  const first = drains[0]?.drain(budget.drainMs);
  const flushLine = `flushing traces (budget ${timeoutMs} ms, at least ${budget.flushReserveMs} ms for the flush)`;
  options.log?.(`[shutdown] ${options.reason ?? "shutdown requested"}: ${pending.length > 0 ? `${pending.join("; ")} within ${budget.drainMs} ms, then ${flushLine}` : flushLine}`);
  const outcomes: string[] = [];
  let drained = true;
  for (const [index, d] of drains.entries()) {
    const finished = await (index === 0 && first !== undefined ? first : d.drain(Math.max(0, budget.drainMs - (performance.now() - started))));
    drained &&= finished;
    outcomes.push(d.outcome(finished));
  }
  const flush = await flushTraces({ client: options.client, timeoutMs: Math.max(0, timeoutMs - (performance.now() - started)) });
  const result = { drained, outcomes, flush };
  options.log?.(`[shutdown] ${describeShutdown(result)}`);
  return result;
}

/** The summary: "in-flight requests finished; traces flushed in 12 ms", or what was cut off and what is lost. */
export function describeShutdown(result: ShutdownResult): string {
  const { flush } = result;
  const pending = flush.pending ? ` (${flush.pending.queuedBytes} bytes of runs queued, ${flush.pending.pendingSends} uploads pending)` : "";
  const errors = flush.errors.length > 0 ? `; errors: ${flush.errors.join("; ")}` : "";
  const traces = flush.flushed ? `traces flushed in ${flush.elapsedMs} ms` : `traces NOT flushed after ${flush.elapsedMs} ms${pending}, they are lost on exit${errors}`;
  return [...result.outcomes, traces].join("; ");
}

export interface ShutdownBudget {
  /** How long in-flight work (requests, jobs) may run before it is cut off. */
  drainMs: number;
  /** The least the flush gets: the budget minus `drainMs`. It also gets what the drain leaves unused. */
  flushReserveMs: number;
}

/** The default flush reserve: a quarter of the budget, at most 5 s. */
export function defaultFlushReserveMs(timeoutMs: number): number {
  return Math.min(timeoutMs / 4, 5_000);
}

/**
 * Splits a shutdown budget between draining in-flight work and flushing traces. Work that finishes
 * late in the drain has runs still to send, and a drain that times out has cut-off requests whose
 * runs end then, so the flush keeps a share of its own instead of getting what a slow drain leaves
 * (possibly 0 ms). A reserve larger than the budget takes all of it: nothing is drained, and the
 * runs of what was in flight end at once and are flushed.
 */
export function shutdownBudget(timeoutMs: number, flushReserveMs: number = defaultFlushReserveMs(timeoutMs)): ShutdownBudget {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`shutdownBudget: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  if (!Number.isFinite(flushReserveMs) || flushReserveMs < 0) throw new RangeError(`shutdownBudget: flushReserveMs must be a finite number >= 0, got ${flushReserveMs}`);
  const reserve = Math.min(flushReserveMs, timeoutMs);
  return { drainMs: timeoutMs - reserve, flushReserveMs: reserve };
}

export interface TrackedConnections extends Drainable {
  /** Requests whose response has not closed yet. */
  readonly inFlight: number;
  /** Stop tracking (removes the request listener). */
  detach(): void;
}

/**
 * Tracks a server's requests so that it can be closed within a deadline: `drain(ms)` stops
 * accepting connections and resolves true once every open one has ended, or false at the deadline
 * after cutting off the rest (once their responses have emitted "close", which is when the tracing
 * middleware ends their runs). server.close() alone resolves only when every connection has ended,
 * and Node closes a keep-alive connection only if it is idle at close() time: one that finishes its
 * request later stays open for keepAliveTimeout. So once closing, responses ask for "connection:
 * close", and each one that ends closes the idle connections. Call it right after creating the
 * server, so it sees every request.
 */
export function trackConnections(server: Server): TrackedConnections {
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  const onRequest = (_req: unknown, res: ServerResponse): void => {
    if (closing && !res.headersSent) res.setHeader("connection", "close");
    inFlight.add(res);
    res.once("close", () => {
      inFlight.delete(res);
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
  };
  // First, so the header is set before a synchronous handler answers.
  server.prependListener("request", onRequest);
  const drain = (timeoutMs: number): Promise<boolean> => {
    if (!server.listening) return Promise.resolve(true);
    return new Promise((resolve) => {
      closing = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close");
      let cutOff = false;
      const timer = setTimeout(() => {
        cutOff = true;
        server.closeAllConnections();
        void Promise.allSettled([...inFlight].map((res) => once(res, "close"))).then(() => resolve(false));
      }, timeoutMs);
      server.close(() => {
        clearTimeout(timer);
        if (!cutOff) resolve(true);
      });
      server.closeIdleConnections();
    });
  };
  return {
    describe: () => `not accepting connections; finishing ${inFlight.size} in-flight request(s)`,
    drain,
    outcome: (drained) => (drained ? "in-flight requests finished" : "in-flight requests cut off at the deadline"),
    get inFlight() {
      return inFlight.size;
    },
    detach: () => {
      server.off("request", onRequest);
    },
  };
}

function isDrainable(d: Server | Drainable): d is Drainable {
  return "drain" in d && typeof d.drain === "function";
}

function isTrackedConnections(d: Drainable): d is TrackedConnections {
  return "detach" in d && typeof d.detach === "function";
}
