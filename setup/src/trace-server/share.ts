// Sharing traces, with LangSmith's routes and shapes as langsmith 0.12 sends
// and parses them:
//   v1 (Client.shareRun / unshareRun / readRunSharedLink):
//     PUT|GET|DELETE /runs/{run_id}/share
//   v1 public reads (no API key): GET /public/{token}/run, GET /public/{token}/run/{id},
//     POST /public/{token}/runs/query
//   v2 (client.runs.share.create / delete): POST|DELETE /api/v2/runs/{id}/share
//   v2 public reads (client.public.runs.retrieve / query):
//     GET /api/v2/public/{token}/run/{id}, POST /api/v2/public/{token}/runs/query
// A token opens one whole trace (share-store.ts). An unknown or revoked token
// answers 404, as LangSmith does. Mount with `api.use(createShareRouter(...))`
// and `app.use("/api/v2", createV2ShareRouter(...))`.
import express, { type Request, type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { queryList, queryString, requireUuidParam, urlBase } from "./params.js";
import { ShareTokenTakenError, shareByToken, shareOfTrace, sharedRuns, shareTrace, unshareTrace, type TraceShare } from "./share-store.js";
import type { TraceStore } from "./store.js";
import type { JsonObject, StoredRun } from "./types.js";
import { isUuid } from "./validate.js";
import { noRetryOn501, parseSelects, parseTime, readKnownBody, rejectUnknown, toV2Run, type RunSelectField } from "./v2.js";
import { isJsonObject } from "./wire.js";

/** The v1 share routes and v1 public reads; mount inside the API router (both base URLs). */
export function createShareRouter(store: TraceStore, opts: ShareRouterOptions): Router {
  const router = express.Router();
  const { requireApiKey, maxBodyBytes } = opts;

  router.put("/runs/:runId/share", requireApiKey, async (req, res) => {
    const run = requireRun(store, req, req.params.runId);
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value)) throw new HttpError(422, 'the body must be {"run_id": ..., "share_token": ...}');
    if (value.run_id !== undefined && (!isUuid(value.run_id) || value.run_id.toLowerCase() !== run.id)) {
      throw new HttpError(422, `run_id in the body must be the run id of the URL, ${run.id}`);
    }
    if (value.share_token !== undefined && !isUuid(value.share_token)) throw new HttpError(422, `share_token must be a UUID, got ${JSON.stringify(value.share_token)}`);
    let share: TraceShare;
    try {
      share = shareTrace(store, run, value.share_token);
    } catch (e) {
      tokenTaken(e);
    }
    res.json({ run_id: share.run_id, share_token: share.token });
  });

  router.get("/runs/:runId/share", requireApiKey, (req, res) => {
    const run = requireRun(store, req, req.params.runId);
    const share = shareOfTrace(store, run.trace_id);
    res.json(share ? { run_id: share.run_id, share_token: share.token } : null);
  });

  router.delete("/runs/:runId/share", requireApiKey, (req, res) => {
    const run = requireRun(store, req, req.params.runId);
    unshareTrace(store, run.trace_id);
    res.json({});
  });

  router.get("/public/:token/run", (req, res) => {
    const share = openShare(store, req.params.token);
    res.json(publicV1(runOfShare(store, req, share, share.run_id)));
  });

  router.get("/public/:token/run/:runId", (req, res) => {
    const share = openShare(store, req.params.token);
    res.json(publicV1(runOfShare(store, req, share, req.params.runId)));
  });

  router.post("/public/:token/runs/query", async (req, res) => {
    const share = openShare(store, req.params.token);
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value)) throw new HttpError(422, 'the query must be a JSON object {"id": [...]}');
    rejectUnknown(Object.keys(value), new Set(["id"]), "public runs query");
    const ids = value.id;
    if (ids !== undefined && ids !== null && (!Array.isArray(ids) || !ids.every(isUuid))) throw new HttpError(422, "id must be a list of run UUIDs");
    const wanted = Array.isArray(ids) ? new Set(ids.map((i) => i.toLowerCase())) : new Set([share.run_id]);
    const runs = sharedRuns(store, share, urlBase(req)).filter((r) => wanted.has(r.id));
    res.json({ runs: runs.map(publicV1), cursors: { next: null, prev: null }, parsed_query: null });
  });

  // langsmith 0.12's listSharedRuns forgets the "?" before its query string, so it asks for
  // /public/<token>/runsshare_token=...; LangSmith answers that with a 404 too.
  router.get("/public/:token/:rest", (req, _res, next) => {
    if (!String(req.params.rest).startsWith("runs")) return next();
    throw new HttpError(404, `no route for GET ${req.path}: langsmith's listSharedRuns() builds this URL without "?"; use client.public.runs.query(shareToken, { selects }) (or GET /public/<token>/run/<id>)`);
  });

  return router;
}

