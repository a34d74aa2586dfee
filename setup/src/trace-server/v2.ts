import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { compileFilter, metadataOf, threadIdOf } from "./filter.js";
import { MAX_IDS_PER_LIST } from "./limits.js";
import { queryList, queryString, requireUuidParam, urlBase } from "./params.js";
import { queryRunsWithinBudget } from "./query-budget.js";
import { shareOfTrace, shareUrl } from "./share-store.js";
import type { TraceStore } from "./store.js";
import { msToIso, normalizeTime, timeToMs } from "./time.js";
import type { JsonObject, RunQuery, StoredRun } from "./types.js";
import { isUuid } from "./validate.js";
import { isJsonObject } from "./wire.js";

/**
 * The SDK's `RunSelectField` (langsmith 0.12, resources/runs/runs.d.ts). Each
 * value selects the response field of the same name in lower case.
 */
export const RUN_SELECT_FIELDS = [
  "ID", "NAME", "RUN_TYPE", "STATUS", "START_TIME", "END_TIME", "LATENCY_SECONDS", "FIRST_TOKEN_TIME", "ERROR",
  "ERROR_PREVIEW", "EXTRA", "METADATA", "EVENTS", "INPUTS", "INPUTS_PREVIEW", "OUTPUTS", "OUTPUTS_PREVIEW", "MANIFEST",
  "PARENT_RUN_IDS", "PROJECT_ID", "TRACE_ID", "THREAD_ID", "DOTTED_ORDER", "IS_ROOT", "REFERENCE_EXAMPLE_ID",
  "REFERENCE_DATASET_ID", "TOTAL_TOKENS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "TOTAL_COST", "PROMPT_COST",
  "COMPLETION_COST", "PROMPT_TOKEN_DETAILS", "COMPLETION_TOKEN_DETAILS", "PROMPT_COST_DETAILS", "COMPLETION_COST_DETAILS",
  "PRICE_MODEL_ID", "TAGS", "APP_PATH", "ATTACHMENTS", "THREAD_EVALUATION_TIME", "IS_IN_DATASET", "LAST_QUEUED_AT",
  "SHARE_URL", "FEEDBACK_STATS", "LS_USER_ID",
] as const;
export type RunSelectField = (typeof RUN_SELECT_FIELDS)[number];

const RUN_TYPES = ["TOOL", "CHAIN", "LLM", "RETRIEVER", "EMBEDDING", "PROMPT", "PARSER"];

/** `runs.query` defaults `min_start_time` to one day before the request. */
const DEFAULT_WINDOW_MS = 24 * 60 * 60 * 1000;
const MAX_PAGE_SIZE = 100;
const PREVIEW_CHARS = 200;

export interface SelectContext {
  store: TraceStore;
  /** `include_subtree_usage`: tokens and first-token time of a run and everything beneath it. */
  subtreeUsage: boolean;
  /** `http://host:port` as the client addressed the server, for SHARE_URL. */
  urlBase?: string;
}

