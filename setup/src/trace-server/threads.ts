// The v2 thread routes of langsmith 0.12's generated client, mounted at /api/v2:
//   client.threads.query(params)               POST /api/v2/threads/query
//   client.threads.listTraces(id, params)      GET  /api/v2/threads/{id}/traces
//   client.threads.stats(id, params)           GET  /api/v2/threads/{id}/stats
//   client.threads.aggregateStats(params)      POST /api/v2/threads/stats
//   client.threads.share.*                     501: threads are not shared here
// Shapes follow resources/threads/threads.d.ts. What the local server cannot
// compute (thread_filter over summaries, ai_search, the numeric OP code,
// streaming answers) is a 501 that names it. Mount with
// `app.use("/api/v2", createThreadsRouter(store, { requireApiKey, maxBodyBytes }))`.
import express, { type Request, type RequestHandler, type Router } from "express";
import { HttpError } from "./body.js";
import { compileFilter, type RunPredicate } from "./filter.js";
import { queryList, queryString, requireUuidParam } from "./params.js";
import type { TraceStore } from "./store.js";
import { RequestBudget } from "./query-budget.js";
import { factsWithin, MAX_THREAD_ID_LENGTH, mergedFeedback, threadsInProject, threadSummary, threadTraces, totalsOf, type TraceFacts } from "./thread-data.js";
import { msToIso } from "./time.js";
import type { JsonObject, StoredRun } from "./types.js";
import { notHere, noRetryOn501, parseTime, preview, readKnownBody, rejectUnknown } from "./v2.js";

export function createThreadsRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const router = express.Router();
  const { requireApiKey, maxBodyBytes } = opts;

  const readBody = (req: Request, known: ReadonlySet<string>, where: string): Promise<JsonObject> => readKnownBody(req, maxBodyBytes, known, where);

  router.post("/threads/query", requireApiKey, async (req, res) => {
    refuseStreaming(req, "thread queries");
    const body = await readBody(req, THREAD_QUERY_BODY, "threads query");
    const size = pageSize(body.page_size);
    const offset = decodeOffset(body.cursor);
    const budget = new RequestBudget(() => res.closed, ADVICE);
    const threads = await queryThreads(store, body, Date.now(), budget);
    const { items, next_cursor } = page(threads, offset, size);
    res.locals.logDetail = `${items.length} threads`;
    const summaries: JsonObject[] = [];
    for (const t of items) summaries.push(await threadSummary(store, t.id, t.turns, budget));
    res.json({ items: summaries, next_cursor });
  });

  router.post("/threads/stats", requireApiKey, async (req, res) => {
    const body = await readBody(req, AGGREGATE_BODY, "threads aggregate stats");
    if (!Array.isArray(body.select)) throw new HttpError(422, "select is required: a list of statistics");
    const select = selection(body.select, AGGREGATE_STATS, "select", true);
    const budget = new RequestBudget(() => res.closed, ADVICE);
    const threads = await queryThreads(store, body, Date.now(), budget);
    const facts = await factsWithin(store, threads.flatMap((t) => t.turns), budget);
    res.json(Object.fromEntries(select.map((s) => (AGGREGATE_STATS[s] as (typeof AGGREGATE_STATS)[string])(threads.length, facts))));
  });

  router.get("/threads/:threadId/traces", requireApiKey, async (req, res) => {
    rejectUnknown(Object.keys(req.query), LIST_TRACES_QUERY, "thread traces");
    const threadId = threadIdParam(req.params.threadId);
    const projectId = requireProject(store, queryString(req.query, "project_id"), "project_id");
    const selects = selection(queryList(req.query, "selects"), TRACE_SELECTORS, "selects", false);
    const filters = filtersOf((k) => queryString(req.query, k));
    const cursor = decodeOffset(queryString(req.query, "cursor"));
    const size = pageSize(queryString(req.query, "page_size"));
    const budget = new RequestBudget(() => res.closed, ADVICE);
    const all = await threadTraces(store, projectId, threadId, budget);
    const turnOf = new Map(all.map((t, i) => [t.id, i + 1]));
    const kept: StoredRun[] = [];
    for (const t of filters.root ? all.filter(filters.root) : all) {
      if (filters.trace && !filters.trace(t)) continue;
      if (filters.tree && !(await someRunMatches(store, t, filters.tree, budget))) continue;
      kept.push(t);
    }
    const { items, next_cursor } = page(kept, cursor, size);
    const facts = await factsWithin(store, items, budget);
    res.json({
      items: facts.map((f) => {
        const out: JsonObject = { trace_id: f.root.trace_id };
        for (const s of selects) out[s.toLowerCase()] = (TRACE_SELECTORS[s] as TraceSelect)(f, turnOf.get(f.root.id) ?? 0, threadId);
        return out;
      }),
      next_cursor,
    });
  });

  router.get("/threads/:threadId/stats", requireApiKey, async (req, res) => {
    rejectUnknown(Object.keys(req.query), STATS_QUERY, "thread stats");
    const threadId = threadIdParam(req.params.threadId);
    const projectId = requireProject(store, queryString(req.query, "session_id"), "session_id");
    const selects = selection(queryList(req.query, "selects"), THREAD_STATS, "selects", true);
    const filter = queryString(req.query, "filter");
    const keep = filter === undefined ? () => true : compileFilter(filter);
    const budget = new RequestBudget(() => res.closed, ADVICE);
    const turns = (await threadTraces(store, projectId, threadId, budget)).filter(keep);
    const facts = await factsWithin(store, turns, budget);
    res.json(Object.fromEntries(selects.map((s) => (THREAD_STATS[s] as (typeof THREAD_STATS)[string])(facts))));
  });

  const noThreadShares = (): never => {
    throw notHere("Sharing threads (client.threads.share); share one trace with client.runs.share.create");
  };
  router.post("/threads/:threadId/share", requireApiKey, noThreadShares);
  router.get("/threads/:threadId/share", requireApiKey, noThreadShares);
  router.delete("/threads/:threadId/share", requireApiKey, noThreadShares);

  router.use(noRetryOn501);
  return router;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_PAGE = 20;