/** `client.runs.share` and `client.public.runs`; mount at `/api/v2`. */
export function createV2ShareRouter(store: TraceStore, opts: ShareRouterOptions): Router {
  const router = express.Router();
  const { requireApiKey, maxBodyBytes } = opts;

  const readBody = (req: Request, known: ReadonlySet<string>, where: string): Promise<JsonObject> => readKnownBody(req, maxBodyBytes, known, where);

  router.post("/runs/:runId/share", requireApiKey, async (req, res) => {
    const runId = requireUuidParam(req.params.runId, "run id");
    const body = await readBody(req, SHARE_CREATE_BODY, "runs share create");
    const sessionId = bodyUuid(body, "session_id");
    const traceId = bodyUuid(body, "trace_id");
    const run = store.getRun(runId);
    if (!run || run.session_id !== sessionId || run.trace_id !== traceId) {
      throw new HttpError(404, `run ${runId} of trace ${traceId} not found in project ${sessionId}`);
    }
    try {
      res.json({ share_token: shareTrace(store, run).token });
    } catch (e) {
      tokenTaken(e);
    }
  });

  router.delete("/runs/:traceId/share", requireApiKey, async (req, res) => {
    const traceId = requireUuidParam(req.params.traceId, "trace id");
    const sessionId = bodyUuid(await readBody(req, SHARE_DELETE_BODY, "runs share delete"), "session_id");
    if (shareOfTrace(store, traceId)?.project_id === sessionId) unshareTrace(store, traceId);
    res.status(204).end();
  });

  router.get("/public/:token/run/:runId", (req, res) => {
    rejectUnknown(Object.keys(req.query), PUBLIC_RETRIEVE_QUERY, "public run retrieve");
    const share = openShare(store, req.params.token);
    // LangSmith locates the run by its start time; here the id suffices, so it is only checked.
    if (parseTime(queryString(req.query, "start_time"), "start_time") === undefined) throw new HttpError(422, "start_time is required: the run's start time (RFC 3339)");
    const { selects, parentRunId } = publicSelects(queryList(req.query, "selects"));
    const run = runOfShare(store, req, share, req.params.runId);
    res.json({ ...toV2Run(run, selects, { store, subtreeUsage: false }), ...(parentRunId ? { parent_run_id: run.parent_run_id } : {}) });
  });

  router.post("/public/:token/runs/query", async (req, res) => {
    const share = openShare(store, req.params.token);
    const body = await readBody(req, PUBLIC_QUERY_BODY, "public runs query");
    if (body.selects !== undefined && !Array.isArray(body.selects)) throw new HttpError(422, "selects must be a list of field names");
    const { selects, parentRunId } = publicSelects(Array.isArray(body.selects) ? body.selects : []);
    const runs = sharedRuns(store, share, urlBase(req)).sort((a, b) => (a.start_time ?? "").localeCompare(b.start_time ?? "") || a.dotted_order.localeCompare(b.dotted_order));
    const ctx = { store, subtreeUsage: false };
    res.json({ items: runs.map((r) => ({ ...toV2Run(r, selects, ctx), ...(parentRunId ? { parent_run_id: r.parent_run_id } : {}) })) });
  });

  router.use(noRetryOn501);
  return router;
}

interface ShareRouterOptions {
  requireApiKey: RequestHandler;
  maxBodyBytes: number;
}