export function preview(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}...` : text;
}

/**
 * The store keeps tokens of LLM runs only, and reports a chain's tokens as
 * the sum beneath it (the v1 behaviour). v2 returns a run's own usage unless
 * the query asks for subtree usage.
 */
function tokens(run: StoredRun, ctx: SelectContext, value: number | null): number {
  return (run.run_type === "llm" || ctx.subtreeUsage ? value : null) ?? 0;
}

/** How each selected field is read off a stored run. Costs are null: the local server prices nothing. */
const SELECTORS: Record<RunSelectField, (run: StoredRun, ctx: SelectContext) => unknown> = {
  ID: (r) => r.id,
  NAME: (r) => r.name,
  RUN_TYPE: (r) => r.run_type.toUpperCase(),
  STATUS: (r) => r.status.toUpperCase(),
  START_TIME: (r) => r.start_time,
  END_TIME: (r) => r.end_time,
  LATENCY_SECONDS: (r) => (r.start_time && r.end_time ? (timeToMs(r.end_time) - timeToMs(r.start_time)) / 1000 : null),
  FIRST_TOKEN_TIME: (r, ctx) => (ctx.subtreeUsage ? ctx.store.subtreeFirstTokenTime(r) : r.first_token_time),
  ERROR: (r) => r.error,
  ERROR_PREVIEW: (r) => preview(r.error),
  EXTRA: (r) => r.extra,
  METADATA: (r) => metadataOf(r),
  EVENTS: (r) => r.events,
  INPUTS: (r) => r.inputs,
  INPUTS_PREVIEW: (r) => preview(r.inputs),
  OUTPUTS: (r) => r.outputs,
  OUTPUTS_PREVIEW: (r) => preview(r.outputs),
  MANIFEST: (r) => r.serialized,
  PARENT_RUN_IDS: (r) => r.parent_run_ids,
  PROJECT_ID: (r) => r.session_id,
  TRACE_ID: (r) => r.trace_id,
  THREAD_ID: (r) => {
    const id = threadIdOf(r);
    return typeof id === "string" ? id : null;
  },
  DOTTED_ORDER: (r) => r.dotted_order,
  IS_ROOT: (r) => r.parent_run_id === null,
  REFERENCE_EXAMPLE_ID: (r) => r.reference_example_id,
  REFERENCE_DATASET_ID: (r, ctx) => ctx.store.getProject(r.session_id)?.reference_dataset_id ?? null,
  TOTAL_TOKENS: (r, ctx) => tokens(r, ctx, r.total_tokens),
  PROMPT_TOKENS: (r, ctx) => tokens(r, ctx, r.prompt_tokens),
  COMPLETION_TOKENS: (r, ctx) => tokens(r, ctx, r.completion_tokens),
  TOTAL_COST: () => null,
  PROMPT_COST: () => null,
  COMPLETION_COST: () => null,
  PROMPT_TOKEN_DETAILS: () => null,
  COMPLETION_TOKEN_DETAILS: () => null,
  PROMPT_COST_DETAILS: () => null,
  COMPLETION_COST_DETAILS: () => null,
  PRICE_MODEL_ID: () => null,
  TAGS: (r) => r.tags,
  APP_PATH: (r) => r.app_path,
  ATTACHMENTS: (r) => Object.fromEntries(Object.entries(r.attachments).map(([name, a]) => [name, a.presigned_url])),
  THREAD_EVALUATION_TIME: () => null,
  IS_IN_DATASET: (r) => r.in_dataset,
  LAST_QUEUED_AT: () => null,
  SHARE_URL: (r, ctx) => {
    const share = shareOfTrace(ctx.store, r.trace_id);
    return share && ctx.urlBase !== undefined ? shareUrl(ctx.urlBase, share.token) : null;
  },
  FEEDBACK_STATS: (r) => r.feedback_stats ?? {},
  LS_USER_ID: () => null,
};

/** A stored run in the v2 shape, with only the selected fields (only `id` when none are). */
export function toV2Run(run: StoredRun, selects: readonly RunSelectField[], ctx: SelectContext): JsonObject {
  const out: JsonObject = { id: run.id };
  for (const field of selects) out[field.toLowerCase()] = SELECTORS[field](run, ctx);
  return out;
}

function isSelectField(value: unknown): value is RunSelectField {
  return typeof value === "string" && (RUN_SELECT_FIELDS as readonly string[]).includes(value);
}

export function parseSelects(values: readonly unknown[]): RunSelectField[] {
  for (const v of values) {
    if (!isSelectField(v)) throw new HttpError(422, `selects: unknown field ${JSON.stringify(v)}; expected one of ${RUN_SELECT_FIELDS.join(", ")}`);
  }
  return values as RunSelectField[];
}

export function parseTime(value: unknown, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const t = typeof value === "string" ? normalizeTime(value) : undefined;
  if (t === undefined) throw new HttpError(422, `${key} must be an RFC 3339 time, got ${JSON.stringify(value)}`);
  return t;
}

export function rejectUnknown(keys: Iterable<string>, known: ReadonlySet<string>, where: string): void {
  for (const key of keys) {
    if (!known.has(key)) throw new HttpError(422, `${where}: unknown parameter ${JSON.stringify(key)}; expected one of ${[...known].join(", ")}`);
  }
}

/** A v2 request body: a JSON object of known parameters only (422 naming `where` otherwise). */
export async function readKnownBody(req: Request, maxBodyBytes: number, known: ReadonlySet<string>, where: string): Promise<JsonObject> {
  const { value } = await readJson(req, maxBodyBytes);
  if (!isJsonObject(value)) throw new HttpError(422, `${where}: the body must be a JSON object`);
  rejectUnknown(Object.keys(value), known, where);
  return value;
}

/** Error middleware of the v2 routers: the generated client retries a 5xx unless told not to. */
export function noRetryOn501(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (err instanceof HttpError && err.status === 501) res.setHeader("x-should-retry", "false");
  next(err);
}

/** A documented feature the local server does not have: 501, which the SDK is told not to retry. */
export function notHere(what: string): HttpError {
  return new HttpError(501, `${what} is not available on the local trace server`);
}

const QUERY_BODY = new Set([
  "ai_search", "filter", "has_error", "ids", "include_subtree_usage", "is_root", "max_feedback_modified_at", "max_start_time",
  "min_feedback_modified_at", "min_start_time", "project_ids", "reference_dataset_id", "reference_examples", "run_type",
  "selects", "trace_filter", "trace_id", "tree_filter", "cursor", "page_size",
]);

interface ParsedRunsQuery {
  query: RunQuery;
  selects: RunSelectField[];
  subtreeUsage: boolean;
}

/** The body of `client.runs.query()` (`RunQueryV2Params`) as a store query. */
function parseRunsQuery(body: unknown, nowMs: number): ParsedRunsQuery {
  if (!isJsonObject(body)) throw new HttpError(422, "the query must be a JSON object");
  rejectUnknown(Object.keys(body), QUERY_BODY, "runs query");
  const present = (key: string): boolean => body[key] !== undefined && body[key] !== null;
  const str = (key: string): string | undefined => {
    if (!present(key)) return undefined;
    const v = body[key];
    if (typeof v !== "string") throw new HttpError(422, `${key} must be a string`);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    if (!present(key)) return undefined;
    const v = body[key];
    if (typeof v !== "boolean") throw new HttpError(422, `${key} must be true or false`);
    return v;
  };
  const uuids = (key: string): string[] | undefined => {
    if (!present(key)) return undefined;
    const v = body[key];
    if (Array.isArray(v) && v.length > MAX_IDS_PER_LIST) throw new HttpError(422, `${key} lists ${v.length} ids, over the limit of ${MAX_IDS_PER_LIST} per query`);
    if (!Array.isArray(v) || !v.every(isUuid)) throw new HttpError(422, `${key} must be a list of UUIDs`);
    return v.map((id) => id.toLowerCase());
  };

  if (present("ai_search")) throw notHere("ai_search (semantic search)");
  if (present("min_feedback_modified_at") || present("max_feedback_modified_at")) throw notHere("Filtering on feedback");
  if (present("reference_dataset_id")) {
    if (present("project_ids")) throw new HttpError(422, "project_ids and reference_dataset_id are mutually exclusive: set exactly one");
    throw notHere("reference_dataset_id (datasets)");
  }
  const projectIds = uuids("project_ids");
  if (!projectIds?.length) throw new HttpError(422, "project_ids is required: a list of project (session) UUIDs");

  const query: RunQuery = {
    projectIds,
    startTime: parseTime(body.min_start_time, "min_start_time") ?? msToIso(nowMs - DEFAULT_WINDOW_MS),
    maxStartTime: parseTime(body.max_start_time, "max_start_time") ?? msToIso(nowMs),
  };
  const set = <K extends keyof RunQuery>(key: K, value: RunQuery[K] | undefined): void => {
    if (value !== undefined) query[key] = value;
  };
  set("runIds", uuids("ids"));
  set("referenceExampleIds", uuids("reference_examples"));
  const traceId = str("trace_id");
  if (traceId !== undefined && !isUuid(traceId)) throw new HttpError(422, `trace_id must be a UUID, got ${JSON.stringify(traceId)}`);
  set("traceId", traceId?.toLowerCase());
  set("isRoot", bool("is_root"));
  set("error", bool("has_error"));
  const runType = str("run_type");
  if (runType !== undefined && !RUN_TYPES.includes(runType)) throw new HttpError(422, `run_type must be one of ${RUN_TYPES.join(", ")}, got ${JSON.stringify(runType)}`);
  set("runType", runType?.toLowerCase());
  set("filter", str("filter"));
  set("traceFilter", str("trace_filter"));
  set("treeFilter", str("tree_filter"));
  set("cursor", str("cursor"));
  if (present("page_size")) {
    const size = body.page_size;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 1) throw new HttpError(422, "page_size must be a positive integer");
    query.limit = Math.min(size, MAX_PAGE_SIZE);
  }
  if (present("selects") && !Array.isArray(body.selects)) throw new HttpError(422, "selects must be a list of field names");
  const selects = parseSelects(Array.isArray(body.selects) ? body.selects : []);
  return { query, selects, subtreeUsage: bool("include_subtree_usage") ?? false };
}

const RETRIEVE_QUERY = new Set(["project_id", "selects", "start_time"]);
const TRACE_RUNS_QUERY = new Set(["project_id", "filter", "min_start_time", "max_start_time", "selects"]);

function requireProjectId(req: Request): string {
  const id = queryString(req.query, "project_id");
  if (id === undefined) throw new HttpError(422, "project_id is required: the UUID of the project that owns the run");
  return requireUuidParam(id, "project_id");
}

/**
 * The v2 read routes of the SDK's generated client, mounted at `/api/v2`:
 * `client.runs.query()`, `client.runs.retrieve()` and `client.traces.listRuns()`.
 */
export function createV2Router(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const router = express.Router();
  const { requireApiKey } = opts;

  router.post("/runs/query", requireApiKey, async (req, res) => {
    const { value } = await readJson(req, opts.maxBodyBytes);
    const { query, selects, subtreeUsage } = parseRunsQuery(value, Date.now());
    const page = await queryRunsWithinBudget(store, query, { urlBase: urlBase(req) }, () => res.closed);
    const ctx: SelectContext = { store, subtreeUsage, urlBase: urlBase(req) };
    res.locals.logDetail = `${page.runs.length} runs`;
    res.json({ items: page.runs.map((r) => toV2Run(r, selects, ctx)), next_cursor: page.nextCursor });
  });

  router.get("/runs/:runId", requireApiKey, (req, res) => {
    rejectUnknown(Object.keys(req.query), RETRIEVE_QUERY, "runs retrieve");
    const runId = requireUuidParam(req.params.runId, "run id");
    const projectId = requireProjectId(req);
    // start_time only speeds up LangSmith's lookup; it is validated, not needed.
    parseTime(queryString(req.query, "start_time"), "start_time");
    const selects = parseSelects(queryList(req.query, "selects"));
    const run = store.getRun(runId, { urlBase: urlBase(req) });
    if (!run || run.session_id !== projectId) throw new HttpError(404, `run ${runId} not found in project ${projectId}`);
    res.json(toV2Run(run, selects, { store, subtreeUsage: false, urlBase: urlBase(req) }));
  });

  router.get("/traces/:traceId/runs", requireApiKey, (req, res) => {
    rejectUnknown(Object.keys(req.query), TRACE_RUNS_QUERY, "trace runs");
    const traceId = requireUuidParam(req.params.traceId, "trace id");
    const projectId = requireProjectId(req);
    const min = parseTime(queryString(req.query, "min_start_time"), "min_start_time");
    const max = parseTime(queryString(req.query, "max_start_time"), "max_start_time");
    if ((min === undefined) !== (max === undefined)) throw new HttpError(422, "min_start_time and max_start_time go together: set both or neither");
    const inWindow = (start: string | null): boolean => min === undefined || max === undefined || (start !== null && start >= min && start <= max);
    const filter = queryString(req.query, "filter");
    const matches = filter === undefined ? () => true : compileFilter(filter);
    const selects = parseSelects(queryList(req.query, "selects"));
    const ctx: SelectContext = { store, subtreeUsage: false, urlBase: urlBase(req) };
    const runs = store.getTraceRuns(traceId, { urlBase: urlBase(req) }).filter((r) => r.session_id === projectId && inWindow(r.start_time) && matches(r));
    res.locals.logDetail = `${runs.length} runs`;
    res.json({ items: runs.map((r) => toV2Run(r, selects, ctx)) });
  });

  router.use(noRetryOn501);

  return router;
}
