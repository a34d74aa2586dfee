/**
 * The v1 read routes: `POST /runs/query` and `GET /runs/{id}` (the SDK's listRuns and readRun),
 * `GET /feedback` (listFeedback), attachments (`presigned_url` of a run), and the JSON views for
 * troubleshooting: `GET /api/traces` (trace summaries), `GET /api/traces/{id}` (a trace's runs
 * and rejections, a page at a time) and `GET /api/rejections`.
 * Mount inside the API router: `api.use(createReadRouter(store, { requireApiKey, maxBodyBytes }))`.
 */
import express, { type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { MAX_IDS_PER_LIST, MAX_TRACE_PAGE_RUNS } from "./limits.js";
import { queryInt, queryList, queryString, requireUuidParam, urlBase } from "./params.js";
import { queryRunsWithinBudget } from "./query-budget.js";
import type { FeedbackFilter, TraceStore } from "./store.js";
import { normalizeTime } from "./time.js";
import type { JsonObject, RejectionFilter, RejectionRule, RunQuery, StoredRun, TraceFilter } from "./types.js";
import { isUuid } from "./validate.js";
import { isJsonObject } from "./wire.js";

export function createReadRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number }): Router {
  const { requireApiKey, maxBodyBytes } = opts;
  const api = express.Router();

  api.post("/runs/query", requireApiKey, async (req, res) => {
    const { value } = await readJson(req, maxBodyBytes);
    const { query, select } = parseRunQuery(value);
    const page = await queryRunsWithinBudget(store, query, { urlBase: urlBase(req) }, () => res.closed);
    res.locals.logDetail = `${page.runs.length} runs`;
    res.json({ runs: page.runs.map((r) => pickFields(r, select)), cursors: { next: page.nextCursor, prev: null } });
  });

  api.get("/runs/:runId", requireApiKey, (req, res) => {
    const runId = requireUuidParam(req.params.runId, "run id");
    const run = store.getRun(runId, { urlBase: urlBase(req) });
    if (!run) throw new HttpError(404, `run ${runId} not found`);
    res.json(run);
  });

  api.get("/feedback", requireApiKey, (req, res) => {
    const filter: FeedbackFilter = {
      limit: Math.min(queryInt(req.query, "limit", 100), 100),
      offset: queryInt(req.query, "offset", 0),
    };
    const runIds = queryList(req.query, "run");
    if (runIds.length) filter.runIds = runIds.map((r) => r.toLowerCase());
    const keys = queryList(req.query, "key");
    if (keys.length) filter.keys = keys;
    res.json(store.listFeedback(filter));
  });

  api.get("/api/rejections", requireApiKey, (req, res) => {
    const filter: RejectionFilter = { limit: Math.min(queryInt(req.query, "limit", 100), 1000) };
    const traceId = queryString(req.query, "trace_id");
    if (traceId !== undefined) filter.traceId = traceId;
    const runId = queryString(req.query, "run_id");
    if (runId !== undefined) filter.runId = runId;
    const rule = queryString(req.query, "rule");
    if (rule !== undefined) filter.rule = rule as RejectionRule;
    if (queryString(req.query, "after") !== undefined) filter.afterSeq = queryInt(req.query, "after", 0);
    res.json({ rejections: store.listRejections(filter) });
  });

  api.get("/api/traces", requireApiKey, (req, res) => {
    const filter: TraceFilter = {
      limit: Math.min(queryInt(req.query, "limit", 100), 1000),
      offset: queryInt(req.query, "offset", 0),
    };
    const project = queryString(req.query, "project");
    if (project !== undefined) {
      if (isUuid(project)) filter.projectId = project.toLowerCase();
      else filter.projectName = project;
    }
    const service = queryString(req.query, "service");
    if (service !== undefined) filter.service = service;
    const since = queryString(req.query, "since");
    if (since !== undefined) {
      const t = normalizeTime(since);
      if (t === undefined) throw new HttpError(422, `since must be an ISO time, got ${JSON.stringify(since)}`);
      filter.since = t;
    }
    res.json({ traces: store.listTraces(filter) });
  });

  api.get("/api/traces/:traceId", requireApiKey, (req, res) => {
    const traceId = requireUuidParam(req.params.traceId, "trace id");
    const limit = Math.min(queryInt(req.query, "limit", MAX_TRACE_PAGE_RUNS), MAX_TRACE_PAGE_RUNS);
    const offset = queryInt(req.query, "offset", 0);
    const runs = store.getTraceRuns(traceId, { urlBase: urlBase(req), limit, offset });
    const runCount = runs.length < limit && (runs.length > 0 || offset === 0) ? offset + runs.length : store.countTraceRuns(traceId);
    const rejections = store.listRejections({ traceId });
    if (runCount === 0 && rejections.length === 0) throw new HttpError(404, `trace ${traceId} not found`);
    // A page, not the whole trace: a trace of 25,000 runs is far more than one answer should hold.
    const nextOffset = offset + runs.length < runCount ? offset + runs.length : null;
    res.json({ trace_id: traceId, runs, rejections, run_count: runCount, next_offset: nextOffset });
  });

  api.get("/api/attachments/:runId/:name", requireApiKey, (req, res) => {
    const runId = requireUuidParam(req.params.runId, "run id");
    const name = String(req.params.name);
    const attachment = store.getAttachment(runId, name);
    if (!attachment) throw new HttpError(404, `attachment ${JSON.stringify(name)} of run ${runId} not found`);
    // Anyone who can trace can store any bytes under any type, and this origin also serves the
    // viewer: shown inline, an HTML attachment's script could read traces and delete projects.
    // So it is always a download, never sniffed, and sandboxed (an opaque origin, no script, no
    // loads) should a browser render it anyway. The viewer lists attachments without showing them.
    res.attachment(name);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'");
    res.type(attachment.contentType).send(Buffer.from(attachment.data));
  });

  return api;
}