/** The fields of LangSmith's `RunPublicSchema`: no project, app path, attachments or thread. */
const PUBLIC_V1_FIELDS = [
  "id", "name", "run_type", "start_time", "end_time", "status", "trace_id", "dotted_order", "parent_run_id", "parent_run_ids",
  "child_run_ids", "inputs", "outputs", "error", "extra", "events", "tags", "serialized", "reference_example_id",
  "feedback_stats", "total_tokens", "prompt_tokens", "completion_tokens", "first_token_time",
] as const satisfies ReadonlyArray<keyof StoredRun>;

/** What `client.public.runs` may select (its `RunQueryParams`); full inputs and outputs are not public in v2. */
const PUBLIC_V2_SELECTS = new Set([
  "ID", "NAME", "RUN_TYPE", "STATUS", "START_TIME", "END_TIME", "LATENCY_SECONDS", "FIRST_TOKEN_TIME", "ERROR", "ERROR_PREVIEW",
  "EXTRA", "METADATA", "INPUTS_PREVIEW", "OUTPUTS_PREVIEW", "PARENT_RUN_ID", "PARENT_RUN_IDS", "PROJECT_ID", "TRACE_ID", "THREAD_ID",
  "DOTTED_ORDER", "IS_ROOT", "REFERENCE_DATASET_ID", "TOTAL_TOKENS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "TOTAL_COST",
  "PROMPT_COST", "COMPLETION_COST", "PROMPT_TOKEN_DETAILS", "COMPLETION_TOKEN_DETAILS", "PROMPT_COST_DETAILS",
  "COMPLETION_COST_DETAILS", "PRICE_MODEL_ID", "TAGS", "THREAD_EVALUATION_TIME", "FEEDBACK_STATS",
]);

function publicV1(run: StoredRun): JsonObject {
  const out: JsonObject = {};
  for (const key of PUBLIC_V1_FIELDS) out[key] = run[key];
  return out;
}

/** `selects` of a public v2 read: the public subset, PARENT_RUN_ID (public only) split off. */
function publicSelects(values: readonly unknown[]): { selects: RunSelectField[]; parentRunId: boolean } {
  for (const v of values) {
    if (typeof v !== "string" || !PUBLIC_V2_SELECTS.has(v)) {
      throw new HttpError(422, `selects: ${JSON.stringify(v)} is not a public run field; expected one of ${[...PUBLIC_V2_SELECTS].join(", ")}`);
    }
  }
  return { selects: parseSelects(values.filter((v) => v !== "PARENT_RUN_ID")), parentRunId: values.includes("PARENT_RUN_ID") };
}

function openShare(store: TraceStore, tokenParam: unknown): TraceShare {
  const token = requireUuidParam(tokenParam, "share token");
  const share = shareByToken(store, token);
  if (!share) throw new HttpError(404, `share token ${token} not found: it was never issued, or the trace was unshared`);
  return share;
}

function runOfShare(store: TraceStore, req: Request, share: TraceShare, runIdParam: unknown): StoredRun {
  const runId = requireUuidParam(runIdParam, "run id");
  const run = sharedRuns(store, share, urlBase(req)).find((r) => r.id === runId);
  if (!run) throw new HttpError(404, `run ${runId} is not part of the shared trace`);
  return run;
}

function requireRun(store: TraceStore, req: Request, param: unknown): StoredRun {
  const runId = requireUuidParam(param, "run id");
  const run = store.getRun(runId, { urlBase: urlBase(req) });
  if (!run) throw new HttpError(404, `run ${runId} not found`);
  return run;
}

function tokenTaken(e: unknown): never {
  if (e instanceof ShareTokenTakenError) throw new HttpError(409, e.message);
  throw e;
}

const SHARE_CREATE_BODY = new Set(["session_id", "trace_id"]);
const SHARE_DELETE_BODY = new Set(["session_id"]);
const PUBLIC_RETRIEVE_QUERY = new Set(["selects", "start_time"]);
const PUBLIC_QUERY_BODY = new Set(["selects"]);

function bodyUuid(body: JsonObject, key: string): string {
  const v = body[key];
  if (!isUuid(v)) throw new HttpError(422, `${key} is required: a UUID, got ${JSON.stringify(v)}`);
  return v.toLowerCase();
}