/** An opaque cursor: the offset of the next page. */
function decodeOffset(cursor: unknown): number {
  if (cursor === undefined || cursor === null || cursor === "") return 0;
  const m = typeof cursor === "string" ? /^o(\d{1,9})$/.exec(cursor) : null;
  if (!m) throw new HttpError(422, `cursor ${JSON.stringify(cursor)} is not one this server issued; pass next_cursor back unchanged`);
  return Number(m[1]);
}

function pageSize(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_PAGE;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 100) throw new HttpError(422, `page_size must be an integer from 1 to 100, got ${JSON.stringify(value)}`);
  return n;
}

function page<T>(items: readonly T[], offset: number, size: number): { items: T[]; next_cursor: string | null } {
  const end = offset + size;
  return { items: items.slice(offset, end), next_cursor: end < items.length ? `o${end}` : null };
}

/** The generated client asks for SSE on its streaming resources; these routes answer JSON only. */
export function refuseStreaming(req: Request, what: string): void {
  if ((req.headers.accept ?? "").includes("text/event-stream")) {
    throw notHere(`Streaming ${what} (Accept: text/event-stream, client.*.streaming)`);
  }
}

function threadIdParam(value: unknown): string {
  const id = String(value);
  if (id === "" || id.length > MAX_THREAD_ID_LENGTH) throw new HttpError(422, `thread id must be 1 to ${MAX_THREAD_ID_LENGTH} characters`);
  return id;
}

function requireProject(store: TraceStore, value: unknown, key: string): string {
  if (value === undefined || value === null) throw new HttpError(422, `${key} is required: the UUID of the tracing project`);
  const id = requireUuidParam(value, key);
  if (!store.getProject(id)) throw new HttpError(404, `project ${id} not found`);
  return id;
}

interface ThreadFilters {
  root?: RunPredicate;
  trace?: RunPredicate;
  tree?: RunPredicate;
}

function filtersOf(get: (key: string) => unknown): ThreadFilters {
  const out: ThreadFilters = {};
  const compile = (key: string): RunPredicate | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new HttpError(422, `${key} must be a filter expression string`);
    return compileFilter(v);
  };
  if (get("thread_filter") !== undefined && get("thread_filter") !== null) throw notHere("thread_filter (filters over thread summaries)");
  if (get("ai_search") !== undefined && get("ai_search") !== null) throw notHere("ai_search (semantic search)");
  const root = compile("filter");
  const trace = compile("trace_filter");
  const tree = compile("tree_filter");
  if (root) out.root = root;
  if (trace) out.trace = trace;
  if (tree) out.tree = tree;
  return out;
}

/** `filter` picks the turns counted; `trace_filter` / `tree_filter` keep threads with a matching trace. */
async function applyFilters(store: TraceStore, turns: StoredRun[], f: ThreadFilters, budget: RequestBudget): Promise<StoredRun[]> {
  const kept = f.root ? turns.filter(f.root) : turns;
  if (f.trace && !kept.some(f.trace)) return [];
  if (!f.tree) return kept;
  for (const t of kept) if (await someRunMatches(store, t, f.tree, budget)) return kept;
  return [];
}

