import { randomUUID, timingSafeEqual } from "node:crypto";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { browserRequestRefusal, type AllowedHosts } from "../http-guard.js";
import { HttpError, readJson } from "./body.js";
import { FilterError } from "./filter.js";
import { MAX_IDS_PER_LIST, MAX_NAME_CHARS, MAX_TRACE_PAGE_RUNS } from "./limits.js";
import { partsToOperations, readMultipart } from "./multipart.js";
import { parseQuery, queryInt, queryList, queryString, redactUrl, requireUuidParam, urlBase } from "./params.js";
import { QueryBudgetError, queryRunsWithinBudget } from "./query-budget.js";
import { FeedbackConflictError, ProjectConflictError, type TraceStore } from "./store.js";
import { mountOtlp, type OtlpOptions } from "./otlp/routes.js";
import { normalizeTime } from "./time.js";
import type { JsonObject, RejectionInput, RejectionRule, StoredRun, RunQuery, RunUpsert, UpsertResult } from "./types.js";
import { createShareRouter, createV2ShareRouter } from "./share.js";
import { createRunStatsRouter } from "./run-stats-route.js";
import { createThreadsRouter } from "./threads.js";
import { createTracesQueryRouter } from "./traces-query.js";
import { createV2Router } from "./v2.js";
import { isUuid } from "./validate.js";
import { decodeRun, isJsonObject, MAX_NESTING, tooDeepField } from "./wire.js";

export const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024;

export interface MountContext {
  store: TraceStore;
  /** Express middleware enforcing the API key (a no-op when none is configured). */
  requireApiKey: RequestHandler;
  maxBodyBytes: number;
  log: (line: string) => void;
}

export interface TraceServerAppOptions {
  apiKey?: string;
  maxBodyBytes?: number;
  log?: (line: string) => void;
  /**
   * What `/info` offers the SDK. It compresses with zstd when offered (and
   * Node has it), else gzip, else not at all; without multipart it posts JSON
   * to /runs/batch. Every route and encoding is accepted regardless: this only
   * steers what the SDK picks.
   */
  advertise?: { zstd?: boolean; gzip?: boolean; multipart?: boolean };
  /**
   * Called after the API routes and before the 404 handler, to add more
   * routes (the trace viewer at "/", OTLP ingest). Routes added here are
   * public unless they use `ctx.requireApiKey`.
   */
  mount?: (app: Express, ctx: MountContext) => void;
  /**
   * Refuse writes (runs, feedback, projects) with 429 once the store uses more than this many
   * bytes, as LangSmith answers 429 when a usage limit is reached. Default: no quota.
   */
  maxStoreBytes?: number;
  /**
   * "loopback": answer only requests whose Host names this machine (127.0.0.1,
   * localhost, [::1]), which defeats DNS rebinding; startTraceServer sets it
   * when it listens on a loopback address. Default "any".
   */
  allowedHosts?: AllowedHosts;
  /** OTLP ingest (`/otel/v1/traces`): how long a span waits for its parent before it is stored as an orphan. */
  otlp?: OtlpOptions;
}

/**
 * The LangSmith release whose API this server implements, with `+local` build
 * metadata. The SDK's generated resources (`client.runs`, `client.traces`)
 * warn when `/info` reports a version below the one that introduced them
 * (0.16.0); it compares major.minor.patch numerically, and by semver build
 * metadata does not change precedence, so this is exactly 0.16.0. Resources
 * that need a later release (`client.sessions`, 0.18.0) still warn, truthfully.
 */
export const LOCAL_VERSION = "0.16.0+local";

/** Body of a 202/422 ingest answer. */
interface IngestAnswer {
  detail?: string;
  accepted: number;
  rejected: UpsertResult["rejected"];
}

function keyMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bearer(req: Request): string | undefined {
  const auth = req.headers.authorization;
  const m = auth ? /^Bearer\s+(.+)$/i.exec(auth) : null;
  return m?.[1]?.trim();
}

/** The 4xx status Express or its router attached to an error it raised, if any. */
function clientErrorStatus(err: unknown): number | undefined {
  const status = err instanceof Error ? (err as Error & { status?: unknown }).status : undefined;
  return typeof status === "number" && status >= 400 && status < 500 ? status : undefined;
}

/** `value`, unless it is longer than a name may be (see MAX_NAME_CHARS). */
function refuseLong(value: string, what: string): string {
  if (value.length > MAX_NAME_CHARS) throw new HttpError(422, `${what} is ${value.length} characters, over the limit of ${MAX_NAME_CHARS}`);
  return value;
}

