// OTLP/HTTP trace ingest for the local trace server: `POST /otel/v1/traces` (LangSmith's path) and
// `/api/v1/otel/v1/traces` (self-hosted LangSmith's), protobuf or JSON, gzip or not; plus
// `GET /api/otel/pending`, the spans still waiting for their parent. createTraceServerApp mounts
// it; an OpenTelemetry exporter then needs only
//
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:1984/otel/v1/traces
//   OTEL_EXPORTER_OTLP_HEADERS=x-api-key=local,Langsmith-Project=my-project
//
// Answers follow the OTLP/HTTP spec: 200 with an ExportTraceServiceResponse in the request's
// encoding, with `partialSuccess` counting the spans that were refused (the others are stored);
// 4xx with a google.rpc.Status when the request as a whole cannot be read. Refused spans are
// also recorded at /api/rejections, like refused native runs.
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import protobuf from "protobufjs";
import type { MountContext } from "../app.js";
import { closeAfterRefusal, HttpError, readBody } from "../body.js";
import { queryInt } from "../params.js";
import type { RejectionInput } from "../types.js";
import { decodeExportRequest, otlpFormat, responseType, type OtlpFormat } from "./decode.js";
import { otlpIngestFor, type OtlpIngestOptions } from "./ingest.js";
import { spanIdToRunId, spanToRun, type MappedSpan } from "./mapping.js";

export type OtlpOptions = Omit<OtlpIngestOptions, "log">;

/** google.rpc.Status, the body OTLP/HTTP prescribes for a failed request (details are never sent). */
const statusType = protobuf.Root.fromJSON({
  nested: { google: { nested: { rpc: { nested: { Status: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } } } } } } },
}).lookupType("google.rpc.Status");

/** gRPC status codes for the HTTP statuses this route answers with. */
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 500: 13 };

/** Add the OTLP routes to the trace server app (before its 404 handler). */
export function mountOtlp(app: Express, ctx: MountContext, opts: OtlpOptions = {}): void {
  const ingest = otlpIngestFor(ctx.store, { ...opts, log: ctx.log });
  const router = express.Router();

  router.post(["/otel/v1/traces", "/api/v1/otel/v1/traces"], ctx.requireApiKey, async (req, res) => {
    const format = otlpFormat(req.headers["content-type"]);
    res.locals.otlpFormat = format;
    const { body, encoding } = await readBody(req, ctx.maxBodyBytes);
    const decoded = decodeExportRequest(body, format);
    const route = req.path;
    const project = req.get("langsmith-project")?.trim() || undefined;
    const rejections: RejectionInput[] = decoded.invalid.map((bad) => ({
      route,
      op: "post",
      run_id: bad.spanId === undefined ? null : spanIdToRunId(bad.spanId),
      rule: "invalid_field",
      message: bad.message,
    }));
    const mapped: MappedSpan[] = [];
    for (const span of decoded.spans) {
      const m = spanToRun(span, { project });
      if ("rule" in m) {
        const payload = { name: span.name, traceId: span.traceId, spanId: span.spanId, attributes: span.attributes };
        rejections.push({ route, op: "post", run_id: spanIdToRunId(span.spanId), rule: m.rule, message: `${span.where} (span ${span.spanId} "${span.name}"): ${m.message}`, payload });
      } else mapped.push(m);
    }
    const { result, held } = ingest.ingest(mapped, { route, rejections });
    // Past the store's per-request cap, rejections are counted in one summary entry instead of listed.
    const rejected = result.unrecorded === undefined ? result.rejected.length : result.rejected.length - 1 + result.unrecorded;
    res.locals.logDetail =
      `${decoded.spans.length + decoded.invalid.length} spans: ${result.accepted.length} stored, ${held} waiting for their parent, ` +
      `${rejected} rejected (${format}${encoding === "identity" ? "" : `, ${encoding}`})`;
    const partial = rejected === 0 ? {} : {
      partialSuccess: {
        rejectedSpans: rejected,
        errorMessage: `${rejected} span(s) rejected, the others stored: ` + result.rejected.map((r) => `[${r.rule}] ${r.message}`).join("; ").slice(0, 4000),
      },
    };
    send(res, 200, format, responseType.encode(responseType.fromObject(partial)).finish(), partial);
  });

  router.get("/api/otel/pending", ctx.requireApiKey, (req, res) => {
    res.json({ pending: ingest.listPending(Math.min(queryInt(req.query, "limit", 100), 1000)) });
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    // Only the OTLP export route answers in OTLP's shape; anything else keeps the app's usual errors.
    if (!/\/otel\/v1\/traces$/.test(req.path)) return next(err);
    let status = 500;
    let message = "internal error";
    if (err instanceof HttpError) {
      status = err.status;
      message = err.message;
    } else if (err instanceof RangeError) {
      status = 400;
      message = err.message;
    } else {
      ctx.log(`ERROR ${req.method} ${req.originalUrl}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    res.locals.logDetail = message;
    if (res.headersSent) {
      res.end();
      return;
    }
    // The unread rest of the body is drained when that is bounded, else the connection closes.
    if (closeAfterRefusal(req, ctx.maxBodyBytes)) res.setHeader("Connection", "close");
    const format = (res.locals.otlpFormat as OtlpFormat | undefined) ?? formatOrJson(req);
    const body = { code: GRPC_CODE[status] ?? 2, message };
    send(res, status, format, statusType.encode(statusType.fromObject(body)).finish(), body);
  });

  app.use(router);
}

function formatOrJson(req: Request): OtlpFormat {
  try {
    return otlpFormat(req.headers["content-type"]);
  } catch {
    return "json";
  }
}

/** Answer in the request's encoding; int64 fields are decimal strings in OTLP JSON. */
function send(res: Response, status: number, format: OtlpFormat, encoded: Uint8Array, plain: object): void {
  if (format === "protobuf") {
    res.status(status).type("application/x-protobuf").send(Buffer.from(encoded));
    return;
  }
  res.status(status).type("application/json").send(JSON.stringify(plain, (key, value: unknown) => (key === "rejectedSpans" && typeof value === "number" ? String(value) : value)));
}
