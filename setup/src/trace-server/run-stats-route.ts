// `POST /runs/stats`, what langsmith 0.12's `client.getRunStats` posts:
// LangSmith's `RunStatsQueryParams` (`session`, `is_root`, `run_type`, `filter`,
// `start_time`, `end_time`, ...), answered with `RunStats` (stats.ts), or with
// `{ "<group>": RunStats }` for a `group_by`. `select` trims the answer to the
// named stats. What the local server lacks is a 501 naming it. Mount inside the
// API router: `api.use(createRunStatsRouter(store, { requireApiKey, maxBodyBytes }))`.
import express, { type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { RequestBudget } from "./query-budget.js";
import { allMatchingRuns, runStats, type RunStats } from "./stats.js";
import type { TraceStore } from "./store.js";
import { normalizeTime } from "./time.js";
import type { RunQuery, StoredRun } from "./types.js";
import { isUuid } from "./validate.js";
import { isJsonObject } from "./wire.js";

export function createRunStatsRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const router = express.Router();
  router.post("/runs/stats", opts.requireApiKey, async (req, res) => {
    const { value } = await readJson(req, opts.maxBodyBytes);
    const { query, select, groupBy } = parseStatsRequest(value);
    const budget = new RequestBudget(() => res.closed, "narrow it (start_time, end_time, filter, is_root)");
    const runs = await allMatchingRuns(store, query, budget);
    res.locals.logDetail = `${runs.length} runs`;
    if (!groupBy) {
      res.json(pick(await runStats(store, runs, budget), select));
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
    const answer: Array<[string, Partial<RunStats>]> = [];
    for (const [key, members] of top) answer.push([key, pick(await runStats(store, members, budget), select)]);
    // fromEntries: group keys are client text, "__proto__" included.
    res.json(Object.fromEntries(answer));
  });
  return router;
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
      if (typeof s === "string" && Object.hasOwn(SELECT_GROUPS, s)) return [...(SELECT_GROUPS[s] ?? [])];
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
      const metadata = run.extra.metadata;
      const value = isJsonObject(metadata) && Object.hasOwn(metadata, by.path ?? "") ? metadata[by.path ?? ""] : undefined;
      return value === undefined || value === null ? [] : [typeof value === "string" ? value : JSON.stringify(value)];
    }
  }
}

function pick(stats: RunStats, select: ReadonlyArray<keyof RunStats> | undefined): Partial<RunStats> {
  return select ? Object.fromEntries(select.map((k) => [k, stats[k]])) : stats;
}
