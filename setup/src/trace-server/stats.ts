// Run statistics, the numbers behind LangSmith's monitoring charts, for
// `POST /runs/stats` (the SDK's `client.getRunStats`), the thread routes and
// the viewer's stats panel. Usage:
//   const stats = runStats(store, runs);              // runs: the matched StoredRuns
//   api.use(createRunStatsRouter(store, { requireApiKey, maxBodyBytes }));
// Percentiles are nearest-rank: the value at index floor(q * n) of the sorted
// values (p50 of 1, 2, 3, 4 is 3), the same rule as the project stats of
// `GET /sessions?include_stats=true`.
import express, { type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import type { TraceStore } from "./store.js";
import { normalizeTime, timeToMs } from "./time.js";
import type { JsonObject, RunQuery, StoredRun } from "./types.js";
import { isUuid } from "./validate.js";
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

/** Runs one stats request may cover; past it the answer would take too long, so it is refused. */
export const MAX_STATS_RUNS = 200_000;

/** Nearest-rank percentile of ascending values (see the header). */
export function quantile(sorted: readonly number[], q: number): number | null {
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null) : null;
}

export function latencySeconds(run: Pick<StoredRun, "start_time" | "end_time">): number | null {
  return run.start_time && run.end_time ? (timeToMs(run.end_time) - timeToMs(run.start_time)) / 1000 : null;
}

type Cost = { prompt: number | null; completion: number | null; total: number | null };

function obj(v: unknown): JsonObject | undefined {
  return isJsonObject(v) ? v : undefined;
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

export interface RunStatsOptions {
  /**
   * The LLM runs whose tokens and costs count. By default, those in the
   * subtrees of the matched runs, each once: a root and the LLM call below it
   * both matching counts the call's tokens once.
   */
  llmRuns?: readonly StoredRun[];
}

/** Statistics of the matched runs (see RunStats and the header for the percentile rule). */
export function runStats(store: TraceStore, runs: readonly StoredRun[], opts: RunStatsOptions = {}): RunStats {
  const traceLlms = new Map<string, StoredRun[]>();
  for (const { trace_id: traceId } of runs) {
    if (!traceLlms.has(traceId)) traceLlms.set(traceId, store.getTraceRuns(traceId).filter((r) => r.run_type === "llm"));
  }
  const subtreeLlms = (run: StoredRun): StoredRun[] => (traceLlms.get(run.trace_id) ?? []).filter((l) => inSubtree(l, run));

  let llms = opts.llmRuns;
  if (!llms) {
    const seen = new Map<string, StoredRun>();
    for (const r of runs) for (const l of subtreeLlms(r)) seen.set(l.id, l);
    llms = [...seen.values()];
  }
  const costs = llms.map(usageCost);
  const anyCost = costs.some((c) => c !== null);
  const perRunCost = (run: StoredRun): number | null => (anyCost ? sum(subtreeLlms(run).map((l) => usageCost(l)?.total ?? null)) : null);

  const firstTokens = runs.map((r) => {
    const t = store.subtreeFirstTokenTime(r);
    return t && r.start_time ? (timeToMs(t) - timeToMs(r.start_time)) / 1000 : null;
  });
  const latencies = ascending(runs.map(latencySeconds));
  const firstTokenSorted = ascending(firstTokens);
  const total = ascending(runs.map((r) => r.total_tokens ?? 0));
  const prompt = ascending(runs.map((r) => r.prompt_tokens ?? 0));
  const completion = ascending(runs.map((r) => r.completion_tokens ?? 0));
  const runCosts = anyCost ? ascending(runs.map(perRunCost)) : [];
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
    feedback_stats: feedbackStats(store, runs),
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

/** Feedback on these runs, per key: `{ n, avg }` (avg over numeric scores, null without any). */
export function feedbackStats(store: TraceStore, runs: readonly Pick<StoredRun, "id">[]): JsonObject | null {
  const perKey = new Map<string, { n: number; scores: number[] }>();
  const ids = runs.map((r) => r.id);
  for (let i = 0; i < ids.length; i += 500) {
    for (const f of store.listFeedback({ runIds: ids.slice(i, i + 500), limit: -1 })) {
      if (typeof f.key !== "string") continue;
      const entry = perKey.get(f.key) ?? { n: 0, scores: [] };
      entry.n++;
      if (typeof f.score === "number") entry.scores.push(f.score);
      else if (typeof f.score === "boolean") entry.scores.push(f.score ? 1 : 0);
      perKey.set(f.key, entry);
    }
  }
  if (perKey.size === 0) return null;
  return Object.fromEntries([...perKey].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { n: v.n, avg: v.scores.length ? sum(v.scores) / v.scores.length : null }]));
}

