import { once } from "node:events";
import { readdir, readFile, unlink } from "node:fs/promises";
import type { Server, ServerResponse } from "node:http";
import path from "node:path";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { Client } from "langsmith";
import { existingSharedClients } from "./service.js";

export interface FlushOptions {
  /** Clients to flush in addition to the SDK's shared ones (traceable's default client). */
  client?: Client | readonly Client[];
  /** The deadline, in milliseconds. flushTraces returns by then whatever the backend does. */
  timeoutMs: number;
}

/** What the SDK still holds for sending, read from its private fields (undefined if they change). */
export interface PendingWork {
  /**
   * The SDK's estimate of the serialized size of run operations not yet in an upload: queued,
   * waiting to be compressed, or in an open compressed buffer.
   */
  queuedBytes: number;
  /** Uploads waiting for a slot or in flight (one per batch; an upload being retried counts once). */
  pendingSends: number;
}

export interface FlushResult {
  /**
   * True when nothing was left to send before the deadline. That means sent *or given up on*:
   * the SDK also settles a batch once its retries are exhausted (it logs the failure), so true is
   * not proof of delivery.
   */
  flushed: boolean;
  elapsedMs: number;
  /** How many clients were flushed. */
  clients: number;
  /** What was still pending when flushTraces returned, over all clients. */
  pending: PendingWork | undefined;
  /** Failures of the flush calls themselves (the SDK normally logs and swallows send errors). */
  errors: string[];
}

interface ClientInternals {
  autoBatchQueue?: { sizeBytes?: number };
  _compressedBuffers?: Map<unknown, { buffer?: { uncompressedSize?: number } }>;
  batchIngestCaller?: { queue?: { size?: number; pending?: number } };
}

function pendingWork(clients: readonly Client[]): PendingWork | undefined {
  let queuedBytes = 0;
  let pendingSends = 0;
  for (const client of clients) {
    const internals = client as unknown as ClientInternals;
    const queued = internals.autoBatchQueue?.sizeBytes;
    const queue = internals.batchIngestCaller?.queue;
    const buffers = internals._compressedBuffers;
    if (typeof queued !== "number" || typeof queue?.size !== "number" || typeof queue.pending !== "number" || !(buffers instanceof Map)) {
      return undefined;
    }
    queuedBytes += queued;
    for (const entry of buffers.values()) queuedBytes += entry.buffer?.uncompressedSize ?? 0;
    pendingSends += queue.size + queue.pending;
  }
  return { queuedBytes, pendingSends };
}