function pickFields(run: StoredRun, select: readonly string[] | undefined): JsonObject {
  if (!select) return run as unknown as JsonObject;
  const out: JsonObject = { id: run.id };
  const source = run as unknown as JsonObject;
  for (const key of select) if (key in source) out[key] = source[key];
  return out;
}

/** The body of `POST /runs/query`, as the SDK's listRuns sends it, as a RunQuery. */
function parseRunQuery(body: unknown): { query: RunQuery; select: string[] | undefined } {
  if (!isJsonObject(body)) throw new HttpError(422, "the query must be a JSON object");
  const str = (key: string): string | undefined => {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new HttpError(422, `${key} must be a string`);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") throw new HttpError(422, `${key} must be true or false`);
    return v;
  };
  const uuidList = (key: string): string[] | undefined => {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    const list = Array.isArray(v) ? v : [v];
    if (list.length > MAX_IDS_PER_LIST) throw new HttpError(422, `${key} lists ${list.length} ids, over the limit of ${MAX_IDS_PER_LIST} per query`);
    for (const item of list) if (!isUuid(item)) throw new HttpError(422, `${key} must be a UUID or a list of UUIDs, got ${JSON.stringify(item)}`);
    return list as string[];
  };
  const uuid = (key: string): string | undefined => {
    const v = str(key);
    if (v !== undefined && !isUuid(v)) throw new HttpError(422, `${key} must be a UUID, got ${JSON.stringify(v)}`);
    return v;
  };
  const query: RunQuery = {};
  const set = <K extends keyof RunQuery>(key: K, value: RunQuery[K] | undefined): void => {
    if (value !== undefined) query[key] = value;
  };
  set("projectIds", uuidList("session"));
  set("runIds", uuidList("id"));
  set("referenceExampleIds", uuidList("reference_example"));
  set("traceId", uuid("trace"));
  set("parentRunId", uuid("parent_run"));
  set("isRoot", bool("is_root") ?? (body.execution_order === 1 ? true : undefined));
  set("error", bool("error"));
  set("runType", str("run_type"));
  const start = str("start_time");
  if (start !== undefined) {
    const t = normalizeTime(start);
    if (t === undefined) throw new HttpError(422, `start_time must be an ISO time, got ${JSON.stringify(start)}`);
    query.startTime = t;
  }
  set("filter", str("filter"));
  set("traceFilter", str("trace_filter"));
  set("treeFilter", str("tree_filter"));
  set("query", str("query"));
  set("cursor", str("cursor"));
  const order = str("order");
  if (order !== undefined && order !== "asc" && order !== "desc") throw new HttpError(422, `order must be "asc" or "desc"`);
  set("order", order);
  const limit = body.limit;
  if (limit !== undefined && limit !== null) {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) throw new HttpError(422, "limit must be a positive integer");
    query.limit = limit;
  }
  const select = body.select;
  if (select !== undefined && select !== null && (!Array.isArray(select) || !select.every((s) => typeof s === "string"))) {
    throw new HttpError(422, "select must be a list of field names");
  }
  return { query, select: Array.isArray(select) ? (select as string[]) : undefined };
}
