import { Client, type Run } from "langsmith";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { existingSharedClients } from "../service.js";
import { toMs } from "./tree.js";

export interface ReadTraceOptions {
  /** Client to read with (and to flush first). Default: a new Client configured from the environment. */
  client?: Client;
  /** Restrict to one project. Default: all projects, since services may write to different ones. */
  projectName?: string;
  /** Keep polling until at least this many runs are visible. */
  expectRuns?: number;
  /** Give up polling after this long and return what is visible. Default 10000. */
  timeoutMs?: number;
  /** Return once the run set has not changed for this long, every run has ended and expectRuns is met. Default 1000. */
  settleMs?: number;
  /** Pause between polls. Default 100. */
  pollMs?: number;
}

function isComplete(runs: Run[], expectRuns: number | undefined): { ended: boolean; connected: boolean; enough: boolean } {
  const ids = new Set(runs.map((r) => r.id));
  return {
    ended: runs.every((r) => toMs(r.end_time) !== undefined),
    connected: runs.every((r) => !r.parent_run_id || ids.has(r.parent_run_id)),
    enough: runs.length >= (expectRuns ?? 1),
  };
}

function fingerprint(runs: Run[]): string {
  return runs
    .map((r) => `${r.id}:${r.end_time ?? ""}`)
    .sort()
    .join(",");
}

/**
 * All runs of a trace, read back through the SDK's Client (so it works the same against LangSmith).
 * Ingestion is asynchronous, so it first flushes this process's pending batches, then polls
 * listRuns({ traceId }) until every run has ended, every parent is present and expectRuns is met
 * (or, failing the parent check, the set has been stable for settleMs). At the deadline it returns
 * what is visible; verifyTrace then reports what is missing. Throws only if nothing is visible.
 */
export async function readTrace(traceId: string, options: ReadTraceOptions = {}): Promise<Run[]> {
  const { projectName, expectRuns, timeoutMs = 10_000, settleMs = 1_000, pollMs = 100 } = options;
  const client = options.client ?? new Client();
  const toFlush = new Set<Client>([client, ...existingSharedClients()]);
  await awaitAllCallbacks();
  await Promise.all([...toFlush].map((c) => c.awaitPendingTraceBatches()));

  const deadline = Date.now() + timeoutMs;
  let runs: Run[] = [];
  let lastError: unknown;
  let lastPrint = "";
  let stableSince = Date.now();
  for (;;) {
    try {
      const found: Run[] = [];
      for await (const run of client.listRuns({ traceId, ...(projectName ? { projectName } : {}) })) found.push(run);
      runs = found;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const print = fingerprint(runs);
    if (print !== lastPrint) {
      lastPrint = print;
      stableSince = Date.now();
    }
    const state = isComplete(runs, expectRuns);
    if (runs.length > 0 && state.ended && state.enough && (state.connected || Date.now() - stableSince >= settleMs)) return runs;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
  if (runs.length === 0) {
    const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
    const where = options.client ? "through the given client" : `at ${process.env.LANGSMITH_ENDPOINT ?? "the default LangSmith endpoint"}`;
    throw new Error(`No runs of trace ${traceId} visible ${where} after ${timeoutMs} ms${reason}`);
  }
  return runs;
}
