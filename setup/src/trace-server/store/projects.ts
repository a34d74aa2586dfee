/**
 * Projects (LangSmith's tracing projects, "sessions" on the wire) in the trace store: create on
 * first use by name, look up, list with filters, rename, delete with their runs, and the run
 * statistics `GET /sessions?include_stats=true` reports. Functions of a StoreConnection; use them
 * through TraceStore.
 *
 *   const id = ensureProject(conn, "default");
 *   listProjects(conn, { nameContains: "notebook", limit: 10 });
 */
import { randomUUID } from "node:crypto";
import { nowIso, timeToMs } from "../time.js";
import type { JsonObject, ProjectStats, StoredProject } from "../types.js";
import type { StoreConnection } from "./connection.js";
import { asObject, LOCAL_TENANT_ID, parseJson, type ProjectRow } from "./rows.js";
import { Where } from "./where.js";

export interface ProjectFilter {
  ids?: string[];
  name?: string;
  nameContains?: string;
  /** Projects whose `extra.metadata` has every one of these keys with an equal value. */
  metadata?: JsonObject;
  limit?: number;
  offset?: number;
}

export interface CreateProjectInput {
  name: string;
  description?: string | null;
  extra?: JsonObject | null;
  /** Return the existing project instead of failing when the name is taken. */
  upsert?: boolean;
}

export type ProjectPatch = { name?: string | null; description?: string | null; extra?: JsonObject | null; end_time?: string | null };

export class ProjectConflictError extends Error {}

/** The id of the project with this name, creating it on first use. */
export function ensureProject(conn: StoreConnection, name: string): string {
  const cached = conn.projectIdsByName.get(name);
  if (cached !== undefined) return cached;
  const found = conn.stmt("SELECT id FROM projects WHERE name = ?").get(name) as { id: string } | undefined;
  const id = found?.id ?? randomUUID();
  if (!found) {
    conn.stmt("INSERT INTO projects (id, name, start_time) VALUES (?, ?, ?)").run(id, name, nowIso());
  }
  conn.projectIdsByName.set(name, id);
  return id;
}

export function createProject(conn: StoreConnection, input: CreateProjectInput): StoredProject {
  return conn.transaction(() => {
    const existing = getProjectByName(conn, input.name);
    if (existing) {
      if (input.upsert) return existing;
      throw new ProjectConflictError(`project ${JSON.stringify(input.name)} already exists`);
    }
    const id = randomUUID();
    conn.stmt("INSERT INTO projects (id, name, description, extra, start_time) VALUES (?, ?, ?, ?, ?)").run(
      id,
      input.name,
      input.description ?? null,
      input.extra ? JSON.stringify(input.extra) : null,
      nowIso(),
    );
    conn.projectIdsByName.set(input.name, id);
    return getProject(conn, id) as StoredProject;
  });
}

export function updateProject(conn: StoreConnection, id: string, patch: ProjectPatch): StoredProject | undefined {
  return conn.transaction(() => {
    const current = getProject(conn, id);
    if (!current) return undefined;
    if (patch.name != null && patch.name !== current.name) {
      if (getProjectByName(conn, patch.name)) throw new ProjectConflictError(`project ${JSON.stringify(patch.name)} already exists`);
      conn.projectIdsByName.delete(current.name);
    }
    conn.stmt("UPDATE projects SET name = ?, description = ?, extra = ?, end_time = ? WHERE id = ?").run(
      patch.name ?? current.name,
      patch.description !== undefined ? patch.description : current.description,
      patch.extra != null ? JSON.stringify(patch.extra) : current.extra ? JSON.stringify(current.extra) : null,
      patch.end_time !== undefined ? patch.end_time : current.end_time,
      id,
    );
    return getProject(conn, id);
  });
}

/** Delete a project and its runs. */
export function deleteProject(conn: StoreConnection, id: string): boolean {
  return conn.transaction(() => {
    const project = getProject(conn, id);
    if (!project) return false;
    conn.stmt("DELETE FROM attachments WHERE run_id IN (SELECT id FROM runs WHERE project_id = ?)").run(id);
    conn.stmt("DELETE FROM runs WHERE project_id = ?").run(id);
    conn.stmt("DELETE FROM shares WHERE project_id = ?").run(id);
    conn.stmt("DELETE FROM projects WHERE id = ?").run(id);
    conn.projectIdsByName.delete(project.name);
    return true;
  });
}

