import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { getDefaultProjectName } from "langsmith";
import { diagnoseStoredTrace } from "../doctor/viewer.js";
import type { MountContext } from "../trace-server/app.js";
import { HttpError } from "../trace-server/body.js";
import { urlBase } from "../trace-server/params.js";
import { QueryBudgetError } from "../trace-server/query-budget.js";
import type { TraceStore } from "../trace-server/store.js";
import type { RunStatus, TraceFilter, TraceSummary } from "../trace-server/types.js";
import { isUuid } from "../trace-server/validate.js";
import {
  ASSET_PATH,
  layoutStoredRuns,
  renderErrorPage,
  renderListPage,
  renderRunDetails,
  renderTracePage,
  renderTraceRegions,
  renderTraceRows,
  type ListFilters,
  type StatusFilter,
  type TracePageInput,
} from "./pages.js";
import { mountSharePage } from "./share-page.js";
import { mountStatsPage } from "./stats-page.js";
import { mountThreadPages } from "./threads-page.js";

/** Rows per page of the trace list. */
export const LIST_PAGE_SIZE = 50;
/**
 * Runs a trace page shows, the first in execution order (a tree: ancestors come first). Rendering
 * grows with the runs; past this the page says how many it leaves out and where to read them.
 */
export const MAX_VIEW_RUNS = 2000;
const KEY_COOKIE = "trace_viewer_key";

/**
 * Only same-origin scripts and styles; inline style attributes are allowed
 * because bar positions and service colours are computed per run (from
 * numbers and a fixed palette, never from client strings).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

function assetDir(): string {
  // From src/ the assets sit next to this file; the compiled dist/ has no copy and reads them from src/.
  const candidates = [new URL("./assets/", import.meta.url), new URL("../../src/viewer/assets/", import.meta.url)];
  for (const dir of candidates) {
    const path = fileURLToPath(dir);
    if (existsSync(`${path}viewer.js`)) return path;
  }
  throw new Error(`trace viewer assets not found (looked in ${candidates.map((c) => fileURLToPath(c)).join(", ")})`);
}

function loadAssets(): Map<string, { type: string; body: string }> {
  const dir = assetDir();
  return new Map([
    ["viewer.js", { type: "text/javascript; charset=utf-8", body: readFileSync(`${dir}viewer.js`, "utf8") }],
    ["viewer.css", { type: "text/css; charset=utf-8", body: readFileSync(`${dir}viewer.css`, "utf8") }],
  ]);
}

function one(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
}

/**
 * The list's filters from its query. Without a `project` parameter the list shows `defaultProject`,
 * as LangSmith opens on one project; `project=` (the picker's "All projects") shows every project.
 */
export function parseListFilters(query: Request["query"], defaultProject: string): ListFilters {
  const filters: ListFilters = {};
  const project = query.project === undefined ? defaultProject : one(query.project);
  if (project) filters.project = project;
  const service = one(query.service);
  if (service) filters.service = service;
  const status = one(query.status);
  if (status === "ok" || status === "error" || status === "running") filters.status = status satisfies StatusFilter;
  const name = one(query.name);
  if (name) filters.name = name;
  return filters;
}

/** The viewer's status words, as the store's trace statuses. */
const STORE_STATUS = { ok: "success", error: "error", running: "pending" } as const satisfies Record<StatusFilter, RunStatus>;

/** One page of traces, newest first, filtered by the store in one query. */
export function findTraces(store: TraceStore, filters: ListFilters, offset: number, limit: number): { traces: TraceSummary[]; hasMore: boolean } {
  const filter: TraceFilter = { limit: limit + 1, offset };
  if (filters.project) {
    if (isUuid(filters.project)) filter.projectId = filters.project.toLowerCase();
    else filter.projectName = filters.project;
  }
  if (filters.service) filter.service = filters.service;
  if (filters.status) filter.status = STORE_STATUS[filters.status];
  if (filters.name) filter.rootNameContains = filters.name;
  const traces = store.listTraces(filter);
  return { traces: traces.slice(0, limit), hasMore: traces.length > limit };
}