/** Every run a store query matches, through its cursor; refuses more than MAX_STATS_RUNS. */
export function allMatchingRuns(store: TraceStore, query: RunQuery, urlBase?: string): StoredRun[] {
  const runs: StoredRun[] = [];
  let cursor: string | undefined;
  do {
    const page = store.queryRuns({ ...query, ...(cursor === undefined ? {} : { cursor }), limit: 100 }, urlBase === undefined ? {} : { urlBase });
    runs.push(...page.runs);
    if (runs.length > MAX_STATS_RUNS) {
      throw new HttpError(422, `the query matches more than ${MAX_STATS_RUNS} runs, more than the local server computes stats over; narrow it (start_time, end_time, filter, is_root)`);
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return runs;
}

const STATS_SELECT = [
  "run_count", "latency_p50", "latency_p99", "latency_avg", "first_token_p50", "first_token_p99", "total_tokens", "prompt_tokens",
  "completion_tokens", "median_tokens", "completion_tokens_p50", "prompt_tokens_p50", "tokens_p99", "completion_tokens_p99",
  "prompt_tokens_p99", "last_run_start_time", "feedback_stats", "run_facets", "error_rate", "streaming_rate", "total_cost",
  "prompt_cost", "completion_cost", "cost_p50", "cost_p99",
] as const satisfies ReadonlyArray<keyof RunStats>;
const SELECT_GROUPS: Record<string, ReadonlyArray<keyof RunStats>> = {
  all_run_stats: STATS_SELECT,
  all_token_stats: ["total_tokens", "prompt_tokens", "completion_tokens", "median_tokens", "completion_tokens_p50", "prompt_tokens_p50", "tokens_p99", "completion_tokens_p99", "prompt_tokens_p99"],
};
const RUN_TYPES = ["tool", "chain", "llm", "retriever", "embedding", "prompt", "parser"];
const STATS_BODY = new Set([
  "id", "trace", "parent_run", "run_type", "session", "reference_example", "execution_order", "start_time", "end_time", "error", "query",
  "filter", "trace_filter", "tree_filter", "is_root", "data_source_type", "skip_pagination", "search_filter", "use_experimental_search",
  "group_by", "groups", "select",
]);

type GroupBy = { attribute: "name" | "run_type" | "tag" | "metadata"; path: string | undefined; maxGroups: number };

interface StatsRequest {
  query: RunQuery;
  select: Array<keyof RunStats> | undefined;
  groupBy: GroupBy | undefined;
}

function parseStatsRequest(body: unknown): StatsRequest {
  if (!isJsonObject(body)) throw new HttpError(422, "the stats query must be a JSON object");
  for (const key of Object.keys(body)) if (!STATS_BODY.has(key)) throw new HttpError(422, `run stats: unknown field ${JSON.stringify(key)}; expected one of ${[...STATS_BODY].join(", ")}`);
  const get = (key: string): unknown => (body[key] === null ? undefined : body[key]);
  const uuids = (key: string): string[] | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every(isUuid)) throw new HttpError(422, `${key} must be a list of UUIDs`);
    return v.map((i) => i.toLowerCase());
  };
  const uuid = (key: string): string | undefined => {
    const v = get(key);
    if (v !== undefined && !isUuid(v)) throw new HttpError(422, `${key} must be a UUID, got ${JSON.stringify(v)}`);
    return v === undefined ? undefined : v.toLowerCase();
  };
  const typed = <T>(key: string, type: string): T | undefined => {
    const v = get(key);
    if (v !== undefined && typeof v !== type) throw new HttpError(422, `${key} must be a ${type}`);
    return v as T | undefined;
  };
  const time = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const t = normalizeTime(v);
    if (t === undefined) throw new HttpError(422, `${key} must be an ISO time, got ${JSON.stringify(v)}`);
    return t;
  };
  for (const key of ["search_filter", "groups"]) {
    if (get(key) !== undefined) throw new HttpError(501, `${key} is not available on the local trace server`);
  }
  if (typed<boolean>("use_experimental_search", "boolean")) throw new HttpError(501, "use_experimental_search is not available on the local trace server");
  const source = typed<string>("data_source_type", "string");
  if (source !== undefined && source !== "current") throw new HttpError(501, `data_source_type ${JSON.stringify(source)} is not available on the local trace server (only "current")`);
  typed<boolean>("skip_pagination", "boolean");

  const query: RunQuery = {};
  const set = <K extends keyof RunQuery>(key: K, value: RunQuery[K] | undefined): void => {
    if (value !== undefined) query[key] = value;
  };
  set("projectIds", uuids("session"));
  set("runIds", uuids("id"));
  set("referenceExampleIds", uuids("reference_example"));
  set("traceId", uuid("trace"));
  set("parentRunId", uuid("parent_run"));
  if (!query.projectIds?.length && !query.runIds?.length && query.traceId === undefined) {
    throw new HttpError(422, "session is required (a list of project UUIDs), unless id or trace names the runs");
  }
  const executionOrder = get("execution_order");
  if (executionOrder !== undefined && executionOrder !== 1) throw new HttpError(422, "execution_order must be 1");
  set("isRoot", typed<boolean>("is_root", "boolean") ?? (executionOrder === 1 ? true : undefined));
  set("error", typed<boolean>("error", "boolean"));
  const runType = typed<string>("run_type", "string");
  if (runType !== undefined && !RUN_TYPES.includes(runType)) throw new HttpError(422, `run_type must be one of ${RUN_TYPES.join(", ")}, got ${JSON.stringify(runType)}`);
  set("runType", runType);
  set("startTime", time("start_time"));
  set("maxStartTime", time("end_time"));
  set("query", typed<string>("query", "string"));
  set("filter", typed<string>("filter", "string"));
  set("traceFilter", typed<string>("trace_filter", "string"));
  set("treeFilter", typed<string>("tree_filter", "string"));

  let select: Array<keyof RunStats> | undefined;
  const rawSelect = get("select");
  if (rawSelect !== undefined) {
    if (!Array.isArray(rawSelect)) throw new HttpError(422, "select must be a list of stat names");
    select = rawSelect.flatMap((s) => {
      if (typeof s === "string" && s in SELECT_GROUPS) return [...(SELECT_GROUPS[s] ?? [])];
      if (s === "session_feedback_stats") throw new HttpError(501, "session_feedback_stats is not available on the local trace server");
      if (typeof s !== "string" || !(STATS_SELECT as readonly string[]).includes(s)) throw new HttpError(422, `select: unknown stat ${JSON.stringify(s)}`);
      return [s as keyof RunStats];
    });
  }
  return { query, select, groupBy: parseGroupBy(get("group_by")) };
}

