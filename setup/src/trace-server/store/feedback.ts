/**
 * Feedback on runs in the trace store (`client.createFeedback`, multipart `feedback.<id>` parts):
 * stored under its id, listed by run and key. Runs report it in `feedback_stats` (runs.ts).
 * Functions of a StoreConnection; use them through TraceStore.
 *
 *   const id = recordFeedback(conn, { run_id, key: "correctness", score: 1 });
 *   listFeedback(conn, { runIds: [run_id] });
 */
import { randomUUID } from "node:crypto";
import { nowIso } from "../time.js";
import type { JsonObject } from "../types.js";
import type { StoreConnection } from "./connection.js";
import { Where } from "./where.js";

export interface FeedbackFilter {
  runIds?: string[];
  keys?: string[];
  limit?: number;
  offset?: number;
}

export class FeedbackConflictError extends Error {}

/**
 * Store feedback under its id (a new one when it has none). An id that is already stored with
 * another body throws FeedbackConflictError rather than replace the earlier feedback; the same
 * body again (a retried request) changes nothing.
 */
export function recordFeedback(conn: StoreConnection, body: JsonObject): string {
  conn.changes.noteUnattributed();
  const id = insertFeedback(conn, body);
  const runId = typeof body.run_id === "string" ? body.run_id.toLowerCase() : undefined;
  const run = runId === undefined ? undefined : (conn.stmt("SELECT trace_id FROM runs WHERE id = ?").get(runId) as { trace_id: string } | undefined);
  conn.changes.attribute(run ? [run.trace_id] : []);
  return id;
}

/** Feedback matching every given filter, oldest first, each with `created_at` and `modified_at`. */
export function listFeedback(conn: StoreConnection, filter: FeedbackFilter = {}): JsonObject[] {
  const where = new Where().inList("run_id", filter.runIds).inList("key", filter.keys);
  const sql = `SELECT body, received_at FROM feedback ${where.sql()} ORDER BY received_at, id LIMIT ? OFFSET ?`;
  const rows = conn.stmt(sql).all(...where.params, filter.limit ?? 100, filter.offset ?? 0) as Array<{ body: string; received_at: string }>;
  return rows.map((r) => ({ created_at: r.received_at, modified_at: r.received_at, ...(JSON.parse(r.body) as JsonObject) }));
}

function insertFeedback(conn: StoreConnection, body: JsonObject): string {
  const id = typeof body.id === "string" ? body.id : randomUUID();
  const text = JSON.stringify({ ...body, id });
  const stored = conn.stmt("SELECT body FROM feedback WHERE id = ?").get(id) as { body: string } | undefined;
  if (stored !== undefined) {
    if (stored.body === text) return id;
    throw new FeedbackConflictError(`feedback ${id} already exists with other content; feedback ids are not reused`);
  }
  conn.stmt("INSERT INTO feedback (id, run_id, trace_id, key, body, received_at) VALUES (?, ?, ?, ?, ?, ?)").run(
    id,
    typeof body.run_id === "string" ? body.run_id : null,
    typeof body.trace_id === "string" ? body.trace_id : null,
    typeof body.key === "string" ? body.key : null,
    text,
    nowIso(),
  );
  return id;
}
