/**
 * Sending the runs the SDK still holds, with a deadline.
 *
 *   const result = await flushTraces({ timeoutMs: 5_000 });
 *   if (!result.flushed) console.error(`runs still pending: ${JSON.stringify(result.pending)}`);
 *
 * The SDK sends runs in background batches; `client.awaitPendingTraceBatches()`
 * waits for them, but as long as the backend makes it: with a backend that
 * accepts connections and never answers, each batch takes the client's
 * `timeout_ms` (90 s by default) and only `traceBatchConcurrency` (5) are sent
 * at a time. This waits for LangChain's background callbacks (which end LLM
 * runs; skipped when @langchain/core is not installed) and for the batches of
 * the given clients, the SDK's shared ones and the samplers' (sampling.ts), and returns at `timeoutMs`
 * whatever happens. What is still pending then keeps being sent in the
 * background; it is lost if the process exits.
 */
import { createRequire } from "node:module";
import path from "node:path";
import type { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { tailClients } from "./tail.js";

/** Anything with the SDK client's flush (a Client, or a stand-in in tests). */
export type FlushableClient = Pick<Client, "awaitPendingTraceBatches">;

export interface FlushOptions {
  /** Clients to flush in addition to the SDK's shared ones (traceable's default client). */
  client?: FlushableClient | readonly FlushableClient[];
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

export async function flushTraces(options: FlushOptions): Promise<FlushResult> {
  const { timeoutMs } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`flushTraces: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  const started = performance.now();
  const clients = clientsToFlush(options.client);
  const errors: string[] = [];
  const work = (async () => {
    try {
      await awaitLangChainCallbacks();
    } catch (error) {
      errors.push(`LangChain callbacks: ${message(error)}`);
    }
    const settled = await Promise.allSettled(clients.map((c) => c.awaitPendingTraceBatches()));
    for (const outcome of settled) if (outcome.status === "rejected") errors.push(message(outcome.reason));
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

/**
 * The SDK's process-wide RunTree clients that already exist (traceable's default). Both module
 * formats are checked: tslab notebooks load the SDK's CommonJS build while ESM code imports its
 * ESM build, and each has its own RunTree class. Reads the SDK's private `sharedClient` field; if a
 * future SDK drops it, this returns [] and only the clients passed explicitly are flushed.
 */
export function existingSharedClients(): Client[] {
  const holders: unknown[] = [RunTree];
  try {
    // The class lives in lib/; entry shims like langsmith/traceable load it without loading langsmith/run_trees.
    const cjsPath = path.join(path.dirname(cjsRequire.resolve("langsmith/run_trees")), "lib", "run_trees.js");
    const cached = cjsRequire.cache[cjsPath];
    if (cached) holders.push((cached.exports as { RunTree?: unknown }).RunTree);
  } catch {
    // No CommonJS build resolvable: nothing else to inspect.
  }
  const clients: Client[] = [];
  for (const holder of holders) {
    const client = (holder as { sharedClient?: Client } | undefined)?.sharedClient;
    if (client && !clients.includes(client)) clients.push(client);
  }
  return clients;
}

const cjsRequire = createRequire(import.meta.url);

let langChainCallbacks: Promise<(() => Promise<void>) | undefined> | undefined;

/** LangChain ends LLM runs in background callbacks by default; without @langchain/core there are none. */
function awaitLangChainCallbacks(): Promise<void> {
  langChainCallbacks ??= import("@langchain/core/callbacks/promises").then(
    (module) => module.awaitAllCallbacks,
    () => undefined,
  );
  return langChainCallbacks.then((awaitAll) => awaitAll?.());
}

interface ClientInternals {
  autoBatchQueue?: { sizeBytes?: number };
  _compressedBuffers?: Map<unknown, { buffer?: { uncompressedSize?: number } }>;
  batchIngestCaller?: { queue?: { size?: number; pending?: number } };
}

function pendingWork(clients: readonly FlushableClient[]): PendingWork | undefined {
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

function clientsToFlush(client: FlushOptions["client"]): FlushableClient[] {
  const given: readonly FlushableClient[] = client === undefined ? [] : isList(client) ? client : [client];
  return [...new Set([...given, ...existingSharedClients(), ...tailClients()])];
}

function isList(client: FlushableClient | readonly FlushableClient[]): client is readonly FlushableClient[] {
  return Array.isArray(client);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