function parseGroupBy(v: unknown): GroupBy | undefined {
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) throw new HttpError(422, 'group_by must be an object {"attribute": "name" | "run_type" | "tag" | "metadata", "path"?, "max_groups"?}');
  const { attribute, path, max_groups: maxGroups = 5 } = v;
  if (attribute !== "name" && attribute !== "run_type" && attribute !== "tag" && attribute !== "metadata") {
    throw new HttpError(422, `group_by.attribute must be name, run_type, tag or metadata, got ${JSON.stringify(attribute)}`);
  }
  if (path !== undefined && path !== null && typeof path !== "string") throw new HttpError(422, "group_by.path must be a string");
  if (attribute === "metadata" && typeof path !== "string") throw new HttpError(422, "group_by.path (the metadata key) is required when grouping by metadata");
  if (typeof maxGroups !== "number" || !Number.isInteger(maxGroups) || maxGroups < 1) throw new HttpError(422, "group_by.max_groups must be a positive integer");
  return { attribute, path: typeof path === "string" ? path : undefined, maxGroups };
}

function groupKeys(run: StoredRun, by: GroupBy): string[] {
  switch (by.attribute) {
    case "name":
      return [run.name];
    case "run_type":
      return [run.run_type];
    case "tag":
      return [...new Set(run.tags)];
    case "metadata": {
      const value = obj(run.extra.metadata)?.[by.path ?? ""];
      return value === undefined || value === null ? [] : [typeof value === "string" ? value : JSON.stringify(value)];
    }
  }
}

function pick(stats: RunStats, select: ReadonlyArray<keyof RunStats> | undefined): Partial<RunStats> {
  return select ? Object.fromEntries(select.map((k) => [k, stats[k]])) : stats;
}

/** `POST /runs/stats`; mount inside the API router (both base URLs). */
export function createRunStatsRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const router = express.Router();
  router.post("/runs/stats", opts.requireApiKey, async (req, res) => {
    const { value } = await readJson(req, opts.maxBodyBytes);
    const { query, select, groupBy } = parseStatsRequest(value);
    const runs = allMatchingRuns(store, query);
    res.locals.logDetail = `${runs.length} runs`;
    if (!groupBy) {
      res.json(pick(runStats(store, runs), select));
      return;
    }
    const groups = new Map<string, StoredRun[]>();
    for (const run of runs) {
      for (const key of groupKeys(run, groupBy)) {
        const members = groups.get(key);
        if (members) members.push(run);
        else groups.set(key, [run]);
      }
    }
    const top = [...groups].sort(([a, x], [b, y]) => y.length - x.length || a.localeCompare(b)).slice(0, groupBy.maxGroups);
    res.json(Object.fromEntries(top.map(([key, members]) => [key, pick(runStats(store, members), select)])));
  });
  return router;
}
