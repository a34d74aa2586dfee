/**
 * The service's Prometheus metrics (prom-client): HTTP requests, traces
 * started, sampling decisions and the tail buffer, what the SDK exported or
 * failed to export, the failed-batch backlog and its replay, and the SDK's
 * send queue. One registry per process, served
 * at GET /metrics; every series carries `service`.
 *
 *   const metrics = createMetrics("assistant");
 *   app.use(metrics.httpMiddleware);                      // requests, durations, traces started
 *   new Client({ fetchImplementation: countingFetch(metrics.recordUpload) });
 *   app.get("/metrics", metrics.handler);
 *
 * Names follow Prometheus conventions (`_total` counters, base units); the
 * recording and alert rules in prometheus/rules.yml are written against them.
 */
import { readdir } from "node:fs/promises";
import type { RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { getRequestRun, type Sampler } from "@tracing-patterns/kit";
import type { Upload } from "./export-counter.js";

export interface ServiceMetrics {
  registry: Registry;
  /** Counts each request when its response finishes: route, status, duration, and whether it started a trace. */
  httpMiddleware: RequestHandler;
  /** For countingFetch: one call per SDK upload attempt. */
  recordUpload(upload: Upload): void;
  /** After each replayFailedTraces pass. */
  recordReplay(result: { replayed: number; failed: number }): void;
  /** Counts the sampler's decisions as they happen. */
  watchSampler(sampler: Sampler): void;
  /** Read at scrape time: the SDK's queued bytes (undefined when unknown). */
  queuedBytes(read: () => number | undefined): void;
  /** GET /metrics. */
  handler: RequestHandler;
}

export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests answered, by route and status code.",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time from request to the end of the response (streamed bodies included).",
    labelNames: ["method", "route"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8],
    registers: [registry],
  });
  const tracesStarted = new Counter({
    name: "langsmith_traces_started_total",
    help: "Requests that started a new trace here (a root run), as opposed to continuing a caller's.",
    registers: [registry],
  });
  const serverRuns = new Counter({
    name: "langsmith_server_runs_total",
    help: "Requests traced by this service: a new trace (new) or a caller's continued (continued).",
    labelNames: ["trace"] as const,
    registers: [registry],
  });
  const uploads = new Counter({
    name: "langsmith_export_requests_total",
    help: "Upload attempts to the trace backend by outcome (ok, http_error, network_error); retries count separately.",
    labelNames: ["endpoint", "outcome"] as const,
    registers: [registry],
  });
  const exportedRuns = new Counter({
    name: "langsmith_export_runs_total",
    help: "Run operations (create, update) in uploads the backend accepted.",
    labelNames: ["op"] as const,
    registers: [registry],
  });
  const failedRuns = new Counter({
    name: "langsmith_export_failed_runs_total",
    help: "Run operations in upload attempts that failed (each retry counts again).",
    registers: [registry],
  });
  const exportedBytes = new Counter({
    name: "langsmith_export_bytes_total",
    help: "Bytes on the wire in uploads the backend accepted.",
    registers: [registry],
  });
  const replays = new Counter({
    name: "langsmith_replayed_batches_total",
    help: "Saved batches sent again from LANGSMITH_FAILED_TRACES_DIR, by outcome (replayed, failed).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const failedDir = process.env.LANGSMITH_FAILED_TRACES_DIR;
  new Gauge({
    name: "langsmith_failed_batches_pending",
    help: "Batches the SDK gave up on, saved in LANGSMITH_FAILED_TRACES_DIR and not yet replayed.",
    registers: [registry],
    async collect() {
      this.set(failedDir ? await countSavedBatches(failedDir) : 0);
    },
  });
  const decisions = new Counter({
    name: "langsmith_sampling_decisions_total",
    help: "Requests by sampling decision (keep, drop, tail) and who made it (own: this service, caller: a trusted caller).",
    labelNames: ["decision", "source"] as const,
    registers: [registry],
  });
  const tailKept = new Counter({
    name: "langsmith_tail_kept_total",
    help: "Tail traces kept, by reason: error, slow, downstream (a service it called kept), notified (the root kept).",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const tailDiscarded = new Counter({
    name: "langsmith_tail_discarded_total",
    help: "Tail traces discarded at the end of a request that neither failed nor was slow.",
    registers: [registry],
  });
  const droppedRuns = new Counter({
    name: "langsmith_dropped_runs_total",
    help: "Run operations discarded before they could be sent, by cause (overflow: a tail trace or the buffer was full).",
    labelNames: ["cause"] as const,
    registers: [registry],
  });
  const tailUnrecorded = new Counter({
    name: "langsmith_tail_unrecorded_traces_total",
    help: "Tail requests not recorded at all because the buffer already held its maximum number of traces.",
    registers: [registry],
  });
  const tailExpired = new Counter({
    name: "langsmith_tail_expired_traces_total",
    help: "Tail traces discarded undecided when their TTL ran out.",
    registers: [registry],
  });
  let readTail: () => { heldTraces: number; heldRuns: number; heldBytes: number; limitBytes: number } | undefined = () => undefined;
  for (const [name, help, field] of [
    ["langsmith_tail_held_traces", "Tail traces held now, waiting for their decision.", "heldTraces"],
    ["langsmith_tail_held_runs", "Run operations held now in the tail buffer.", "heldRuns"],
    ["langsmith_tail_held_bytes", "Serialized bytes held now in the tail buffer.", "heldBytes"],
    ["langsmith_tail_limit_bytes", "The tail buffer's byte limit (maxBytes).", "limitBytes"],
  ] as const) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(readTail()?.[field] ?? 0);
      },
    });
  }
  let readQueued: () => number | undefined = () => undefined;
  new Gauge({
    name: "langsmith_sdk_queue_bytes",
    help: "Serialized runs the SDK holds and has not sent yet (its estimate).",
    registers: [registry],
    collect() {
      this.set(readQueued() ?? Number.NaN);
    },
  });

  const httpMiddleware: RequestHandler = (req, res, next) => {
    const started = performance.now();
    res.once("finish", () => {
      // The matched pattern, never the raw path: ids in paths would make a series per customer.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "unmatched";
      if (route === "/metrics") return;
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ method: req.method, route }, (performance.now() - started) / 1000);
      const run = getRequestRun(req);
      if (run) {
        const started = run.id === run.trace_id;
        serverRuns.inc({ trace: started ? "new" : "continued" });
        if (started) tracesStarted.inc();
      }
    });
    next();
  };

  return {
    registry,
    httpMiddleware,
    recordUpload(upload) {
      uploads.inc({ endpoint: upload.endpoint, outcome: upload.outcome });
      if (upload.outcome === "ok") {
        exportedRuns.inc({ op: "create" }, upload.creates);
        exportedRuns.inc({ op: "update" }, upload.updates);
        exportedBytes.inc(upload.bytes);
      } else {
        failedRuns.inc(upload.creates + upload.updates);
      }
    },
    recordReplay({ replayed, failed }) {
      replays.inc({ outcome: "replayed" }, replayed);
      replays.inc({ outcome: "failed" }, failed);
    },
    watchSampler(sampler) {
      sampler.on((event) => {
        if (event.type === "decision") decisions.inc({ decision: event.decision, source: event.source });
        else if (event.type === "tail-kept") tailKept.inc({ reason: event.reason });
        else if (event.type === "tail-discarded") tailDiscarded.inc();
        else if (event.type === "tail-overflow" && event.what === "run") droppedRuns.inc({ cause: "overflow" });
        else if (event.type === "tail-overflow") tailUnrecorded.inc();
        else if (event.type === "tail-expired") tailExpired.inc();
      });
      readTail = () => ({ ...sampler.stats().tail, limitBytes: sampler.tail.limits.maxBytes });
    },
    queuedBytes(read) {
      readQueued = read;
    },
    handler: async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    },
  };
}

async function countSavedBatches(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((name) => /^trace_\d+_[0-9a-f]+\.json$/.test(name)).length;
  } catch {
    return 0;
  }
}
