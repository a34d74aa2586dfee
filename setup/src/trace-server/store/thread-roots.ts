/**
 * The root runs of a project that may belong to a thread (LangSmith's threads: root runs whose
 * metadata names a `thread_id`, `session_id` or `conversation_id`), a bounded page at a time, so
 * the thread routes and pages (thread-data.ts) read a big project in slices. Rows come in turn
 * order (start time, then id, the order of the runs_project_start_id index); each says whether
 * the run carries a thread key (equal to `threadId` when given), and StoredRun.thread_id then
 * applies the keys' precedence exactly.
 *
 *   let after: ThreadRootRow | undefined;
 *   do { const rows = threadRootPage(conn, projectId, { min, after, limit: 500 }); after = rows.at(-1); } while (after);
 */
import type { StoreConnection } from "./connection.js";
import { Where } from "./where.js";

export interface ThreadRootQuery {
  /** Inclusive lower bound on the root's start time (normalized ISO). */
  min?: string | undefined;
  /** Exclusive upper bound. */
  max?: string | undefined;
  /** Only this thread's key counts as `threaded`. */
  threadId?: string | undefined;
  /** The last row of the previous page. */
  after?: ThreadRootRow | undefined;
  limit: number;
}

export interface ThreadRootRow {
  id: string;
  start_time: string;
  /** 1 when the run's metadata names a thread (this one, with `threadId`). */
  threaded: number;
}

export function threadRootPage(conn: StoreConnection, projectId: string, q: ThreadRootQuery): ThreadRootRow[] {
  const threaded = q.threadId === undefined ? `COALESCE(${THREAD_KEYS.join(", ")}) IS NOT NULL` : `? IN (${THREAD_KEYS.join(", ")})`;
  // After the first page the cursor is the lower bound: with `start_time >= min` beside it, SQLite
  // starts each page's index scan at `min` and walks every earlier page again.
  const where = new Where()
    .add("project_id = ?", projectId)
    .add("parent_run_id IS NULL")
    .add("start_time >= ?", q.after === undefined ? q.min : undefined)
    .add("start_time < ?", q.max)
    .add("(start_time, id) > (?, ?)", q.after?.start_time, q.after?.id);
  const sql = `SELECT id, start_time, ${threaded} AS threaded FROM runs ${where.sql()} ORDER BY start_time, id LIMIT ?`;
  return conn.stmt(sql).all(...(q.threadId === undefined ? [] : [q.threadId]), ...where.params, q.limit) as unknown as ThreadRootRow[];
}

/** The metadata keys that name a thread, in LangSmith's order of precedence. */
const THREAD_KEYS = ["thread_id", "session_id", "conversation_id"].map((k) => `json_extract(extra, '$.metadata.${k}')`);