/** Whether a run of the root's trace matches; each run read costs the budget a unit. */
async function someRunMatches(store: TraceStore, root: StoredRun, pred: RunPredicate, budget: RequestBudget): Promise<boolean> {
  const runs = store.getTraceRuns(root.trace_id);
  await budget.spend(runs.length * (1 + (pred.cost ?? 1)));
  return runs.some(pred);
}

/** The end of the 400 a thread request gets when it spends its budget. */
const ADVICE = "narrow it (a shorter window, a filter)";

const THREAD_QUERY_BODY = new Set(["ai_search", "cursor", "filter", "max_start_time", "min_start_time", "page_size", "project_id", "thread_filter", "trace_filter", "tree_filter"]);
const AGGREGATE_BODY = new Set(["project_id", "select", "filter", "max_start_time", "min_start_time", "thread_filter", "trace_filter", "tree_filter"]);
const LIST_TRACES_QUERY = new Set(["project_id", "filter", "selects", "trace_filter", "tree_filter", "cursor", "page_size"]);
const STATS_QUERY = new Set(["session_id", "selects", "filter"]);

/** Threads of a project with traces in [min_start_time, max_start_time), after the filters, busiest-recent first. */
async function queryThreads(store: TraceStore, body: JsonObject, nowMs: number, budget: RequestBudget): Promise<Array<{ id: string; turns: StoredRun[] }>> {
  const projectId = requireProject(store, body.project_id, "project_id");
  const filters = filtersOf((k) => body[k]);
  const window = {
    min: parseTime(body.min_start_time, "min_start_time") ?? msToIso(nowMs - DAY_MS),
    max: parseTime(body.max_start_time, "max_start_time") ?? msToIso(nowMs),
  };
  const out: Array<{ id: string; turns: StoredRun[] }> = [];
  for (const [id, turns] of await threadsInProject(store, projectId, window, budget)) {
    const kept = await applyFilters(store, turns, filters, budget);
    if (kept.length) out.push({ id, turns: kept });
  }
  const latest = (t: { turns: StoredRun[] }): string => t.turns[t.turns.length - 1]?.start_time ?? "";
  return out.sort((a, b) => latest(b).localeCompare(latest(a)) || a.id.localeCompare(b.id));
}

type TraceSelect = (facts: TraceFacts, turn: number, threadId: string) => unknown;

/** `ThreadListTracesParams.selects`, each to the `ThreadTrace` field of the same name in lower case. */
const TRACE_SELECTORS: Record<string, TraceSelect> = {
  THREAD_ID: (_f, _n, id) => id,
  TRACE_ID: (f) => f.root.trace_id,
  PROMPT_TOKENS: (f) => f.promptTokens,
  COMPLETION_TOKENS: (f) => f.completionTokens,
  TOTAL_TOKENS: (f) => f.totalTokens,
  START_TIME: (f) => f.root.start_time,
  END_TIME: (f) => f.root.end_time,
  LATENCY: (f) => f.latency,
  FIRST_TOKEN_TIME: (f) => f.firstTokenTime,
  INPUTS_PREVIEW: (f) => preview(f.root.inputs),
  OUTPUTS_PREVIEW: (f) => preview(f.root.outputs),
  INPUTS: (f) => f.root.inputs,
  OUTPUTS: (f) => f.root.outputs,
  ERROR: (f) => f.root.error,
  ERROR_PREVIEW: (f) => preview(f.root.error),
  PROMPT_COST: (f) => f.cost?.prompt ?? null,
  COMPLETION_COST: (f) => f.cost?.completion ?? null,
  TOTAL_COST: (f) => f.cost?.total ?? null,
  PROMPT_TOKEN_DETAILS: () => null,
  COMPLETION_TOKEN_DETAILS: () => null,
  PROMPT_COST_DETAILS: () => null,
  COMPLETION_COST_DETAILS: () => null,
  NAME: (f) => f.root.name,
  TURN_NUMBER: (_f, n) => n,
};