function clientsToFlush(client: FlushOptions["client"]): Client[] {
  const given = client === undefined ? [] : client instanceof Client ? [client] : [...client];
  return [...new Set([...given, ...existingSharedClients()])];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Waits for LangChain's background callbacks and the pending trace batches of the given clients
 * and the SDK's shared clients, but never longer than `timeoutMs`. `awaitPendingTraceBatches()`
 * alone waits as long as the backend makes it: with a backend that accepts connections and never
 * answers, each batch takes the client's `timeout_ms` (90 s by default) and only
 * `traceBatchConcurrency` (5) are sent at a time. What is still pending at the deadline keeps being
 * sent in the background; it is lost if the process exits.
 */
export async function flushTraces(options: FlushOptions): Promise<FlushResult> {
  const { timeoutMs } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`flushTraces: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  const started = performance.now();
  const clients = clientsToFlush(options.client);
  const errors: string[] = [];
  const work = (async () => {
    try {
      await awaitAllCallbacks();
    } catch (error) {
      errors.push(`LangChain callbacks: ${describe(error)}`);
    }
    const settled = await Promise.allSettled(clients.map((c) => c.awaitPendingTraceBatches()));
    for (const outcome of settled) if (outcome.status === "rejected") errors.push(describe(outcome.reason));
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const finished = await Promise.race([work.then(() => true), deadline]);
  clearTimeout(timer);
  return {
    flushed: finished && errors.length === 0,
    elapsedMs: Math.round(performance.now() - started),
    clients: clients.length,
    pending: pendingWork(clients),
    errors,
  };
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

export interface GracefulShutdownOptions {
  /** The whole budget from the signal to exit: draining in-flight requests, then flushing traces. */
  timeoutMs: number;
  /**
   * The part of `timeoutMs` kept for the flush: requests still running at `timeoutMs -
   * flushReserveMs` are cut off. Default `defaultFlushReserveMs(timeoutMs)`, a quarter of the
   * budget and at most 5 s; a value above `timeoutMs` gives the flush the whole budget.
   */
  flushReserveMs?: number;
  /** Clients to flush besides the SDK's shared ones. */
  client?: Client | readonly Client[];
  /** Default SIGTERM and SIGINT. A second signal during shutdown exits at once with code 1. */
  signals?: readonly NodeJS.Signals[];
  /** Default console.error. */
  log?: (line: string) => void;
  /**
   * Default process.exit. Called with 0 and the result after a shutdown, whether or not every
   * trace was flushed; with 1 and no result on a second signal.
   */
  exit?: (code: number, result?: ShutdownResult) => void;
}

export interface ShutdownResult {
  /** Every in-flight request finished before the budget ran out (else the rest were cut off). */
  drained: boolean;
  flush: FlushResult;
}

export interface GracefulShutdown {
  /** Runs the shutdown now (as a signal would), then calls `exit`. Repeated calls share one run. */
  shutdown(reason?: string): Promise<ShutdownResult>;
  /** Removes the signal handlers and the request listener. */
  uninstall(): void;
}

function summarize(result: ShutdownResult): string {
  const { flush } = result;
  const requests = result.drained ? "in-flight requests finished" : "in-flight requests cut off at the deadline";
  if (flush.flushed) return `${requests}; traces flushed in ${flush.elapsedMs} ms`;
  const pending = flush.pending ? ` (${flush.pending.queuedBytes} bytes of runs queued, ${flush.pending.pendingSends} uploads pending)` : "";
  const errors = flush.errors.length > 0 ? `; errors: ${flush.errors.join("; ")}` : "";
  return `${requests}; traces NOT flushed after ${flush.elapsedMs} ms${pending}, they are lost on exit${errors}`;
}

export interface TrackedConnections {
  /**
   * Stop accepting connections; resolve true once every open one has ended, or false at the
   * deadline after cutting off the rest (once their responses have emitted "close").
   */
  close(timeoutMs: number): Promise<boolean>;
  /** Requests whose response has not closed yet. */
  readonly inFlight: number;
  /** Stop tracking (removes the request listener). */
  detach(): void;
}

/**
 * Tracks a server's requests so that it can be closed within a deadline. server.close() alone
 * resolves only when every connection has ended, and Node closes a keep-alive connection only if
 * it is idle at close() time: one that finishes its request later stays open for keepAliveTimeout.
 * So once closing, responses ask for "connection: close", and each one that ends closes the idle
 * connections. Call it right after creating the server, so it sees every request.
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
  return {
    close: (timeoutMs) =>
      new Promise((resolve) => {
        closing = true;
        for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close");
        let cutOff = false;
        const timer = setTimeout(() => {
          cutOff = true;
          server.closeAllConnections();
          // The cut-off responses emit "close" a tick later, which is when a tracing middleware
          // ends their runs: resolving after that lets a flush that follows include those runs.
          void Promise.allSettled([...inFlight].map((res) => once(res, "close"))).then(() => resolve(false));
        }, timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          if (!cutOff) resolve(true);
        });
        server.closeIdleConnections();
      }),
    get inFlight() {
      return inFlight.size;
    },
    detach: () => {
      server.off("request", onRequest);
    },
  };
}

/**
 * On SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish (their runs end
 * when the response does) for up to `timeoutMs - flushReserveMs`, cut off the rest, flush traces
 * with what is left of `timeoutMs`, then exit. Bounded, so neither a hung request nor a hung trace
 * backend can keep the process from exiting before the orchestrator's SIGKILL.
 */
export function installGracefulShutdown(server: Server, options: GracefulShutdownOptions): GracefulShutdown {
  const { timeoutMs } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`installGracefulShutdown: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  const budget = shutdownBudget(timeoutMs, options.flushReserveMs);
  const log = options.log ?? ((line: string) => console.error(line));
  const exit = options.exit ?? ((code: number): void => process.exit(code));
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  const connections = trackConnections(server);
  let running: Promise<ShutdownResult> | undefined;

  const shutdown = (reason = "shutdown requested"): Promise<ShutdownResult> => {
    running ??= (async () => {
      const started = performance.now();
      const requests = connections.inFlight;
      // close() stops listening synchronously, so the line below is true when it is printed.
      const draining = server.listening ? connections.close(budget.drainMs) : Promise.resolve(true);
      log(
        `[shutdown] ${reason}: not accepting connections; finishing ${requests} in-flight request(s) within ${budget.drainMs} ms, ` +
          `then flushing traces (budget ${timeoutMs} ms, at least ${budget.flushReserveMs} ms for the flush)`,
      );
      const drained = await draining;
      const flush = await flushTraces({ client: options.client, timeoutMs: Math.max(0, timeoutMs - (performance.now() - started)) });
      const result = { drained, flush };
      log(`[shutdown] ${summarize(result)}`);
      uninstall();
      exit(0, result);
      return result;
    })();
    return running;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      log(`[shutdown] second ${signal}: exiting now`);
      exit(1);
      return;
    }
    void shutdown(signal);
  };
  const uninstall = (): void => {
    for (const signal of signals) process.off(signal, onSignal);
    connections.detach();
  };
  for (const signal of signals) process.on(signal, onSignal);
  return { shutdown, uninstall };
}

