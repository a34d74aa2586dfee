/**
 * Trace summaries for the viewer's list and `GET /api/traces`: one line per trace (root name,
 * projects, services, run and error counts, orphans, rejections, status), newest first, every
 * filter applied in the one SQLite query that reads the page. Use through TraceStore.listTraces.
 *
 *   listTraces(conn, { projectName: "default", status: "error", limit: 50 });
 */
import type { RunStatus, TraceFilter, TraceSummary } from "../types.js";
import type { StoreConnection } from "./connection.js";
import { getProject, getProjectByName } from "./projects.js";
import { Where } from "./where.js";

/** Trace summaries matching every given filter, newest first, one page of them. */
export function listTraces(conn: StoreConnection, filter: TraceFilter = {}): TraceSummary[] {
  let projectId = filter.projectId;
  if (filter.projectName !== undefined) {
    const p = getProjectByName(conn, filter.projectName);
    if (!p) return [];
    projectId = p.id;
  }
  // WHERE only narrows to whole traces (by trace_id), so each group's aggregates stay those of the full trace.
  const where = new Where();
  const having = new Where().add("SUM(r.project_id = ?) > 0", projectId).add("SUM(r.service = ?) > 0", filter.service).add("MIN(r.start_time) >= ?", filter.since);
  // The same rule as the summary's status below: any error wins, then any run not ended.
  if (filter.status === "error") {
    where.add("r.trace_id IN (SELECT trace_id FROM runs WHERE error IS NOT NULL)");
  } else if (filter.status === "pending") {
    where.add("r.trace_id IN (SELECT trace_id FROM runs WHERE end_time IS NULL)");
    having.add("SUM(r.error IS NOT NULL) = 0");
  } else if (filter.status === "success") {
    having.add("SUM(r.error IS NOT NULL) = 0 AND SUM(r.end_time IS NULL) = 0");
  }
  // Every name contains "" (a missing root's too), so an empty needle filters nothing.
  // The root is looked up by id = trace_id, as the summary's root_name is.
  where.when(Boolean(filter.rootNameContains), "r.trace_id IN (SELECT id FROM runs WHERE js_lower_includes(name, ?))", filter.rootNameContains?.toLowerCase() ?? "");
  const sql = `SELECT r.trace_id AS trace_id, COUNT(*) AS run_count, MIN(r.start_time) AS start_time,
      MAX(r.end_time) AS max_end, SUM(r.end_time IS NULL) AS pending,
      SUM(r.error IS NOT NULL) AS error_count,
      SUM(r.parent_run_id IS NOT NULL AND p.id IS NULL) AS orphan_count,
      json_group_array(DISTINCT r.service) AS services,
      json_group_array(DISTINCT r.project_id) AS project_ids
    FROM runs r LEFT JOIN runs p ON p.id = r.parent_run_id
    ${where.sql()}
    GROUP BY r.trace_id
    ${having.sql("HAVING")}
    ORDER BY start_time DESC, trace_id DESC LIMIT ? OFFSET ?`;
  const rows = conn.stmt(sql).all(...where.params, ...having.params, filter.limit ?? 100, filter.offset ?? 0) as Array<{
    trace_id: string;
    run_count: number;
    start_time: string;
    max_end: string | null;
    pending: number;
    error_count: number;
    orphan_count: number;
    services: string;
    project_ids: string;
  }>;
  return rows.map((r) => {
    const root = conn.stmt("SELECT id, name FROM runs WHERE id = ?").get(r.trace_id) as { id: string; name: string | null } | undefined;
    const projectIds = (JSON.parse(r.project_ids) as string[]).sort();
    const rejected = conn.stmt("SELECT COUNT(*) AS n FROM rejections WHERE trace_id = ?").get(r.trace_id) as { n: number };
    const status: RunStatus = r.error_count > 0 ? "error" : r.pending > 0 ? "pending" : "success";
    return {
      trace_id: r.trace_id,
      root_run_id: root?.id ?? null,
      root_name: root?.name ?? null,
      project_ids: projectIds,
      project_names: projectIds.map((id) => getProject(conn, id)?.name ?? id),
      services: (JSON.parse(r.services) as Array<string | null>).filter((s): s is string => s !== null).sort(),
      run_count: r.run_count,
      start_time: r.start_time,
      end_time: r.pending > 0 ? null : r.max_end,
      error_count: r.error_count,
      orphan_count: r.orphan_count,
      rejected_count: rejected.n,
      status,
    };
  });
}
