/**
 * The ingest routes the SDK writes to: `POST /runs/multipart` (runs, attachments and feedback as
 * multipart parts), `POST /runs/batch`, `POST /runs`, `PATCH /runs/{id}` and `POST /feedback`.
 * Every format decodes to RunUpsert and goes through TraceStore.upsertRuns; the answer is 202
 * when every operation was stored, else 422 listing the refused ones (the others are stored).
 * Mount inside the API router: `api.use(createIngestRouter(store, { requireApiKey, maxBodyBytes, maxStoreBytes }))`.
 */
import { randomUUID } from "node:crypto";
import express, { type RequestHandler, type Response, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { partsToOperations, readMultipart } from "./multipart.js";
import { requireUuidParam } from "./params.js";
import { refuseDeep, refuseLong, storeQuota } from "./request-checks.js";
import { FeedbackConflictError, type TraceStore } from "./store.js";
import type { RejectionInput, RunUpsert, UpsertResult } from "./types.js";
import { decodeRun, isJsonObject } from "./wire.js";

export function createIngestRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number; maxStoreBytes: number | undefined }): Router {
  const { requireApiKey, maxBodyBytes } = opts;
  const withinQuota = storeQuota(store, opts.maxStoreBytes);
  const api = express.Router();

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

  api.post("/feedback", requireApiKey, withinQuota, async (req, res) => {
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value) || typeof value.key !== "string") throw new HttpError(422, "feedback needs at least a key");
    refuseLong(value.key, "key");
    refuseDeep(value, "feedback");
    const id = store.recordFeedback(value);
    res.json({ ...value, id });
  });

  return api;
}

/** Body of a 202/422 ingest answer. */
interface IngestAnswer {
  detail?: string;
  accepted: number;
  rejected: UpsertResult["rejected"];
}

function answerIngest(res: Response, result: UpsertResult, encoding: string, extra = ""): void {
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
}

function decodeAll(op: "post" | "patch", items: unknown, route: string, runs: RunUpsert[], rejections: RejectionInput[]): void {
  if (items === undefined || items === null) return;
  if (!Array.isArray(items)) throw new HttpError(422, `"${op}" must be a list of runs`);
  for (const item of items) {
    const d = decodeRun(op, item);
    if (d.ok) runs.push(...d.runs);
    else rejections.push({ route, ...d.failure });
  }
}
