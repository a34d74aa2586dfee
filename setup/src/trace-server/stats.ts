// Run statistics, the numbers behind LangSmith's monitoring charts, shared by
// `POST /runs/stats` (run-stats-route.ts, the SDK's `client.getRunStats`), the
// thread routes and the viewer's stats panel. Both read within the request's
// budget (query-budget.ts), in slices that let other requests through. Usage:
//   const budget = new RequestBudget(() => res.closed, "narrow it (start_time)");
//   const runs = await allMatchingRuns(store, { projectIds: [id], isRoot: true }, budget);
//   const stats = await runStats(store, runs, budget);
// Percentiles are nearest-rank: the value at index floor(q * n) of the sorted
// values (p50 of 1, 2, 3, 4 is 3), the same rule as the project stats of
// `GET /sessions?include_stats=true`.
import { HttpError } from "./body.js";
import type { RequestBudget } from "./query-budget.js";
import type { TraceStore } from "./store.js";
import { timeToMs } from "./time.js";
import type { JsonObject, RunQuery, StoredRun } from "./types.js";
import { isJsonObject } from "./wire.js";

/** LangSmith's `RunStats` (v1 `POST /runs/stats`). Costs are null unless runs report them. */
export interface RunStats {
  run_count: number;
  latency_p50: number | null;
  latency_p99: number | null;
  latency_avg: number | null;
  first_token_p50: number | null;
  first_token_p99: number | null;
  total_tokens: number;
  prompt_tokens: number;
  completion_tokens: number;
  median_tokens: number | null;
  completion_tokens_p50: number | null;
  prompt_tokens_p50: number | null;
  tokens_p99: number | null;
  completion_tokens_p99: number | null;
  prompt_tokens_p99: number | null;
  last_run_start_time: string | null;
  feedback_stats: JsonObject | null;
  run_facets: null;
  error_rate: number | null;
  streaming_rate: number | null;
  total_cost: number | null;
  prompt_cost: number | null;
  completion_cost: number | null;
  cost_p50: number | null;
  cost_p99: number | null;
}

/**
 * Statistics of the matched runs (see RunStats and the header for the
 * percentile rule). Tokens and costs are those of the LLM runs in the matched
 * runs' subtrees, each once: a root and the LLM call below it both matching
 * count the call's tokens once. Each run read costs the budget a unit.
 */
export async function runStats(store: TraceStore, runs: readonly StoredRun[], budget: RequestBudget): Promise<RunStats> {
  const traceLlms = new Map<string, StoredRun[]>();
  for (const { trace_id: traceId } of runs) {
    if (traceLlms.has(traceId)) continue;
    const traceRuns = store.getTraceRuns(traceId);
    traceLlms.set(traceId, traceRuns.filter((r) => r.run_type === "llm"));
    await budget.spend(traceRuns.length);
  }
  // Per run: the LLM runs in its subtree, and when its first token came. Matching a run against
  // its trace's LLM runs reads nothing, so it costs no units, but it still yields between slices.
  const subtrees: StoredRun[][] = [];
  const firstTokens: Array<number | null> = [];
  for (const r of runs) {
    subtrees.push((traceLlms.get(r.trace_id) ?? []).filter((l) => inSubtree(l, r)));
    const t = store.subtreeFirstTokenTime(r);
    firstTokens.push(t && r.start_time ? (timeToMs(t) - timeToMs(r.start_time)) / 1000 : null);
    await budget.spend(1);
  }
  const seen = new Map<string, StoredRun>();
  for (const subtree of subtrees) for (const l of subtree) seen.set(l.id, l);
  const llms = [...seen.values()];
  const costs = llms.map(usageCost);
  const anyCost = costs.some((c) => c !== null);
  const latencies = ascending(runs.map(latencySeconds));
  const firstTokenSorted = ascending(firstTokens);
  const total = ascending(runs.map((r) => r.total_tokens ?? 0));
  const prompt = ascending(runs.map((r) => r.prompt_tokens ?? 0));
  const completion = ascending(runs.map((r) => r.completion_tokens ?? 0));
  const runCosts = anyCost ? ascending(subtrees.map((subtree) => sum(subtree.map((l) => usageCost(l)?.total ?? null)))) : [];
  const n = runs.length;
  return {
    run_count: n,
    latency_p50: quantile(latencies, 0.5),
    latency_p99: quantile(latencies, 0.99),
    latency_avg: latencies.length ? sum(latencies) / latencies.length : null,
    first_token_p50: quantile(firstTokenSorted, 0.5),
    first_token_p99: quantile(firstTokenSorted, 0.99),
    total_tokens: sum(llms.map((l) => l.total_tokens)),
    prompt_tokens: sum(llms.map((l) => l.prompt_tokens)),
    completion_tokens: sum(llms.map((l) => l.completion_tokens)),
    median_tokens: quantile(total, 0.5),
    completion_tokens_p50: quantile(completion, 0.5),
    prompt_tokens_p50: quantile(prompt, 0.5),
    tokens_p99: quantile(total, 0.99),
    completion_tokens_p99: quantile(completion, 0.99),
    prompt_tokens_p99: quantile(prompt, 0.99),
    last_run_start_time: runs.reduce<string | null>((max, r) => (r.start_time && (max === null || r.start_time > max) ? r.start_time : max), null),
    feedback_stats: await feedbackStats(store, runs, budget),
    run_facets: null,
    error_rate: n ? runs.filter((r) => r.error !== null).length / n : null,
    streaming_rate: n ? firstTokens.filter((t) => t !== null).length / n : null,
    total_cost: anyCost ? sum(costs.map((c) => c?.total ?? null)) : null,
    prompt_cost: anyCost ? sum(costs.map((c) => c?.prompt ?? null)) : null,
    completion_cost: anyCost ? sum(costs.map((c) => c?.completion ?? null)) : null,
    cost_p50: quantile(runCosts, 0.5),
    cost_p99: quantile(runCosts, 0.99),
  };
}

