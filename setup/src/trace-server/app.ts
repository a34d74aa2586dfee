// The trace server's Express app: the LangSmith-compatible API over a TraceStore. This file
// holds what every route shares (the request log, the browser guard, the API key, `/info`, the
// error answers) and the route table; the routes live by concern in ingest-routes.ts,
// read-routes.ts, project-routes.ts, share.ts, run-stats-route.ts, threads.ts, traces-query.ts,
// v2.ts and otlp/routes.ts. Use: `createServer(createTraceServerApp(store, { apiKey, mount: mountViewer }))`,
// or startTraceServer (server.ts), which does that and listens.
import { timingSafeEqual } from "node:crypto";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { browserRequestRefusal, type AllowedHosts } from "../http-guard.js";
import { closeAfterRefusal, HttpError } from "./body.js";
import { FilterError } from "./filter.js";
import { createIngestRouter } from "./ingest-routes.js";
import { parseQuery, redactUrl } from "./params.js";
import { createProjectRouter } from "./project-routes.js";
import { ClientGoneError, QueryBudgetError } from "./query-budget.js";
import { createReadRouter } from "./read-routes.js";
import { FeedbackConflictError, ProjectConflictError, type TraceStore } from "./store.js";
import { mountOtlp, type OtlpOptions } from "./otlp/routes.js";
import { createShareRouter, createV2ShareRouter } from "./share.js";
import { createRunStatsRouter } from "./run-stats-route.js";
import { createThreadsRouter } from "./threads.js";
import { createTracesQueryRouter } from "./traces-query.js";
import { createV2Router } from "./v2.js";

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
  const routeOpts = { requireApiKey, maxBodyBytes, maxStoreBytes: opts.maxStoreBytes };
  api.use(createIngestRouter(store, routeOpts), createReadRouter(store, routeOpts), createProjectRouter(store, routeOpts));
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
    } else if (err instanceof FilterError || err instanceof RangeError || err instanceof QueryBudgetError || err instanceof ClientGoneError) {
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
    // A body refused before it was read to its end is drained when that is bounded, else the connection closes.
    if (closeAfterRefusal(req, maxBodyBytes)) res.setHeader("Connection", "close");
    if (err instanceof HttpError) for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    res.status(status).json({ detail, ...extra });
  });

  return app;
}