export interface ReplayOptions {
  /** The SDK's fallback directory. Default: LANGSMITH_FAILED_TRACES_DIR. */
  dir?: string;
  /** Where to send. Default: what a Client would use (LANGSMITH_ENDPOINT, else LangSmith). */
  apiUrl?: string;
  /** Sent as x-api-key. Default: what a Client would use (LANGSMITH_API_KEY). */
  apiKey?: string;
  /** Per file. Default 30000. */
  timeoutMs?: number;
}

export interface ReplayFailure {
  file: string;
  /** HTTP status, when the backend answered. */
  status?: number;
  error: string;
}

export interface ReplayResult {
  /** Files the backend accepted (2xx); they were deleted. */
  replayed: string[];
  /** Files kept because they were refused or unreadable. */
  failed: ReplayFailure[];
  /** Files not tried because the backend was unreachable; they were kept. */
  skipped: string[];
}

interface FailedTraceEnvelope {
  version: 1;
  endpoint: "runs/multipart";
  headers: Record<string, string>;
  body_base64: string;
}

function parseEnvelope(text: string): FailedTraceEnvelope | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  const v = value as Partial<Record<keyof FailedTraceEnvelope, unknown>> | null;
  if (typeof v !== "object" || v === null) return "not an object";
  if (v.version !== 1) return `unknown version ${JSON.stringify(v.version)}`;
  // The only endpoint langsmith 0.12 saves failed uploads for; anything else is not its file.
  if (v.endpoint !== "runs/multipart") return `unexpected endpoint ${JSON.stringify(v.endpoint)}`;
  if (typeof v.body_base64 !== "string") return "no body_base64";
  const headers = v.headers;
  if (typeof headers !== "object" || headers === null || Object.values(headers).some((h) => typeof h !== "string")) return "bad headers";
  return v as FailedTraceEnvelope;
}

/**
 * Sends the batches the SDK saved to LANGSMITH_FAILED_TRACES_DIR (the batches whose upload failed
 * after its retries) to the backend, oldest first, deleting each one the backend accepts. The
 * local trace server upserts by run id, so replaying a file twice stores nothing twice. Stops at
 * the first connection failure and keeps the remaining files.
 */
export async function replayFailedTraces(options: ReplayOptions = {}): Promise<ReplayResult> {
  const dir = options.dir ?? process.env.LANGSMITH_FAILED_TRACES_DIR;
  if (!dir) throw new Error("replayFailedTraces: no directory (pass dir or set LANGSMITH_FAILED_TRACES_DIR)");
  const defaults = Client.getDefaultClientConfig();
  const apiUrl = (options.apiUrl ?? defaults.apiUrl).replace(/\/+$/, "");
  const apiKey = options.apiKey ?? defaults.apiKey;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { replayed: [], failed: [], skipped: [] };
    throw error;
  }
  // The SDK writes trace_<epoch ms>_<random>.json atomically (through a .tmp file and a rename).
  const files = names.filter((n) => /^trace_\d+_[0-9a-f]+\.json$/.test(n)).sort();
  const result: ReplayResult = { replayed: [], failed: [], skipped: [] };
  for (const [index, file] of files.entries()) {
    const fullPath = path.join(dir, file);
    const envelope = parseEnvelope(await readFile(fullPath, "utf8"));
    if (typeof envelope === "string") {
      result.failed.push({ file, error: envelope });
      continue;
    }
    let response: Response;
    try {
      response = await fetch(`${apiUrl}/${envelope.endpoint}`, {
        method: "POST",
        headers: { ...envelope.headers, ...(apiKey ? { "x-api-key": apiKey } : {}) },
        body: Buffer.from(envelope.body_base64, "base64"),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      result.failed.push({ file, error: cause?.code ?? describe(error) });
      result.skipped.push(...files.slice(index + 1));
      break;
    }
    const body = await response.text();
    if (response.ok) {
      await unlink(fullPath);
      result.replayed.push(file);
    } else {
      result.failed.push({ file, status: response.status, error: body.slice(0, 500) });
    }
  }
  return result;
}
