/**
 * Run queries (`POST /runs/query`, v2 `runs.query`, `traces.query`, stats): the runs matching a
 * RunQuery, newest first unless `order` is "asc", one cursor-paged page at a time. SQL narrows by
 * the indexed criteria; LangSmith filter expressions and the text search are tested per run.
 * With a ScanBudget the scan stops when the budget says so and resumes from the cursor it returns
 * (query-budget.ts drives that). Use through TraceStore.queryRuns.
 *
 *   const page = queryRuns(conn, { projectIds: [id], filter: 'eq(run_type, "llm")', limit: 50 });
 *   queryRuns(conn, { ...q, cursor: page.nextCursor ?? undefined });
 */
import { compileFilter, type RunPredicate } from "../filter.js";
import { MAX_QUERY_PAGE } from "../limits.js";
import type { RunPage, RunQuery, StoredRun } from "../types.js";
import type { StoreConnection } from "./connection.js";
import type { RunRow } from "./rows.js";
import { getRun, getTraceRuns, toRun, type RunReadOptions } from "./runs.js";
import { Where } from "./where.js";

/**
 * What a query may spend: `spend(units)` is called with the work about to be done, and false
 * stops the scan.
 */
export interface ScanBudget {
  spend(units: number): boolean;
}

/**
 * One page of runs matching `q`; pass `nextCursor` back as `cursor` for the next page.
 *
 * With `budget`, every run scanned is charged 1 plus its filters' calls (see ScanBudget); when
 * the budget says stop, the page so far comes back with `stopped` and a `nextCursor` that
 * resumes the scan where it stopped.
 */
export function queryRuns(conn: StoreConnection, q: RunQuery, opts: RunReadOptions & { budget?: ScanBudget } = {}): RunPage {
  const lower = (values: readonly string[] | undefined): string[] | undefined => values?.map((v) => v.toLowerCase());
  const asc = q.order === "asc";
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const where = new Where()
    .inList("project_id", lower(q.projectIds))
    .inList("id", lower(q.runIds))
    .inList("reference_example_id", lower(q.referenceExampleIds))
    .add("trace_id = ?", q.traceId?.toLowerCase())
    .add("parent_run_id = ?", q.parentRunId?.toLowerCase())
    .when(q.isRoot !== undefined, q.isRoot ? "parent_run_id IS NULL" : "parent_run_id IS NOT NULL")
    .when(q.error !== undefined, q.error ? "error IS NOT NULL" : "error IS NULL")
    .add("run_type = ?", q.runType)
    .add("start_time >= ?", q.startTime)
    .add("start_time <= ?", q.maxStartTime)
    .add(`(start_time, id) ${asc ? ">" : "<"} (?, ?)`, cursor?.t, cursor?.id);
  const limit = Math.max(1, Math.min(q.limit ?? MAX_QUERY_PAGE, MAX_QUERY_PAGE));
  const charge = (units: number): void => void opts.budget?.spend(units);
  const predicates: RunPredicate[] = [];
  if (q.filter) predicates.push(compileFilter(q.filter));
  if (q.traceFilter) predicates.push(traceLevelPredicate(conn, compileFilter(q.traceFilter), "root", opts, charge));
  if (q.treeFilter) predicates.push(traceLevelPredicate(conn, compileFilter(q.treeFilter), "any", opts, charge));
  if (q.query) {
    const needle = q.query.toLowerCase();
    predicates.push((r) => JSON.stringify([r.name, r.inputs, r.outputs, r.error]).toLowerCase().includes(needle));
  }
  const rowCost = 1 + predicates.reduce((sum, p) => sum + (p.cost ?? 1), 0);
  const dir = asc ? "ASC" : "DESC";
  const sql = `SELECT * FROM runs ${where.sql()} ORDER BY start_time ${dir}, id ${dir}`;
  const runs: StoredRun[] = [];
  let nextCursor: string | null = null;
  let lastScanned: RunRow | undefined;
  for (const raw of conn.stmt(sql).iterate(...where.params)) {
    if (opts.budget && !opts.budget.spend(rowCost)) {
      // Resume after the last run returned when the page is full, else after the last one scanned.
      const resume = runs.length === limit ? (runs[runs.length - 1] as StoredRun) : lastScanned;
      const at = resume ? { t: resume.start_time ?? "", id: resume.id } : cursor;
      return { runs, nextCursor: at ? encodeCursor(at) : null, stopped: true };
    }
    lastScanned = raw as unknown as RunRow;
    const run = toRun(conn, lastScanned, opts);
    if (!predicates.every((p) => p(run))) continue;
    if (runs.length === limit) {
      const last = runs[runs.length - 1] as StoredRun;
      nextCursor = encodeCursor({ t: last.start_time ?? "", id: last.id });
      break;
    }
    runs.push(run);
  }
  return { runs, nextCursor };
}

/** A predicate on a run's trace (its root, or any of its runs), decided once per trace. */
function traceLevelPredicate(conn: StoreConnection, pred: RunPredicate, scope: "root" | "any", opts: RunReadOptions, charge: (units: number) => void): RunPredicate {
  const verdicts = new Map<string, boolean>();
  const perRun = 1 + (pred.cost ?? 1);
  return (run) => {
    let v = verdicts.get(run.trace_id);
    if (v === undefined) {
      if (scope === "root") {
        const root = getRun(conn, run.trace_id, opts);
        charge(perRun);
        v = root !== undefined && pred(root);
      } else {
        const traceRuns = getTraceRuns(conn, run.trace_id, opts);
        charge(traceRuns.length * perRun);
        v = traceRuns.some(pred);
      }
      verdicts.set(run.trace_id, v);
    }
    return v;
  };
}

interface Cursor {
  t: string;
  id: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

function decodeCursor(s: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as Partial<Cursor>;
    if (typeof c.t === "string" && typeof c.id === "string") return { t: c.t, id: c.id };
  } catch {
    // fall through to the error below
  }
  throw new RangeError(`invalid cursor ${JSON.stringify(s)}`);
}
