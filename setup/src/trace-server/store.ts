/**
 * The trace server's store on SQLite (`node:sqlite`): the single write path and the read model,
 * one object per database. Every ingest format (SDK JSON, multipart, OTLP) decodes to RunUpsert
 * and calls upsertRuns, so runs from any source land in the same trees and obey the same
 * validation. This class is the facade; each concern lives in its own file under store/:
 *
 *   store/schema.ts      tables, indexes, opening a file       store/merge.ts      merge and tree rules (no SQLite)
 *   store/ingest.ts      upsertRuns, the one write path        store/runs.ts       reading runs and traces' runs
 *   store/run-query.ts   queryRuns: filters, cursors, budget   store/traces.ts     trace summaries (listTraces)
 *   store/projects.ts    projects and their stats              store/feedback.ts   feedback
 *   store/rejections.ts  the rejection log                     store/where.ts      the one WHERE builder
 *   store/thread-roots.ts roots that may belong to a thread, a page at a time
 *
 *   const store = new TraceStore(".data/traces.sqlite");   // or ":memory:"
 *   store.upsertRuns(runs, { route: "/runs/batch" });
 *   store.queryRuns({ projectIds: [store.ensureProject("default")], isRoot: true });
 */
import type { DatabaseSync } from "node:sqlite";
import { StoreConnection } from "./store/connection.js";
import * as feedback from "./store/feedback.js";
import { upsertRuns, type IngestContext } from "./store/ingest.js";
import * as projects from "./store/projects.js";
import * as rejections from "./store/rejections.js";
import { queryRuns, type ScanBudget } from "./store/run-query.js";
import * as runs from "./store/runs.js";
import { STORE_TABLES } from "./store/schema.js";
import { threadRootPage, type ThreadRootQuery, type ThreadRootRow } from "./store/thread-roots.js";
import { listTraces } from "./store/traces.js";
import type { JsonObject, ProjectStats, Rejection, RejectionFilter, RejectionInput, RunPage, RunQuery, RunUpsert, StoredProject, StoredRun, TraceFilter, TraceSummary, UpsertResult } from "./types.js";

export { FeedbackConflictError, type FeedbackFilter } from "./store/feedback.js";
export { ProjectConflictError, type CreateProjectInput, type ProjectFilter, type ProjectPatch } from "./store/projects.js";
export { DEFAULT_PROJECT_NAME, LOCAL_TENANT_ID } from "./store/rows.js";
export type { ScanBudget } from "./store/run-query.js";
export type { RunReadOptions } from "./store/runs.js";
export type { ThreadRootQuery, ThreadRootRow } from "./store/thread-roots.js";

export class TraceStore {
  readonly db: DatabaseSync;
  private readonly conn: StoreConnection;