/**
 * Every run a store query matches, through its cursor, scanned in the budget's slices; refuses
 * more than MAX_STATS_RUNS, and a scan that spends the budget, since stats over part of the runs
 * would be wrong.
 */
export async function allMatchingRuns(store: TraceStore, query: RunQuery, budget: RequestBudget, urlBase?: string): Promise<StoredRun[]> {
  const runs: StoredRun[] = [];
  let cursor: string | undefined;
  do {
    const page = store.queryRuns({ ...query, ...(cursor === undefined ? {} : { cursor }), limit: 100 }, { budget: budget.scan(), ...(urlBase === undefined ? {} : { urlBase }) });
    runs.push(...page.runs);
    if (runs.length > MAX_STATS_RUNS) {
      throw new HttpError(422, `the query matches more than ${MAX_STATS_RUNS} runs, more than the local server computes stats over; narrow it (start_time, end_time, filter, is_root)`);
    }
    cursor = page.nextCursor ?? undefined;
    // Refuses a scan that spent the budget; a page cut short by its slice lets other requests in.
    await budget.spend(0);
  } while (cursor !== undefined);
  return runs;
}

/** Runs one stats request may cover; past it the answer would take too long, so it is refused. */
export const MAX_STATS_RUNS = 200_000;

/** Nearest-rank percentile of ascending values (see the header). */
export function quantile(sorted: readonly number[], q: number): number | null {
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null) : null;
}

export function latencySeconds(run: Pick<StoredRun, "start_time" | "end_time">): number | null {
  return run.start_time && run.end_time ? (timeToMs(run.end_time) - timeToMs(run.start_time)) / 1000 : null;
}

/**
 * The cost an LLM run reports in its usage metadata (`input_cost`,
 * `output_cost`, `total_cost`, as LangSmith's "send costs yourself" docs put
 * them), or null. LangSmith also prices runs from a model price table; the
 * local server has none.
 */
export function usageCost(run: Pick<StoredRun, "outputs">): Cost | null {
  const outputs = run.outputs ?? {};
  const generations = outputs.generations;
  const firstGen = Array.isArray(generations) ? (Array.isArray(generations[0]) ? generations[0][0] : generations[0]) : undefined;
  const message = obj(obj(firstGen)?.message);
  for (const candidate of [outputs.usage_metadata, obj(obj(outputs.message)?.kwargs)?.usage_metadata, obj(message?.kwargs)?.usage_metadata, message?.usage_metadata]) {
    const u = obj(candidate);
    if (!u) continue;
    const num = (k: string): number | null => (typeof u[k] === "number" && Number.isFinite(u[k]) ? u[k] : null);
    const prompt = num("input_cost");
    const completion = num("output_cost");
    const total = num("total_cost") ?? (prompt !== null || completion !== null ? (prompt ?? 0) + (completion ?? 0) : null);
    if (total !== null) return { prompt, completion, total };
  }
  return null;
}

/** Feedback on these runs, per key: `{ n, avg }` (avg over numeric scores, null without any). */
export async function feedbackStats(store: TraceStore, runs: readonly Pick<StoredRun, "id">[], budget: RequestBudget): Promise<JsonObject | null> {
  const perKey = new Map<string, { n: number; scores: number[] }>();
  const ids = runs.map((r) => r.id);
  for (let i = 0; i < ids.length; i += 500) {
    const feedback = store.listFeedback({ runIds: ids.slice(i, i + 500), limit: -1 });
    for (const f of feedback) {
      if (typeof f.key !== "string") continue;
      const entry = perKey.get(f.key) ?? { n: 0, scores: [] };
      entry.n++;
      if (typeof f.score === "number") entry.scores.push(f.score);
      else if (typeof f.score === "boolean") entry.scores.push(f.score ? 1 : 0);
      perKey.set(f.key, entry);
    }
    await budget.spend(feedback.length);
  }
  if (perKey.size === 0) return null;
  return Object.fromEntries([...perKey].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { n: v.n, avg: v.scores.length ? sum(v.scores) / v.scores.length : null }]));
}

type Cost = { prompt: number | null; completion: number | null; total: number | null };

function obj(v: unknown): JsonObject | undefined {
  return isJsonObject(v) ? v : undefined;
}

/** Whether `run` is `ancestor` or below it, by dotted order. */
function inSubtree(run: Pick<StoredRun, "dotted_order">, ancestor: Pick<StoredRun, "dotted_order">): boolean {
  return run.dotted_order === ancestor.dotted_order || run.dotted_order.startsWith(`${ancestor.dotted_order}.`);
}

const sum = (values: Iterable<number | null>): number => {
  let total = 0;
  for (const v of values) total += v ?? 0;
  return total;
};
const ascending = (values: Iterable<number | null>): number[] => [...values].filter((v): v is number => v !== null).sort((a, b) => a - b);
