/**
 * The single write path of the trace store. Every ingest format (SDK JSON, multipart, OTLP)
 * decodes to RunUpsert and lands here, so runs from any source merge into the same trees under
 * the same rules (merge.ts). A request's operations are applied in one transaction; an operation
 * that breaks a rule is recorded as a rejection and left out, the others are stored. Use through
 * TraceStore.upsertRuns.
 *
 *   const result = upsertRuns(conn, runs, { route: "/runs/batch", rejections });
 *   result.accepted; result.rejected;
 */
import { MAX_REJECTIONS_PER_REQUEST, MAX_STORED_REJECTIONS } from "../limits.js";
import { nowIso } from "../time.js";
import type { RejectionInput, RunAttachment, RunUpsert, UpsertResult } from "../types.js";
import type { StoreConnection } from "./connection.js";
import { mergeRun, readableBack, type TreeChild, type TreeLookup, type TreeNode } from "./merge.js";
import { ensureProject, getProject } from "./projects.js";
import { recordRejection } from "./rejections.js";
import { RUN_COLUMNS, type RunRow } from "./rows.js";
import { selectRun } from "./runs.js";
import { UPSERT_RUN_SQL } from "./schema.js";

export interface IngestContext {
  route: string;
  /** Refusals found before the store (undecodable operations), recorded with this request's. */
  rejections?: readonly RejectionInput[];
}

/**
 * Create or update runs by id, in one transaction (see merge.ts for the rules). Only the traces
 * written to, or rejected for, change their change tokens.
 */
export function upsertRuns(conn: StoreConnection, runs: readonly RunUpsert[], ctx: IngestContext): UpsertResult {
  conn.changes.noteUnattributed();
  const touched = new Set<string>();
  const result = conn.transaction(() => upsertInTransaction(conn, runs, ctx, touched));
  for (const r of result.rejected) if (r.trace_id !== null) touched.add(r.trace_id);
  conn.changes.attribute(touched);
  return result;
}

function upsertInTransaction(conn: StoreConnection, runs: readonly RunUpsert[], ctx: IngestContext, touched: Set<string>): UpsertResult {
  const result: UpsertResult = { accepted: [], rejected: [] };
  let unrecorded = 0;
  const reject = (input: RejectionInput): void => {
    if (result.rejected.length < MAX_REJECTIONS_PER_REQUEST) pushRejection(conn, result, input);
    else unrecorded += 1;
  };
  for (const r of ctx.rejections ?? []) reject(r);
  const now = nowIso();
  // Rows this batch computed but has not written yet. Every lookup reads
  // through them, so each operation sees exactly the row that writing
  // them one by one would have left, and a run's create and update in the
  // same request cost one row write (and one SELECT) instead of two.
  // Map order is the order of each run's first write, so rowids match too.
  const pending = new Map<string, RunRow>();
  // Pending runs by parent, for the ancestry check of a parent that arrives after its children.
  const pendingChildren = new Map<string, RunRow[]>();
  const tree: TreeLookup = {
    node: (id) => pending.get(id) ?? (conn.stmt("SELECT trace_id, dotted_order FROM runs WHERE id = ?").get(id) as TreeNode | undefined),
    children: (id) => [...(conn.stmt("SELECT id, dotted_order FROM runs WHERE parent_run_id = ?").all(id) as unknown as TreeChild[]), ...(pendingChildren.get(id) ?? [])],
  };
  const mergeCtx = {
    lookup: (id: string): RunRow | undefined => pending.get(id) ?? selectRun(conn, id),
    tree,
    hasProject: (id: string): boolean => getProject(conn, id) !== undefined,
    ensureProject: (name: string): string => ensureProject(conn, name),
  };
  const flush = (): void => {
    for (const row of pending.values()) conn.stmt(UPSERT_RUN_SQL).run(...RUN_COLUMNS.map((c) => row[c]));
    pending.clear();
    pendingChildren.clear();
  };
  for (const run of runs) {
    const outcome = mergeRun(run, now, mergeCtx);
    if ("rule" in outcome) {
      reject({
        route: ctx.route,
        op: run.op,
        run_id: run.id,
        trace_id: outcome.trace_id ?? run.trace_id ?? null,
        rule: outcome.rule,
        message: `run ${run.id} (${run.op}${run.name ? ` ${JSON.stringify(run.name.length > 100 ? `${run.name.slice(0, 100)}...` : run.name)}` : ""}): ${outcome.message}`,
        payload: run,
      });
      continue;
    }
    pending.set(run.id, outcome);
    touched.add(outcome.trace_id);
    if (outcome.parent_run_id !== null) pendingChildren.set(outcome.parent_run_id, [...(pendingChildren.get(outcome.parent_run_id) ?? []), outcome]);
    for (const a of run.attachments ?? []) putAttachment(conn, run.id, a);
    result.accepted.push(run.id);
    // Later operations must hit that failure as before: write the row now
    // and let them read it from the database.
    if (!readableBack(outcome)) flush();
  }
  flush();
  if (unrecorded > 0) {
    const message = `${unrecorded} more operation(s) of this request were rejected and not recorded: at most ${MAX_REJECTIONS_PER_REQUEST} rejections are recorded per request`;
    pushRejection(conn, result, { route: ctx.route, rule: "over_limit", message });
    result.unrecorded = unrecorded;
  }
  if (result.rejected.length > 0) {
    const pruned = conn.stmt("DELETE FROM rejections WHERE seq <= (SELECT MAX(seq) FROM rejections) - ?").run(MAX_STORED_REJECTIONS);
    // Old rejections of any trace went: every trace's token changes.
    if (Number(pruned.changes) > 0) conn.changes.changedEverything();
  }
  return result;
}

function pushRejection(conn: StoreConnection, result: UpsertResult, input: RejectionInput): void {
  const r = recordRejection(conn, input);
  result.rejected.push({ op: r.op, run_id: r.run_id, trace_id: r.trace_id, rule: r.rule, message: r.message });
}

function putAttachment(conn: StoreConnection, runId: string, a: RunAttachment): void {
  conn.stmt("INSERT OR REPLACE INTO attachments (run_id, name, content_type, data) VALUES (?, ?, ?, ?)").run(runId, a.name, a.contentType, a.data);
}