function knownServices(store: TraceStore): string[] {
  const set = new Set<string>();
  for (const t of store.listTraces({ limit: 500 })) for (const s of t.services) set.add(s);
  return [...set].sort();
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * A browser cannot send x-api-key when following a link, so when the server
 * has an API key the viewer also takes it once as `?key=` (kept in an
 * HttpOnly, same-site cookie) and then checks it with the server's own guard.
 */
function viewerAuth(requireApiKey: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const fromQuery = one(req.query.key);
    const given = fromQuery ?? cookie(req, KEY_COOKIE);
    if (given !== undefined && req.headers["x-api-key"] === undefined && req.headers.authorization === undefined) req.headers["x-api-key"] = given;
    requireApiKey(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err);
      if (fromQuery === undefined) return next();
      res.cookie(KEY_COOKIE, fromQuery, { httpOnly: true, sameSite: "strict", path: "/" });
      // Not `new URL(req.originalUrl, base)`: "//?key=x" reads as a URL with an empty host and throws.
      const at = req.originalUrl.indexOf("?");
      const query = new URLSearchParams(at === -1 ? "" : req.originalUrl.slice(at + 1));
      query.delete("key");
      // One leading slash: "//host" in a Location header would send the browser to another site.
      const path = `/${req.path.replace(/^\/+/, "")}`;
      res.redirect(303, `${path}${query.size > 0 ? `?${query}` : ""}`);
    });
  };
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cache-Control", "no-store");
  next();
}

function traceInput(store: TraceStore, req: Request, traceId: string, selected: string | undefined): TracePageInput {
  // Taken before the reads: nothing can change the store between them (they are synchronous).
  const v = store.changeToken(traceId);
  const runs = store.getTraceRuns(traceId, { urlBase: urlBase(req), limit: MAX_VIEW_RUNS });
  const runCount = runs.length < MAX_VIEW_RUNS ? runs.length : store.countTraceRuns(traceId);
  const rejections = store.listRejections({ traceId, limit: 1000 });
  const projectNames = new Map<string, string>();
  for (const r of runs) if (!projectNames.has(r.session_id)) projectNames.set(r.session_id, store.getProject(r.session_id)?.name ?? r.session_id);
  const selectedRunId = selected && runs.some((r) => r.id === selected) ? selected : undefined;
  const doctor = runs.length > 0 || rejections.length > 0 ? () => diagnoseStoredTrace(store, traceId, runs, rejections) : undefined;
  return { traceId, runs, runCount, rejections, projectNames, selectedRunId, version: v, ...(doctor ? { doctor } : {}) };
}

function traceIdParam(req: Request): string {
  const id = req.params.traceId;
  if (!isUuid(id)) throw new HttpError(404, `${JSON.stringify(id)} is not a trace id (a UUID)`);
  return id.toLowerCase();
}

export interface ViewerOptions {
  /**
   * The project the trace list opens on. Default: the one the SDK writes to when code names none
   * (its getDefaultProjectName: LANGSMITH_PROJECT, else LANGCHAIN_PROJECT, else "default").
   */
  defaultProject?: string;
}

/**
 * Adds the trace viewer to a trace server app: the trace list at "/" (on the default project;
 * "All projects" in its picker shows every one), a page per trace at "/traces/<traceId>"
 * (`?run=<runId>` selects a run), the JSON state those pages poll for live updates, and their
 * script and stylesheet.
 */