  constructor(readonly dbPath: string = ":memory:") {
    this.conn = new StoreConnection(dbPath);
    this.db = this.conn.db;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  // ---------------------------------------------------------------- writes

  /**
   * Create or update runs by id, in one transaction. Creates and updates may
   * arrive in any order, merged or apart: an update's fields win over a
   * create's whichever came first, and a field is never erased by an
   * operation that does not carry it. Runs that break a rule are recorded as
   * rejections and left out; the others are stored.
   */
  upsertRuns(runList: readonly RunUpsert[], ctx: IngestContext = { route: "store" }): UpsertResult {
    return upsertRuns(this.conn, runList, ctx);
  }

  upsertRun(run: RunUpsert, route = "store"): UpsertResult {
    return this.upsertRuns([run], { route });
  }

  recordRejection(input: RejectionInput): Rejection {
    return rejections.recordRejection(this.conn, input);
  }

  /** Store feedback under its id (a new one when it has none); see feedback.recordFeedback. */
  recordFeedback(body: JsonObject): string {
    return feedback.recordFeedback(this.conn, body);
  }

  /** Delete every run, project, rejection, attachment and feedback. */
  clear(): void {
    this.conn.transaction(() => {
      for (const table of STORE_TABLES) this.db.exec(`DELETE FROM ${table}`);
    });
    this.conn.projectIdsByName.clear();
  }

  /**
   * A token that differs whenever what the store holds for one trace (its runs, rejections and
   * their feedback), or with no trace anything at all, may have changed (see ChangeTokens). It
   * costs one SQLite call, so a viewer polling an unchanged trace costs nothing else.
   */
  changeToken(traceId?: string): string {
    return this.conn.changes.token(traceId);
  }

  // ---------------------------------------------------------------- projects

  /** The id of the project with this name, creating it on first use. */
  ensureProject(name: string): string {
    return projects.ensureProject(this.conn, name);
  }

  createProject(input: projects.CreateProjectInput): StoredProject {
    return projects.createProject(this.conn, input);
  }

  updateProject(id: string, patch: projects.ProjectPatch): StoredProject | undefined {
    return projects.updateProject(this.conn, id, patch);
  }

  /** Delete a project and its runs. */
  deleteProject(id: string): boolean {
    return projects.deleteProject(this.conn, id);
  }

  getProject(id: string): StoredProject | undefined {
    return projects.getProject(this.conn, id);
  }

  getProjectByName(name: string): StoredProject | undefined {
    return projects.getProjectByName(this.conn, name);
  }

  listProjects(filter: projects.ProjectFilter = {}): StoredProject[] {
    return projects.listProjects(this.conn, filter);
  }

  projectStats(id: string): ProjectStats {
    return projects.projectStats(this.conn, id);
  }

  // ---------------------------------------------------------------- runs

  getRun(id: string, opts: runs.RunReadOptions = {}): StoredRun | undefined {
    return runs.getRun(this.conn, id, opts);
  }

  /**
   * The stored runs of a trace, in execution (dotted_order) order: every one, or `limit` of them
   * from `offset`. In that order a run's ancestors come before it, so any first page is a tree.
   */
  getTraceRuns(traceId: string, opts: runs.RunReadOptions & { limit?: number; offset?: number } = {}): StoredRun[] {
    return runs.getTraceRuns(this.conn, traceId, opts);
  }

  countTraceRuns(traceId: string): number {
    return runs.countTraceRuns(this.conn, traceId);
  }

  /** The earliest first-token time in a run's subtree, the run itself included. */
  subtreeFirstTokenTime(run: Pick<StoredRun, "trace_id" | "dotted_order">): string | null {
    return runs.subtreeFirstTokenTime(this.conn, run);
  }

  getAttachment(runId: string, name: string): { contentType: string; data: Uint8Array } | undefined {
    return runs.getAttachment(this.conn, runId, name);
  }

  /**
   * Runs matching a query, newest first unless `order` is "asc", one page at
   * a time; pass `nextCursor` back as `cursor` for the next page.
   *
   * With `budget`, every run scanned is charged 1 plus its filters' calls (see ScanBudget); when
   * the budget says stop, the page so far comes back with `stopped` and a `nextCursor` that
   * resumes the scan where it stopped (queryRunsWithinBudget drives this).
   */
  queryRuns(q: RunQuery, opts: runs.RunReadOptions & { budget?: ScanBudget } = {}): RunPage {
    return queryRuns(this.conn, q, opts);
  }

  /** One bounded page of a project's root runs that may belong to a thread (see store/thread-roots.ts). */
  threadRootPage(projectId: string, q: ThreadRootQuery): ThreadRootRow[] {
    return threadRootPage(this.conn, projectId, q);
  }

  // ---------------------------------------------------------------- traces, rejections, feedback

  /** Trace summaries matching every given filter, newest first, one page of them. */
  listTraces(filter: TraceFilter = {}): TraceSummary[] {
    return listTraces(this.conn, filter);
  }

  /** Rejections, newest first. */
  listRejections(filter: RejectionFilter = {}): Rejection[] {
    return rejections.listRejections(this.conn, filter);
  }

  listFeedback(filter: feedback.FeedbackFilter = {}): JsonObject[] {
    return feedback.listFeedback(this.conn, filter);
  }

  // ---------------------------------------------------------------- size

  /** Bytes the database uses (its pages less the free ones), the measure of TraceServerAppOptions.maxStoreBytes. */
  sizeBytes(): number {
    const pragma = (name: string): number => Object.values(this.db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[0] ?? 0;
    return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
  }

  counts(): { runs: number; traces: number; projects: number; rejections: number } {
    const one = (sql: string): number => (this.conn.stmt(sql).get() as { n: number }).n;
    return {
      runs: one("SELECT COUNT(*) AS n FROM runs"),
      traces: one("SELECT COUNT(DISTINCT trace_id) AS n FROM runs"),
      projects: one("SELECT COUNT(*) AS n FROM projects"),
      rejections: one("SELECT COUNT(*) AS n FROM rejections"),
    };
  }
}