export function getProject(conn: StoreConnection, id: string): StoredProject | undefined {
  const row = conn.stmt("SELECT * FROM projects WHERE id = ?").get(id) as ProjectRow | undefined;
  return row && toProject(row);
}

export function getProjectByName(conn: StoreConnection, name: string): StoredProject | undefined {
  const row = conn.stmt("SELECT * FROM projects WHERE name = ?").get(name) as ProjectRow | undefined;
  return row && toProject(row);
}

/** Projects matching every given filter, newest first. */
export function listProjects(conn: StoreConnection, filter: ProjectFilter = {}): StoredProject[] {
  const where = new Where()
    .inList("id", filter.ids)
    .add("name = ?", filter.name)
    .add("instr(lower(name), lower(?)) > 0", filter.nameContains);
  const sql = `SELECT * FROM projects ${where.sql()} ORDER BY start_time DESC, id LIMIT ? OFFSET ?`;
  const { metadata } = filter;
  if (metadata === undefined) return (conn.stmt(sql).all(...where.params, filter.limit ?? 100, filter.offset ?? 0) as unknown as ProjectRow[]).map(toProject);
  // Compared as JSON values (true is not 1), so filtered here; there are few projects.
  const offset = filter.offset ?? 0;
  return (conn.stmt(sql).all(...where.params, -1, 0) as unknown as ProjectRow[])
    .map(toProject)
    .filter((p) => hasMetadata(p.extra, metadata))
    .slice(offset, offset + (filter.limit ?? 100));
}

export function projectStats(conn: StoreConnection, id: string): ProjectStats {
  const agg = conn.stmt(
    `SELECT COUNT(*) AS run_count, MAX(start_time) AS last_start,
            SUM(parent_run_id IS NULL) AS roots, SUM(parent_run_id IS NULL AND error IS NOT NULL) AS root_errors,
            SUM(CASE WHEN run_type = 'llm' THEN total_tokens END) AS total_tokens,
            SUM(CASE WHEN run_type = 'llm' THEN prompt_tokens END) AS prompt_tokens,
            SUM(CASE WHEN run_type = 'llm' THEN completion_tokens END) AS completion_tokens
     FROM runs WHERE project_id = ?`,
  ).get(id) as { run_count: number; last_start: string | null; roots: number | null; root_errors: number | null; total_tokens: number | null; prompt_tokens: number | null; completion_tokens: number | null };
  const latencies = (conn.stmt("SELECT start_time, end_time FROM runs WHERE project_id = ? AND parent_run_id IS NULL AND end_time IS NOT NULL").all(id) as Array<{ start_time: string; end_time: string }>)
    .map((r) => (timeToMs(r.end_time) - timeToMs(r.start_time)) / 1000)
    .sort((a, b) => a - b);
  const quantile = (q: number): number | null => (latencies.length ? (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? null) : null);
  return {
    run_count: agg.run_count,
    error_rate: agg.roots ? (agg.root_errors ?? 0) / agg.roots : null,
    last_run_start_time: agg.last_start,
    total_tokens: agg.total_tokens ?? 0,
    prompt_tokens: agg.prompt_tokens ?? 0,
    completion_tokens: agg.completion_tokens ?? 0,
    latency_p50: quantile(0.5),
    latency_p99: quantile(0.99),
  };
}

function hasMetadata(extra: JsonObject | null, wanted: JsonObject): boolean {
  const metadata = asObject(extra?.metadata) ?? {};
  return Object.entries(wanted).every(([key, value]) => Object.hasOwn(metadata, key) && JSON.stringify(metadata[key]) === JSON.stringify(value));
}

function toProject(row: ProjectRow): StoredProject {
  return {
    id: row.id,
    name: row.name,
    tenant_id: LOCAL_TENANT_ID,
    description: row.description,
    extra: parseJson<JsonObject>(row.extra),
    start_time: row.start_time,
    end_time: row.end_time,
    reference_dataset_id: row.reference_dataset_id,
  };
}
