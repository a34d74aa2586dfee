// `client.traces.query(params)` of langsmith 0.12: POST /api/v2/traces/query,
// one item per trace (root run) of a project, newest first, cursor-paged like
// runs.query. Each item is `{ root_run, trace_aggregates?, query_metadata }`:
// the selected TOTAL_TOKENS, TOTAL_COST and FIRST_TOKEN_TIME are trace-wide
// and go under `trace_aggregates`, every other selected field under
// `root_run` (only `id` when nothing is selected). Mount with
// `app.use("/api/v2", createTracesQueryRouter(store, { requireApiKey, maxBodyBytes }))`.
import express, { type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { urlBase } from "./params.js";
import { queryRunsWithinBudget } from "./query-budget.js";
import type { TraceStore } from "./store.js";
import { traceFacts } from "./thread-data.js";
import { refuseStreaming } from "./threads.js";
import { msToIso } from "./time.js";
import type { JsonObject, RunQuery } from "./types.js";
import { isUuid } from "./validate.js";
import { notHere, noRetryOn501, parseSelects, parseTime, rejectUnknown, toV2Run, type RunSelectField } from "./v2.js";
import { isJsonObject } from "./wire.js";

export function createTracesQueryRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const router = express.Router();
  router.post("/traces/query", opts.requireApiKey, async (req, res) => {
    refuseStreaming(req, "trace queries");
    const { value } = await readJson(req, opts.maxBodyBytes);
    const { query, selects } = parseTracesQuery(value, Date.now());
    const base = urlBase(req);
    const page = await queryRunsWithinBudget(store, query, { urlBase: base }, () => res.closed);
    const rootSelects = selects.filter((s) => !AGGREGATES.has(s));
    const aggregates = selects.filter((s) => AGGREGATES.has(s));
    const ctx = { store, subtreeUsage: false, urlBase: base };
    res.locals.logDetail = `${page.runs.length} traces`;
    res.json({
      items: page.runs.map((root) => {
        const item: JsonObject = { root_run: toV2Run(root, rootSelects, ctx), query_metadata: null };
        if (aggregates.length) {
          const facts = traceFacts(store, root);
          const values: Record<string, unknown> = { TOTAL_TOKENS: facts.totalTokens, TOTAL_COST: facts.cost?.total ?? null, FIRST_TOKEN_TIME: facts.firstTokenTime };
          item.trace_aggregates = Object.fromEntries(aggregates.map((a) => [a.toLowerCase(), values[a]]));
        }
        return item;
      }),
      next_cursor: page.nextCursor,
    });
  });
  router.use(noRetryOn501);
  return router;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_PAGE = 100;
const AGGREGATES = new Set<RunSelectField>(["TOTAL_TOKENS", "TOTAL_COST", "FIRST_TOKEN_TIME"]);
const BODY = new Set([
  "ai_search", "cursor", "max_feedback_modified_at", "max_start_time", "min_feedback_modified_at", "min_start_time", "page_size",
  "project_id", "selects", "trace_filter", "trace_ids", "tree_filter",
]);

function parseTracesQuery(body: unknown, nowMs: number): { query: RunQuery; selects: RunSelectField[] } {
  if (!isJsonObject(body)) throw new HttpError(422, "the query must be a JSON object");
  rejectUnknown(Object.keys(body), BODY, "traces query");
  const present = (key: string): boolean => body[key] !== undefined && body[key] !== null;
  if (present("ai_search")) throw notHere("ai_search (semantic search)");
  if (present("min_feedback_modified_at") || present("max_feedback_modified_at")) throw notHere("Filtering on feedback");
  if (!isUuid(body.project_id)) throw new HttpError(422, `project_id is required: the UUID of the tracing project, got ${JSON.stringify(body.project_id)}`);
  const query: RunQuery = {
    projectIds: [body.project_id.toLowerCase()],
    isRoot: true,
    startTime: parseTime(body.min_start_time, "min_start_time") ?? msToIso(nowMs - DAY_MS),
    maxStartTime: parseTime(body.max_start_time, "max_start_time") ?? msToIso(nowMs),
    limit: MAX_PAGE,
  };
  const text = (key: string): string | undefined => {
    if (!present(key)) return undefined;
    if (typeof body[key] !== "string") throw new HttpError(422, `${key} must be a string`);
    return body[key];
  };
  const traceFilter = text("trace_filter");
  if (traceFilter !== undefined) query.filter = traceFilter;
  const treeFilter = text("tree_filter");
  if (treeFilter !== undefined) query.treeFilter = treeFilter;
  const cursor = text("cursor");
  if (cursor !== undefined) query.cursor = cursor;
  if (present("trace_ids")) {
    const ids = body.trace_ids;
    if (!Array.isArray(ids) || !ids.every(isUuid)) throw new HttpError(422, "trace_ids must be a list of UUIDs");
    // A trace's root run has the trace's id.
    query.runIds = ids.map((i) => i.toLowerCase());
  }
  if (present("page_size")) {
    const size = body.page_size;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 1) throw new HttpError(422, "page_size must be a positive integer");
    query.limit = Math.min(size, MAX_PAGE);
  }
  if (present("selects") && !Array.isArray(body.selects)) throw new HttpError(422, "selects must be a list of field names");
  return { query, selects: parseSelects(Array.isArray(body.selects) ? body.selects : []) };
}