/** `listProjects({ metadata })` sends the wanted metadata as JSON text. */
function parseMetadataParam(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(422, `metadata must be a JSON object, got ${JSON.stringify(text)}`);
  }
  if (!isJsonObject(value)) throw new HttpError(422, `metadata must be a JSON object, got ${JSON.stringify(text)}`);
  return value;
}

/** Refuse a body that could be stored but not read back (see MAX_NESTING). */
function refuseDeep(body: JsonObject, what: string): void {
  const deep = tooDeepField(body);
  if (deep !== undefined) throw new HttpError(422, `${what}: ${deep} nests objects/arrays deeper than ${MAX_NESTING} levels`);
}

function pickFields(run: StoredRun, select: readonly string[] | undefined): JsonObject {
  if (!select) return run as unknown as JsonObject;
  const out: JsonObject = { id: run.id };
  const source = run as unknown as JsonObject;
  for (const key of select) if (key in source) out[key] = source[key];
  return out;
}

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

/**
 * The LangSmith-compatible HTTP API over a TraceStore: the ingest routes the
 * SDK writes to, the read routes its Client reads from, and JSON views for
 * troubleshooting (`/api/rejections`, `/api/traces`).
 */
export function createTraceServerApp(store: TraceStore, opts: TraceServerAppOptions = {}): Express {
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = opts.log ?? ((): void => undefined);
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", parseQuery);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on("close", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const detail = typeof res.locals.logDetail === "string" ? ` ${res.locals.logDetail}` : "";
      const outcome = res.writableFinished ? String(res.statusCode) : "(client went away)";
      log(`${req.method} ${redactUrl(req.originalUrl)} ${outcome} ${ms.toFixed(1)}ms${detail}`);
    });
    next();
  });

  // Without it a web page could POST runs (multipart needs no CORS preflight) or, through DNS
  // rebinding, read traces.
  app.use((req, _res, next) => {
    const refusal = browserRequestRefusal(req.method, req.headers, opts.allowedHosts ?? "any");
    next(refusal === undefined ? undefined : new HttpError(403, refusal));
  });

  const requireApiKey: RequestHandler = (req, _res, next) => {
    if (opts.apiKey === undefined) return next();
    const header = req.headers["x-api-key"];
    const given = (typeof header === "string" && header !== "" ? header : undefined) ?? bearer(req);
    if (keyMatches(opts.apiKey, given)) return next();
    next(new HttpError(401, given === undefined ? "missing API key: send x-api-key or Authorization: Bearer" : "invalid API key"));
  };

  app.get(["/info", "/api/v1/info"], (_req, res) => {
    res.json({
      version: LOCAL_VERSION,
      license_expiration_time: null,
      tenant_handle: null,
      customer_info: null,
      batch_ingest_config: {
        use_multipart_endpoint: opts.advertise?.multipart ?? true,
        scale_up_qsize_trigger: 1000,
        scale_up_nthreads_limit: 16,
        scale_down_nempty_trigger: 4,
        size_limit: 100,
        // Half the body limit: the SDK may exceed its batch size by one run.
        size_limit_bytes: Math.floor(maxBodyBytes / 2),
      },
      instance_flags: {
        gzip_body_enabled: opts.advertise?.gzip ?? true,
        zstd_compression_enabled: opts.advertise?.zstd ?? true,
        dataset_examples_multipart_enabled: false,
        ch_query_enabled: true,
        sdb_query_enabled: false,
      },
      local_trace_server: { max_body_bytes: maxBodyBytes, api_key_required: opts.apiKey !== undefined },
    });
  });

  const api = express.Router();

  const withinQuota: RequestHandler = (_req, _res, next) => {
    const quota = opts.maxStoreBytes;
    if (quota === undefined) return next();
    const used = store.sizeBytes();
    if (used <= quota) return next();
    next(new HttpError(429, `the store uses ${used} bytes, over its quota of ${quota} (maxStoreBytes); delete projects or start an empty store to write again`, {}, { "x-should-retry": "false" }));
  };

  const answerIngest = (res: Response, result: UpsertResult, encoding: string, extra = ""): void => {
    // Past the per-request limit the last entry of `rejected` counts the rest instead of being one.
    const rejectedCount = result.unrecorded === undefined ? result.rejected.length : result.rejected.length - 1 + result.unrecorded;
    res.locals.logDetail = `${result.accepted.length} ops accepted, ${rejectedCount} rejected${encoding !== "identity" ? ` (${encoding})` : ""}${extra}`;
    if (result.rejected.length > 0) {
      // detail first: the SDK prints the body as it comes, and this is the line people read.
      const body: IngestAnswer = {
        detail: `${rejectedCount} operation(s) rejected, ${result.accepted.length} accepted: ` + result.rejected.map((r) => `[${r.rule}] ${r.message}`).join("; "),
        accepted: result.accepted.length,
        rejected: result.rejected,
      };
      res.status(422).json(body);
      return;
    }
    const body: IngestAnswer = { accepted: result.accepted.length, rejected: [] };
    res.status(202).json(body);
  };

  const decodeAll = (op: "post" | "patch", items: unknown, route: string, runs: RunUpsert[], rejections: RejectionInput[]): void => {
    if (items === undefined || items === null) return;
    if (!Array.isArray(items)) throw new HttpError(422, `"${op}" must be a list of runs`);
    for (const item of items) {
      const d = decodeRun(op, item);
      if (d.ok) runs.push(...d.runs);
      else rejections.push({ route, ...d.failure });
    }
  };

  api.post("/runs/multipart", requireApiKey, withinQuota, async (req, res) => {
    const { parts, encoding } = await readMultipart(req, maxBodyBytes);
    const ops = partsToOperations(parts, "/runs/multipart");
    const rejections = [...ops.rejections];
    for (const f of ops.feedback) {
      try {
        store.recordFeedback(f);
      } catch (e) {
        if (!(e instanceof FeedbackConflictError)) throw e;
        rejections.push({ route: "/runs/multipart", op: null, run_id: typeof f.run_id === "string" ? f.run_id : null, rule: "conflict", message: `part "feedback.${String(f.id)}": ${e.message}`, payload: f });
      }
    }
    const result = store.upsertRuns(ops.runs, { route: "/runs/multipart", rejections });
    answerIngest(res, result, encoding, ops.feedback.length ? `, ${ops.feedback.length} feedback` : "");
  });

  api.post("/runs/batch", requireApiKey, withinQuota, async (req, res) => {
    const { value, encoding } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value)) throw new HttpError(422, 'a batch must be a JSON object {"post": [...], "patch": [...]}');
    const runs: RunUpsert[] = [];
    const rejections: RejectionInput[] = [];
    decodeAll("post", value.post, "/runs/batch", runs, rejections);
    decodeAll("patch", value.patch, "/runs/batch", runs, rejections);
    answerIngest(res, store.upsertRuns(runs, { route: "/runs/batch", rejections }), encoding);
  });

  api.post("/runs", requireApiKey, withinQuota, async (req, res) => {
    const { value, encoding } = await readJson(req, maxBodyBytes);
    const runs: RunUpsert[] = [];
    const rejections: RejectionInput[] = [];
    // LangSmith assigns an id to a run created without one (client.createRun does not add it).
    const withId = isJsonObject(value) && (value.id === undefined || value.id === null) ? { ...value, id: randomUUID() } : value;
    decodeAll("post", [withId], "/runs", runs, rejections);
    answerIngest(res, store.upsertRuns(runs, { route: "/runs", rejections }), encoding);
  });

  api.patch("/runs/:runId", requireApiKey, withinQuota, async (req, res) => {
    const runId = requireUuidParam(req.params.runId, "run id");
    const { value, encoding } = await readJson(req, maxBodyBytes);
    const route = `/runs/${runId}`;
    const d = decodeRun("patch", value, runId);
    const result = d.ok
      ? store.upsertRuns(d.runs, { route })
      : store.upsertRuns([], { route, rejections: [{ route, ...d.failure }] });
    answerIngest(res, result, encoding);
  });

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

  const projectWithStats = (id: string, includeStats: boolean): JsonObject | undefined => {
    const project = store.getProject(id);
    if (!project) return undefined;
    return includeStats ? { ...project, ...store.projectStats(id) } : (project as unknown as JsonObject);
  };

  api.get("/sessions", requireApiKey, (req, res) => {
    const includeStats = queryString(req.query, "include_stats") === "true";
    const ids = queryList(req.query, "id");
    for (const id of ids) requireUuidParam(id, "id");
    const filter: Parameters<TraceStore["listProjects"]>[0] = {
      limit: Math.min(queryInt(req.query, "limit", 100), 100),
      offset: queryInt(req.query, "offset", 0),
    };
    if (ids.length) filter.ids = ids.map((i) => i.toLowerCase());
    const name = queryString(req.query, "name");
    if (name !== undefined) filter.name = name;
    const nameContains = queryString(req.query, "name_contains");
    if (nameContains !== undefined) filter.nameContains = nameContains;
    const metadata = queryString(req.query, "metadata");
    if (metadata !== undefined) filter.metadata = parseMetadataParam(metadata);
    res.json(store.listProjects(filter).map((p) => (includeStats ? { ...p, ...store.projectStats(p.id) } : p)));
  });

  api.get("/sessions/:projectId", requireApiKey, (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    const project = projectWithStats(id, queryString(req.query, "include_stats") === "true");
    if (!project) throw new HttpError(404, `project ${id} not found`);
    res.json(project);
  });

  api.post("/sessions", requireApiKey, withinQuota, async (req, res) => {
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value) || typeof value.name !== "string" || value.name === "") throw new HttpError(422, "name is required");
    refuseLong(value.name, "name");
    refuseDeep(value, "project");
    const project = store.createProject({
      name: value.name,
      description: typeof value.description === "string" ? value.description : null,
      extra: isJsonObject(value.extra) ? value.extra : null,
      upsert: queryString(req.query, "upsert") === "true",
    });
    res.json(project);
  });

  api.patch("/sessions/:projectId", requireApiKey, async (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value)) throw new HttpError(422, "the update must be a JSON object");
    refuseDeep(value, "project update");
    const endTime = value.end_time === null || value.end_time === undefined ? value.end_time : normalizeTime(value.end_time);
    if (endTime === undefined && value.end_time !== undefined) throw new HttpError(422, "end_time must be an ISO time");
    const patch: Parameters<TraceStore["updateProject"]>[1] = {};
    if (typeof value.name === "string") patch.name = refuseLong(value.name, "name");
    if (typeof value.description === "string" || value.description === null) patch.description = value.description;
    if (isJsonObject(value.extra)) patch.extra = value.extra;
    if (endTime !== undefined) patch.end_time = endTime;
    const project = store.updateProject(id, patch);
    if (!project) throw new HttpError(404, `project ${id} not found`);
    res.json(project);
  });

  api.delete("/sessions/:projectId", requireApiKey, (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    if (!store.deleteProject(id)) throw new HttpError(404, `project ${id} not found`);
    res.status(202).json({ message: "deleted" });
  });

  api.post("/feedback", requireApiKey, withinQuota, async (req, res) => {
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value) || typeof value.key !== "string") throw new HttpError(422, "feedback needs at least a key");
    refuseLong(value.key, "key");
    refuseDeep(value, "feedback");
    const id = store.recordFeedback(value);
    res.json({ ...value, id });
  });

  api.get("/feedback", requireApiKey, (req, res) => {
    const filter: Parameters<TraceStore["listFeedback"]>[0] = {
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
    const filter: Parameters<TraceStore["listRejections"]>[0] = { limit: Math.min(queryInt(req.query, "limit", 100), 1000) };
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
    const filter: Parameters<TraceStore["listTraces"]>[0] = {
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

  api.use(createShareRouter(store, { requireApiKey, maxBodyBytes }), createRunStatsRouter(store, { requireApiKey, maxBodyBytes }));

  // The SDK's generated client strips /api/v1 from the endpoint and calls /api/v2/... on the host.
  app.use("/api/v2", createV2Router(store, { requireApiKey, maxBodyBytes }));
  for (const extra of [createThreadsRouter, createTracesQueryRouter, createV2ShareRouter]) app.use("/api/v2", extra(store, { requireApiKey, maxBodyBytes }));
  // Self-hosted LangSmith serves the same API under /api/v1; accept both base URLs.
  app.use("/api/v1", api);
  app.use(api);
  mountOtlp(app, { store, requireApiKey, maxBodyBytes, log }, opts.otlp);

  opts.mount?.(app, { store, requireApiKey, maxBodyBytes, log });

  app.use((req, _res, next) => next(new HttpError(404, `no route for ${req.method} ${req.path}`)));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let detail = "internal error";
    let extra: Record<string, unknown> = {};
    if (err instanceof HttpError) {
      status = err.status;
      detail = err.message;
      extra = err.extra;
    } else if (err instanceof FilterError || err instanceof RangeError || err instanceof QueryBudgetError) {
      status = 400;
      detail = err.message;
    } else if (err instanceof ProjectConflictError || err instanceof FeedbackConflictError) {
      status = 409;
      detail = err.message;
    } else if (clientErrorStatus(err) !== undefined) {
      // Express's own refusals, such as a path parameter with a malformed percent-escape (a URIError).
      status = clientErrorStatus(err) as number;
      detail = (err as Error).message;
    } else {
      log(`ERROR ${req.method} ${redactUrl(req.originalUrl)}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    res.locals.logDetail = detail;
    if (res.headersSent) {
      res.end();
      return;
    }
    // A request refused before its body was read (401, 413, 429 ...) leaves bytes the connection cannot reuse.
    if (status === 413 || !req.complete) res.setHeader("Connection", "close");
    if (err instanceof HttpError) for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    res.status(status).json({ detail, ...extra });
  });

  return app;
}
