// Threads (conversations) read from the trace store, shared by the v2 thread
// routes (threads.ts) and the viewer's threads pages. A thread is the set of
// root runs (traces, "turns") of one project whose metadata names the same
// `thread_id`, `session_id` or `conversation_id`, the keys LangSmith's
// threads docs define (in that order of precedence, as `StoredRun.thread_id`).
// Usage:
//   const threads = threadsInProject(store, projectId, { min, max });  // Map id -> roots, oldest first
//   const turns = threadTraces(store, projectId, "chat-42");            // every turn of one thread
//   const facts = traceFacts(store, turns[0]);                         // tokens, cost, errors of one turn
import type { TraceStore } from "./store.js";
import { Where } from "./store/where.js";
import { latencySeconds, quantile, usageCost } from "./stats.js";
import { timeToMs } from "./time.js";
import type { JsonObject, StoredRun } from "./types.js";
import { preview } from "./v2.js";

/** The threads with at least one trace in the window, each with its traces oldest first. */
export function threadsInProject(store: TraceStore, projectId: string, window: TimeWindow): Map<string, StoredRun[]> {
  const threads = new Map<string, StoredRun[]>();
  for (const root of candidateRoots(store, projectId, window)) {
    const id = root.thread_id as string;
    const turns = threads.get(id);
    if (turns) turns.push(root);
    else threads.set(id, [root]);
  }
  return threads;
}

/** Every trace of one thread, in turn order (start time, then trace id). */
export function threadTraces(store: TraceStore, projectId: string, threadId: string): StoredRun[] {
  return candidateRoots(store, projectId, {}, threadId).filter((r) => r.thread_id === threadId);
}

/** Longest thread id accepted in a URL; metadata values are free text, URLs are not. */
export const MAX_THREAD_ID_LENGTH = 1024;

export interface TimeWindow {
  /** Inclusive lower bound on a trace's start time (normalized ISO). */
  min?: string;
  /** Exclusive upper bound. */
  max?: string;
}

const THREAD_KEYS = ["thread_id", "session_id", "conversation_id"].map((k) => `json_extract(extra, '$.metadata.${k}')`);

/**
 * Root runs of the project that may belong to a thread, oldest first. SQL
 * narrows to roots carrying one of the keys (equal to `threadId` when given);
 * `StoredRun.thread_id` then applies the precedence exactly.
 */
function candidateRoots(store: TraceStore, projectId: string, window: TimeWindow, threadId?: string): StoredRun[] {
  const where = new Where()
    .add("project_id = ?", projectId)
    .add("parent_run_id IS NULL")
    .add("start_time >= ?", window.min)
    .add("start_time < ?", window.max)
    .when(threadId === undefined, `COALESCE(${THREAD_KEYS.join(", ")}) IS NOT NULL`)
    .add(`? IN (${THREAD_KEYS.join(", ")})`, threadId);
  const rows = store.db.prepare(`SELECT id FROM runs ${where.sql()} ORDER BY start_time, id`).all(...where.params) as Array<{ id: string }>;
  return rows.map((r) => store.getRun(r.id)).filter((r): r is StoredRun => r !== undefined && r.thread_id !== null);
}

/** What a thread's listing and stats need about one trace, from all of its runs. */
export interface TraceFacts {
  root: StoredRun;
  latency: number | null;
  /** When the first token of the trace was streamed, if any. */
  firstTokenTime: string | null;
  /** Seconds from the trace's start to its first streamed token, if any. */
  firstToken: number | null;
  totalTokens: number;
  promptTokens: number;
  completionTokens: number;
  /** Null unless a run of the trace reports a cost. */
  cost: { total: number; prompt: number; completion: number } | null;
  /** Some run of the trace failed (the root's own status is `root.error`). */
  hasError: boolean;
}

/** `runs`: the trace's runs in the root's project, when the caller has read them already. */
export function traceFacts(store: TraceStore, root: StoredRun, runs = store.getTraceRuns(root.trace_id).filter((r) => r.session_id === root.session_id)): TraceFacts {
  const llms = runs.filter((r) => r.run_type === "llm");
  const costs = llms.map(usageCost).filter((c) => c !== null);
  const first = store.subtreeFirstTokenTime(root);
  const add = (pick: (r: StoredRun) => number | null): number => llms.reduce((n, r) => n + (pick(r) ?? 0), 0);
  return {
    root,
    latency: latencySeconds(root),
    firstTokenTime: first,
    firstToken: first && root.start_time ? (timeToMs(first) - timeToMs(root.start_time)) / 1000 : null,
    totalTokens: add((r) => r.total_tokens),
    promptTokens: add((r) => r.prompt_tokens),
    completionTokens: add((r) => r.completion_tokens),
    cost: costs.length
      ? {
          total: costs.reduce((n, c) => n + (c.total ?? 0), 0),
          prompt: costs.reduce((n, c) => n + (c.prompt ?? 0), 0),
          completion: costs.reduce((n, c) => n + (c.completion ?? 0), 0),
        }
      : null,
    hasError: runs.some((r) => r.error !== null),
  };
}

