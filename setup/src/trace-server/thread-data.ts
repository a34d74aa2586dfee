// Threads (conversations) read from the trace store, shared by the v2 thread
// routes (threads.ts) and the viewer's threads pages. A thread is the set of
// root runs (traces, "turns") of one project whose metadata names the same
// `thread_id`, `session_id` or `conversation_id`, the keys LangSmith's
// threads docs define (in that order of precedence, as `StoredRun.thread_id`).
// Every read that grows with the project spends the request's budget, in
// slices that let other requests through (query-budget.ts). Usage:
//   const budget = new RequestBudget(() => res.closed, "narrow it (a shorter window)");
//   const threads = await threadsInProject(store, projectId, { min, max }, budget);  // Map id -> roots, oldest first
//   const turns = await threadTraces(store, projectId, "chat-42", budget);           // every turn of one thread
//   const facts = await factsWithin(store, turns, budget);                          // tokens, cost, errors per turn
import type { RequestBudget } from "./query-budget.js";
import type { ThreadRootRow, TraceStore } from "./store.js";
import { latencySeconds, quantile, usageCost } from "./stats.js";
import { timeToMs } from "./time.js";
import type { JsonObject, StoredRun } from "./types.js";
import { preview } from "./v2.js";

/** The threads with at least one trace in the window, each with its traces oldest first. */
export async function threadsInProject(store: TraceStore, projectId: string, window: TimeWindow, budget: RequestBudget): Promise<Map<string, StoredRun[]>> {
  const threads = new Map<string, StoredRun[]>();
  for (const root of await candidateRoots(store, projectId, window, budget)) {
    const id = root.thread_id as string;
    const turns = threads.get(id);
    if (turns) turns.push(root);
    else threads.set(id, [root]);
  }
  return threads;
}

/** Every trace of one thread, in turn order (start time, then trace id). */
export async function threadTraces(store: TraceStore, projectId: string, threadId: string, budget: RequestBudget): Promise<StoredRun[]> {
  return (await candidateRoots(store, projectId, {}, budget, threadId)).filter((r) => r.thread_id === threadId);
}

/** traceFacts of each root, in order; each run read costs the budget a unit. */
export async function factsWithin(store: TraceStore, roots: readonly StoredRun[], budget: RequestBudget): Promise<TraceFacts[]> {
  const facts: TraceFacts[] = [];
  for (const root of roots) {
    const runs = store.getTraceRuns(root.trace_id).filter((r) => r.session_id === root.session_id);
    facts.push(traceFacts(store, root, runs));
    await budget.spend(runs.length);
  }
  return facts;
}

/** Longest thread id accepted in a URL; metadata values are free text, URLs are not. */
export const MAX_THREAD_ID_LENGTH = 1024;

export interface TimeWindow {
  /** Inclusive lower bound on a trace's start time (normalized ISO). */
  min?: string;
  /** Exclusive upper bound. */
  max?: string;
}

/** Roots read per store query: each query scans at most this many rows. */
const ROOT_PAGE = 500;

/**
 * Root runs of the project that may belong to a thread (to `threadId`, when given), in turn
 * order: start time, then id. Each root scanned costs a unit, each one read another.
 */
async function candidateRoots(store: TraceStore, projectId: string, window: TimeWindow, budget: RequestBudget, threadId?: string): Promise<StoredRun[]> {
  const roots: StoredRun[] = [];
  for (let after: ThreadRootRow | undefined, full = true; full; ) {
    const rows = store.threadRootPage(projectId, { min: window.min, max: window.max, threadId, after, limit: ROOT_PAGE });
    let read = 0;
    for (const row of rows) {
      if (!row.threaded) continue;
      const run = store.getRun(row.id);
      read += 1;
      if (run !== undefined && run.thread_id !== null) roots.push(run);
    }
    await budget.spend(rows.length + read);
    after = rows[rows.length - 1];
    full = rows.length === ROOT_PAGE;
  }
  return roots;
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
export async function threadSummary(store: TraceStore, threadId: string, turns: readonly StoredRun[], budget: RequestBudget): Promise<JsonObject> {
  const facts = await factsWithin(store, turns, budget);
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