/** `ThreadStatsParams.selects` -> `ThreadStats` fields. */
const THREAD_STATS: Record<string, (facts: TraceFacts[]) => [string, unknown]> = {
  TURNS: (f) => ["turns", f.length],
  FIRST_START_TIME: (f) => ["first_start_time", f[0]?.root.start_time ?? null],
  LAST_START_TIME: (f) => ["last_start_time", f[f.length - 1]?.root.start_time ?? null],
  LAST_END_TIME: (f) => ["last_end_time", f.reduce<string | null>((max, x) => (x.root.end_time && (max === null || x.root.end_time > max) ? x.root.end_time : max), null)],
  LATENCY_P50: (f) => ["latency_p50_seconds", totalsOf(f).latencyP50],
  LATENCY_P99: (f) => ["latency_p99_seconds", totalsOf(f).latencyP99],
  PROMPT_TOKENS: (f) => ["prompt_tokens", totalsOf(f).promptTokens],
  COMPLETION_TOKENS: (f) => ["completion_tokens", totalsOf(f).completionTokens],
  TOTAL_TOKENS: (f) => ["total_tokens", totalsOf(f).totalTokens],
  PROMPT_COST: (f) => ["prompt_cost", totalsOf(f).cost?.prompt ?? null],
  COMPLETION_COST: (f) => ["completion_cost", totalsOf(f).cost?.completion ?? null],
  TOTAL_COST: (f) => ["total_cost", totalsOf(f).cost?.total ?? null],
  PROMPT_TOKEN_DETAILS: () => ["prompt_token_details", null],
  COMPLETION_TOKEN_DETAILS: () => ["completion_token_details", null],
  PROMPT_COST_DETAILS: () => ["prompt_cost_details", null],
  COMPLETION_COST_DETAILS: () => ["completion_cost_details", null],
  FEEDBACK_STATS: (f) => ["feedback_stats", mergedFeedback(f.map((x) => x.root))],
};

/** `ThreadAggregateStatsParams.select` -> `ThreadAggregateStatsResponse` fields, over every matching trace. */
const AGGREGATE_STATS: Record<string, (threads: number, facts: TraceFacts[]) => [string, unknown]> = {
  THREAD_COUNT: (n) => ["thread_count", n],
  TRACE_COUNT: (_n, f) => ["trace_count", f.length],
  TOTAL_TOKENS: (_n, f) => ["total_tokens", totalsOf(f).totalTokens],
  PROMPT_TOKENS: (_n, f) => ["prompt_tokens", totalsOf(f).promptTokens],
  COMPLETION_TOKENS: (_n, f) => ["completion_tokens", totalsOf(f).completionTokens],
  TOTAL_COST: (_n, f) => ["total_cost", totalsOf(f).cost?.total ?? null],
  PROMPT_COST: (_n, f) => ["prompt_cost", totalsOf(f).cost?.prompt ?? null],
  COMPLETION_COST: (_n, f) => ["completion_cost", totalsOf(f).cost?.completion ?? null],
  ERROR_RATE: (_n, f) => ["error_rate", f.length ? totalsOf(f).tracesWithError / f.length : null],
  STREAMING_RATE: (_n, f) => {
    const t = totalsOf(f);
    return ["streaming_rate", t.completed ? f.filter((x) => x.root.end_time !== null && x.firstToken !== null).length / t.completed : null];
  },
  LATENCY_P50: (_n, f) => ["latency_p50_seconds", totalsOf(f).latencyP50],
  LATENCY_P99: (_n, f) => ["latency_p99_seconds", totalsOf(f).latencyP99],
  MEDIAN_TOKENS: (_n, f) => ["median_tokens", totalsOf(f).medianTokens],
  FIRST_TOKEN_P50: (_n, f) => ["first_token_p50_seconds", totalsOf(f).firstTokenP50],
  FIRST_TOKEN_P99: (_n, f) => ["first_token_p99_seconds", totalsOf(f).firstTokenP99],
  PROMPT_TOKEN_DETAILS: () => ["prompt_token_details", null],
  COMPLETION_TOKEN_DETAILS: () => ["completion_token_details", null],
  PROMPT_COST_DETAILS: () => ["prompt_cost_details", null],
  COMPLETION_COST_DETAILS: () => ["completion_cost_details", null],
  // Feedback can only be given to runs here, never to a thread as a whole.
  THREAD_FEEDBACK_STATS: () => ["thread_feedback_stats", {}],
};

function selection(values: readonly unknown[], known: Record<string, unknown>, key: string, required: boolean): string[] {
  if (required && values.length === 0) throw new HttpError(422, `${key} is required: at least one of ${Object.keys(known).join(", ")}`);
  for (const v of values) {
    if (v === "OP") throw notHere("OP (the numeric run-type code of legacy clients; select NAME, or RUN_TYPE through client.runs.query)");
    if (typeof v !== "string" || !Object.hasOwn(known, v)) throw new HttpError(422, `${key}: unknown value ${JSON.stringify(v)}; expected one of ${Object.keys(known).join(", ")}`);
  }
  return values as string[];
}