const ascending = (values: ReadonlyArray<number | null>): number[] => values.filter((v): v is number => v !== null).sort((a, b) => a - b);

/** Totals over some traces (of one thread, or of many): what the viewer and the stats routes report. */
export interface TraceTotals {
  traces: number;
  erroredRoots: number;
  tracesWithError: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
  firstTokenP50: number | null;
  firstTokenP99: number | null;
  totalTokens: number;
  promptTokens: number;
  completionTokens: number;
  medianTokens: number | null;
  cost: TraceFacts["cost"];
  streamed: number;
  completed: number;
}

export function totalsOf(facts: readonly TraceFacts[]): TraceTotals {
  const latencies = ascending(facts.map((f) => f.latency));
  const firstTokens = ascending(facts.map((f) => f.firstToken));
  const costs = facts.map((f) => f.cost).filter((c) => c !== null);
  const add = (pick: (f: TraceFacts) => number): number => facts.reduce((n, f) => n + pick(f), 0);
  return {
    traces: facts.length,
    erroredRoots: facts.filter((f) => f.root.error !== null).length,
    tracesWithError: facts.filter((f) => f.hasError).length,
    latencyP50: quantile(latencies, 0.5),
    latencyP95: quantile(latencies, 0.95),
    latencyP99: quantile(latencies, 0.99),
    firstTokenP50: quantile(firstTokens, 0.5),
    firstTokenP99: quantile(firstTokens, 0.99),
    totalTokens: add((f) => f.totalTokens),
    promptTokens: add((f) => f.promptTokens),
    completionTokens: add((f) => f.completionTokens),
    medianTokens: quantile(ascending(facts.map((f) => f.totalTokens)), 0.5),
    cost: costs.length
      ? { total: costs.reduce((n, c) => n + c.total, 0), prompt: costs.reduce((n, c) => n + c.prompt, 0), completion: costs.reduce((n, c) => n + c.completion, 0) }
      : null,
    streamed: facts.filter((f) => f.firstToken !== null).length,
    completed: facts.filter((f) => f.root.end_time !== null).length,
  };
}

/** The feedback on these runs per key, `{ n, avg }`, merged from each run's `feedback_stats`. */
export function mergedFeedback(runs: readonly StoredRun[]): Record<string, { n: number; avg: number | null }> {
  // A Map: feedback keys are client text, "__proto__" included.
  const merged = new Map<string, { n: number; sum: number; scored: number }>();
  for (const r of runs) {
    for (const [key, stat] of Object.entries(r.feedback_stats ?? {})) {
      const { n, avg } = stat as { n: number; avg: number | null };
      const seen = merged.get(key) ?? { n: 0, sum: 0, scored: 0 };
      // avg covers the scored points only; without the per-point scores, weigh it by n.
      merged.set(key, { n: seen.n + n, sum: seen.sum + (avg ?? 0) * n, scored: seen.scored + (avg === null ? 0 : n) });
    }
  }
  return Object.fromEntries([...merged].map(([k, v]) => [k, { n: v.n, avg: v.scored ? v.sum / v.scored : null }]));
}

/** LangSmith's `Thread` summary of a thread's traces (oldest first) in the query window. */
export function threadSummary(store: TraceStore, threadId: string, turns: readonly StoredRun[]): JsonObject {
  const facts = turns.map((t) => traceFacts(store, t));
  const totals = totalsOf(facts);
  const first = turns[0];
  const last = turns[turns.length - 1];
  const lastFailed = [...turns].reverse().find((t) => t.error !== null);
  return {
    thread_id: threadId,
    count: turns.length,
    min_start_time: first?.start_time ?? null,
    max_start_time: last?.start_time ?? null,
    start_time: last?.start_time ?? null,
    first_trace_id: first?.trace_id ?? null,
    last_trace_id: last?.trace_id ?? null,
    trace_id: last?.trace_id ?? null,
    first_inputs: preview(first?.inputs) ?? "",
    last_outputs: preview(last?.outputs) ?? "",
    ...(lastFailed ? { last_error: preview(lastFailed.error) } : {}),
    latency_p50: totals.latencyP50,
    latency_p99: totals.latencyP99,
    num_errored_turns: totals.erroredRoots,
    total_tokens: totals.totalTokens,
    total_cost: totals.cost?.total ?? null,
    feedback_stats: mergedFeedback(turns),
    query_metadata: null,
  };
}
