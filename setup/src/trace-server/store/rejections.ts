/**
 * The rejection log of the trace store: every run operation (or request part) the server refused,
 * with the rule it broke and a truncated copy of what was sent, newest first. A log for
 * troubleshooting, pruned to MAX_STORED_REJECTIONS by the ingest path. Functions of a
 * StoreConnection; use them through TraceStore.
 *
 *   recordRejection(conn, { route: "/runs", rule: "missing_field", message, payload });
 *   listRejections(conn, { traceId, limit: 100 });
 */
import { nowIso } from "../time.js";
import type { Rejection, RejectionFilter, RejectionInput, RejectionRule } from "../types.js";
import type { StoreConnection } from "./connection.js";
import type { RejectionRow } from "./rows.js";
import { Where } from "./where.js";

export function recordRejection(conn: StoreConnection, input: RejectionInput): Rejection {
  const row = conn.stmt(
    `INSERT INTO rejections (received_at, route, op, run_id, trace_id, rule, message, payload)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
  ).get(nowIso(), input.route, input.op ?? null, input.run_id ?? null, input.trace_id ?? null, input.rule, input.message, truncatePayload(input.payload)) as unknown as RejectionRow;
  return toRejection(row);
}

/** Rejections, newest first. */
export function listRejections(conn: StoreConnection, filter: RejectionFilter = {}): Rejection[] {
  const where = new Where()
    .add("trace_id = ?", filter.traceId?.toLowerCase())
    .add("run_id = ?", filter.runId?.toLowerCase())
    .add("rule = ?", filter.rule)
    .add("seq > ?", filter.afterSeq);
  const sql = `SELECT * FROM rejections ${where.sql()} ORDER BY seq DESC LIMIT ?`;
  return (conn.stmt(sql).all(...where.params, filter.limit ?? 100) as unknown as RejectionRow[]).map(toRejection);
}

/** Characters of a refused operation kept with its rejection. */
const PAYLOAD_LIMIT = 4096;

function truncatePayload(payload: unknown): string | null {
  if (payload === undefined) return null;
  let text: string;
  try {
    text = typeof payload === "string" ? payload : JSON.stringify(payload, (k, v: unknown) => (k === "raw" ? undefined : v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v));
  } catch (e) {
    // Never String(payload): on a deeply nested array it overflows the stack too, and the
    // exception would refuse the whole request instead of this one operation.
    text = `<payload not serializable: ${(e as Error).message}>`;
  }
  return text.length > PAYLOAD_LIMIT ? `${text.slice(0, PAYLOAD_LIMIT)}...[truncated ${text.length - PAYLOAD_LIMIT} chars]` : text;
}

function toRejection(row: RejectionRow): Rejection {
  return {
    seq: row.seq,
    received_at: row.received_at,
    route: row.route,
    op: row.op === "post" || row.op === "patch" ? row.op : null,
    run_id: row.run_id,
    trace_id: row.trace_id,
    rule: row.rule as RejectionRule,
    message: row.message,
    payload: row.payload,
  };
}