export function mountViewer(app: Express, ctx: MountContext, opts: ViewerOptions = {}): void {
  const assets = loadAssets();
  const { store } = ctx;
  const defaultProject = opts.defaultProject ?? getDefaultProjectName();
  const router = express.Router();
  router.use(securityHeaders);

  // A route per asset name: a `/:name` route here answered 404 for list-state, which shares the prefix.
  for (const [name, asset] of assets) {
    router.get(`${ASSET_PATH}/${name}`, (_req, res) => {
      res.setHeader("Cache-Control", "no-cache");
      res.type(asset.type).send(asset.body);
    });
  }

  const auth = viewerAuth(ctx.requireApiKey);

  const listState = (req: Request): { html: string; version: string; filters: ListFilters; offset: number; page: ReturnType<typeof findTraces> } => {
    const v = store.changeToken();
    const filters = parseListFilters(req.query, defaultProject);
    const offsetText = one(req.query.offset);
    // SQLite refuses an OFFSET beyond 64 bits; any offset that large is past the last trace anyway.
    const offset = offsetText !== undefined && /^\d+$/.test(offsetText) ? Math.min(Number(offsetText), Number.MAX_SAFE_INTEGER) : 0;
    const page = findTraces(store, filters, offset, LIST_PAGE_SIZE);
    const html = renderTraceRows({ traces: page.traces, filters, defaultProject });
    return { html, version: v, filters, offset, page };
  };

  router.get("/", auth, (req, res) => {
    const { version: v, filters, offset, page } = listState(req);
    res.type("html").send(
      renderListPage({
        traces: page.traces,
        filters,
        defaultProject,
        projects: store.listProjects({ limit: 100 }),
        knownServices: knownServices(store),
        offset,
        pageSize: LIST_PAGE_SIZE,
        hasMore: page.hasMore,
        version: v,
      }),
    );
  });

  router.get(`${ASSET_PATH}/list-state`, auth, (req, res) => {
    // Unchanged store: answered before any query or rendering, so an open tab's poll costs nothing.
    if (one(req.query.v) === store.changeToken()) {
      res.status(204).end();
      return;
    }
    const state = listState(req);
    res.json({ version: state.version, rows: state.html });
  });

  router.get("/traces/:traceId", auth, (req, res) => {
    const traceId = traceIdParam(req);
    const input = traceInput(store, req, traceId, one(req.query.run));
    // Unknown traces still get the page: a link printed before the runs arrive fills in live.
    res.status(input.runs.length === 0 && input.rejections.length === 0 ? 404 : 200).type("html").send(renderTracePage(input));
  });

  router.get("/traces/:traceId/state", auth, (req, res) => {
    const traceId = traceIdParam(req);
    const wantDetails = one(req.query.details) === "1";
    // An unchanged trace is answered before any run is read or rendered.
    if (!wantDetails && one(req.query.v) === store.changeToken(traceId)) {
      res.status(204).end();
      return;
    }
    const input = traceInput(store, req, traceId, one(req.query.run));
    const changed = one(req.query.v) !== input.version;
    const layout = layoutStoredRuns(input.runs);
    const selected = input.selectedRunId ? input.runs.find((r) => r.id === input.selectedRunId) : undefined;
    res.json({
      version: input.version,
      pending: input.runs.length === 0 || input.runs.some((r) => r.end_time === null),
      selected: input.selectedRunId ?? null,
      ...(changed ? { regions: renderTraceRegions(input, layout) } : {}),
      ...(changed || wantDetails ? { details: renderRunDetails(input, layout, selected) } : {}),
    });
  });

  mountThreadPages(router, store, auth);
  mountStatsPage(router, store, auth);
  mountSharePage(router, store);

  // Errors on viewer pages read as pages; the state endpoints keep JSON.
  router.use((raw: unknown, req: Request, res: Response, next: NextFunction) => {
    const err = raw instanceof QueryBudgetError ? new HttpError(400, raw.message) : raw;
    if (!(err instanceof HttpError) || req.path.endsWith("/state") || req.path.startsWith(`${ASSET_PATH}/`) || res.headersSent) return next(err);
    const title = err.status === 401 ? "API key required" : err.status === 404 ? "Not found" : "Error";
    const message =
      err.status === 401
        ? `This trace server requires its API key (TRACE_SERVER_API_KEY). Open this page once with ?key=<the key> appended; the viewer remembers it in a cookie. (${err.message})`
        : err.message;
    res.status(err.status).type("html").send(renderErrorPage(err.status, title, message));
  });

  app.use(router);
}
