import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { ChangeTokens } from "./change-tokens.js";
import { compileFilter, threadIdOf, type RunPredicate } from "./filter.js";
import { dottedTimestamp, nowIso, timeToMs } from "./time.js";
import type {
  JsonObject,
  RawJsonField,
  StoredProject,
  ProjectStats,
  Rejection,
  RejectionFilter,
  RejectionInput,
  RejectionRule,
  StoredRun,
  RunAttachment,
  RunPage,
  RunQuery,
  RunStatus,
  RunUpsert,
  TraceFilter,
  TraceSummary,
  UpsertResult,
} from "./types.js";
import { MAX_QUERY_PAGE, MAX_REJECTIONS_PER_REQUEST, MAX_STORED_REJECTIONS, MAX_TREE_DEPTH, payloadViolation, runLimitViolation } from "./limits.js";
import { checkChildAncestry, checkParentAncestry, checkTreeRules, dottedOrderIds, formatDottedOrder, parseDottedOrder, type DottedSegment, type RuleViolation } from "./validate.js";

/**
 * What a query may spend (see queryRuns): `spend(units)` is called with the work about to be
 * done, and false stops the scan.
 */
export interface ScanBudget {
  spend(units: number): boolean;
}

type TreeNode = Pick<RunRow, "trace_id" | "dotted_order">;
type TreeChild = Pick<RunRow, "id" | "dotted_order">;
/** How the ancestry check reads stored runs, through the rows a batch has not written yet. */
interface TreeLookup {
  node(id: string): TreeNode | undefined;
  children(id: string): TreeChild[];
}

/** LangSmith scopes everything to a tenant; the local server has exactly one. */
export const LOCAL_TENANT_ID = "00000000-0000-4000-8000-000000000000";
export const DEFAULT_PROJECT_NAME = "default";
const PAYLOAD_LIMIT = 4096;
/** Bump when the schema changes incompatibly; older files are refused with a clear message. */
const SCHEMA_VERSION = 1;

interface RunRow {
  id: string;
  trace_id: string;
  dotted_order: string;
  parent_run_id: string | null;
  project_id: string;
  /** 0 when no operation named a project yet and the run sits in the default one. */
  project_explicit: number;
  name: string | null;
  run_type: string | null;
  start_time: string;
  end_time: string | null;
  error: string | null;
  inputs: string | null;
  outputs: string | null;
  extra: string | null;
  events: string | null;
  tags: string | null;
  serialized: string | null;
  reference_example_id: string | null;
  address: string | null;
  service: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  first_token_time: string | null;
  has_post: number;
  has_patch: number;
  source: string | null;
  received_at: string;
  updated_at: string;
}

interface ProjectRow {
  id: string;
  name: string;
  description: string | null;
  extra: string | null;
  start_time: string;
  end_time: string | null;
  reference_dataset_id: string | null;
}

interface RejectionRow {
  seq: number;
  received_at: string;
  route: string;
  op: string | null;
  run_id: string | null;
  trace_id: string | null;
  rule: string;
  message: string;
  payload: string | null;
}

/** Which stored run fields an upsert writes, in statement order. */
const RUN_COLUMNS = [
  "id", "trace_id", "dotted_order", "parent_run_id", "project_id", "project_explicit", "name", "run_type", "start_time", "end_time",
  "error", "inputs", "outputs", "extra", "events", "tags", "serialized", "reference_example_id", "address", "service",
  "prompt_tokens", "completion_tokens", "total_tokens", "first_token_time", "has_post", "has_patch", "source",
  "received_at", "updated_at",
] as const satisfies ReadonlyArray<keyof RunRow>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  description TEXT,
  extra TEXT,
  start_time TEXT NOT NULL,
  end_time TEXT,
  reference_dataset_id TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL,
  dotted_order TEXT NOT NULL,
  parent_run_id TEXT,
  project_id TEXT NOT NULL,
  project_explicit INTEGER NOT NULL DEFAULT 1,
  name TEXT,
  run_type TEXT,
  start_time TEXT NOT NULL,
  end_time TEXT,
  error TEXT,
  inputs TEXT,
  outputs TEXT,
  extra TEXT,
  events TEXT,
  tags TEXT,
  serialized TEXT,
  reference_example_id TEXT,
  address TEXT,
  service TEXT,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  total_tokens INTEGER,
  first_token_time TEXT,
  has_post INTEGER NOT NULL DEFAULT 0,
  has_patch INTEGER NOT NULL DEFAULT 0,
  source TEXT,
  received_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_trace ON runs (trace_id, dotted_order);
CREATE INDEX IF NOT EXISTS runs_project_start ON runs (project_id, start_time);
CREATE INDEX IF NOT EXISTS runs_start ON runs (start_time, id);
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id);
CREATE TABLE IF NOT EXISTS rejections (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT NOT NULL,
  route TEXT NOT NULL,
  op TEXT,
  run_id TEXT,
  trace_id TEXT,
  rule TEXT NOT NULL,
  message TEXT NOT NULL,
  payload TEXT
);
CREATE INDEX IF NOT EXISTS rejections_trace ON rejections (trace_id);
CREATE INDEX IF NOT EXISTS rejections_run ON rejections (run_id);
CREATE TABLE IF NOT EXISTS attachments (
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS feedback (
  id TEXT PRIMARY KEY,
  run_id TEXT,
  trace_id TEXT,
  key TEXT,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_run ON feedback (run_id);
CREATE TABLE IF NOT EXISTS shares (
  token TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`;

export interface RunReadOptions {
  /** Prefix for attachment URLs, e.g. `http://127.0.0.1:1984`. */
  urlBase?: string;
}

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

export class ProjectConflictError extends Error {}
export class FeedbackConflictError extends Error {}

const parseJson = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

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

function mergeExtra(low: JsonObject, high: JsonObject): JsonObject {
  const merged: JsonObject = { ...low, ...high };
  for (const key of ["metadata", "runtime"] as const) {
    const a = low[key];
    const b = high[key];
    if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
      merged[key] = { ...(a as JsonObject), ...(b as JsonObject) };
    }
  }
  return merged;
}

/**
 * Whether a later SELECT of this row succeeds. node:sqlite stores an integer
 * beyond 2^53 as a 64-bit integer and then refuses to read it as a number,
 * so with such a token count the next operation on the run (or a child
 * deriving its dotted_order from it) fails.
 */
function readableBack(row: RunRow): boolean {
  return [row.prompt_tokens, row.completion_tokens, row.total_tokens].every((v) => v === null || !Number.isInteger(v) || Number.isSafeInteger(v));
}

type Usage = { prompt: number | null; completion: number | null; total: number | null };

function asObject(v: unknown): JsonObject | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;
}

/** Token counts of an LLM run, from the shapes LangChain, the OpenAI wrapper and traceable emit. */
function usageFromOutputs(outputs: JsonObject | undefined): Usage | null {
  if (!outputs) return null;
  const generations = outputs.generations;
  const firstGen = Array.isArray(generations) ? (Array.isArray(generations[0]) ? generations[0][0] : generations[0]) : undefined;
  const message = asObject(asObject(firstGen)?.message);
  const llmOutput = asObject(outputs.llm_output);
  const candidates = [
    outputs.usage_metadata,
    asObject(asObject(outputs.message)?.kwargs)?.usage_metadata,
    llmOutput?.token_usage,
    llmOutput?.tokenUsage,
    asObject(message?.kwargs)?.usage_metadata,
    message?.usage_metadata,
    outputs.usage,
  ];
  for (const c of candidates) {
    const u = asObject(c);
    if (!u) continue;
    const num = (...keys: string[]): number | null => {
      for (const k of keys) if (typeof u[k] === "number") return u[k];
      return null;
    };
    const prompt = num("input_tokens", "prompt_tokens", "promptTokens");
    const completion = num("output_tokens", "completion_tokens", "completionTokens");
    const total = num("total_tokens", "totalTokens") ?? (prompt !== null || completion !== null ? (prompt ?? 0) + (completion ?? 0) : null);
    if (prompt !== null || completion !== null || total !== null) return { prompt, completion, total };
  }
  return null;
}

function firstTokenTime(events: JsonObject[] | null): string | null {
  const ev = events?.find((e) => e.name === "new_token");
  return typeof ev?.time === "string" ? ev.time : null;
}

function serviceOf(extra: JsonObject | null): string | null {
  const metadata = asObject(extra?.metadata);
  const v = metadata?.LANGSMITH_SERVICE;
  if (typeof v === "string") return v;
  // An OpenTelemetry span's resource service.name (OTLP ingest); the SDK's default names no service.
  const otel = metadata?.["service.name"];
  return typeof otel === "string" && otel !== "" && !otel.startsWith("unknown_service") ? otel : null;
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

/**
 * The single write path and the read model of the trace server, on SQLite
 * (`node:sqlite`). Every ingest format (SDK JSON, multipart, OTLP) decodes to
 * `RunUpsert` and calls `upsertRuns`, so runs from any source land in the same
 * trees and obey the same validation.
 */
export class TraceStore {
  readonly db: DatabaseSync;
  private readonly stmtCache = new Map<string, StatementSync>();
  private readonly projectIdsByName = new Map<string, string>();
  private readonly upsertSql: string;
  private readonly changes = new ChangeTokens(() => (this.stmt("SELECT total_changes() AS n").get() as { n: number }).n);

  constructor(readonly dbPath: string = ":memory:") {
    if (dbPath !== ":memory:") mkdirSync(dirname(dbPath), { recursive: true });
    this.db = new DatabaseSync(dbPath);
    this.db.exec("PRAGMA busy_timeout = 5000");
    if (dbPath !== ":memory:") {
      this.db.exec("PRAGMA journal_mode = WAL");
      // WAL + NORMAL survives a crashed process; only a power cut can lose the last transactions.
      this.db.exec("PRAGMA synchronous = NORMAL");
    }
    const version = (this.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    const hasTables = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get() !== undefined;
    if (hasTables && version !== SCHEMA_VERSION) {
      this.db.close();
      throw new Error(`${dbPath} was written by another version of the trace server (schema ${version}, expected ${SCHEMA_VERSION}); move it away or delete it`);
    }
    this.db.exec(SCHEMA);
    this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    // listTraces' root-name filter folds case as JavaScript does; SQLite's lower() and LIKE fold ASCII only.
    this.db.function("js_lower_includes", { deterministic: true }, (text, lowerNeedle) =>
      typeof text === "string" && typeof lowerNeedle === "string" && text.toLowerCase().includes(lowerNeedle) ? 1 : 0,
    );
    const updates = RUN_COLUMNS.filter((c) => c !== "id" && c !== "received_at").map((c) => `${c} = excluded.${c}`);
    this.upsertSql = `INSERT INTO runs (${RUN_COLUMNS.join(", ")}) VALUES (${RUN_COLUMNS.map(() => "?").join(", ")})
      ON CONFLICT(id) DO UPDATE SET ${updates.join(", ")}`;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmtCache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmtCache.set(sql, s);
    }
    return s;
  }

  private transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      this.db.exec("ROLLBACK");
      // Projects created in the rolled-back transaction are gone; drop their cached ids.
      this.projectIdsByName.clear();
      throw e;
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * Create or update runs by id, in one transaction. Creates and updates may
   * arrive in any order, merged or apart: an update's fields win over a
   * create's whichever came first, and a field is never erased by an
   * operation that does not carry it. Runs that break a rule are recorded as
   * rejections and left out; the others are stored.
   */
  upsertRuns(runs: readonly RunUpsert[], ctx: { route: string; rejections?: readonly RejectionInput[] } = { route: "store" }): UpsertResult {
    this.changes.noteUnattributed();
    const touched = new Set<string>();
    const result = this.upsertRunsInTransaction(runs, ctx, touched);
    for (const r of result.rejected) if (r.trace_id !== null) touched.add(r.trace_id);
    this.changes.attribute(touched);
    return result;
  }

  private upsertRunsInTransaction(runs: readonly RunUpsert[], ctx: { route: string; rejections?: readonly RejectionInput[] }, touched: Set<string>): UpsertResult {
    return this.transaction(() => {
      const result: UpsertResult = { accepted: [], rejected: [] };
      let unrecorded = 0;
      const reject = (input: RejectionInput): void => {
        if (result.rejected.length < MAX_REJECTIONS_PER_REQUEST) this.pushRejection(result, input);
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
      const lookup = (id: string): RunRow | undefined => pending.get(id) ?? this.selectRun(id);
      // Pending runs by parent, for the ancestry check of a parent that arrives after its children.
      const pendingChildren = new Map<string, RunRow[]>();
      const tree: TreeLookup = {
        node: (id) => pending.get(id) ?? (this.stmt("SELECT trace_id, dotted_order FROM runs WHERE id = ?").get(id) as TreeNode | undefined),
        children: (id) => [...(this.stmt("SELECT id, dotted_order FROM runs WHERE parent_run_id = ?").all(id) as unknown as TreeChild[]), ...(pendingChildren.get(id) ?? [])],
      };
      const flush = (): void => {
        for (const row of pending.values()) this.stmt(this.upsertSql).run(...RUN_COLUMNS.map((c) => row[c]));
        pending.clear();
        pendingChildren.clear();
      };
      for (const run of runs) {
        const outcome = this.mergeRun(run, now, lookup, tree);
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
        for (const a of run.attachments ?? []) this.putAttachment(run.id, a);
        result.accepted.push(run.id);
        // Later operations must hit that failure as before: write the row now
        // and let them read it from the database.
        if (!readableBack(outcome)) flush();
      }
      flush();
      if (unrecorded > 0) {
        const message = `${unrecorded} more operation(s) of this request were rejected and not recorded: at most ${MAX_REJECTIONS_PER_REQUEST} rejections are recorded per request`;
        this.pushRejection(result, { route: ctx.route, rule: "over_limit", message });
        result.unrecorded = unrecorded;
      }
      if (result.rejected.length > 0) {
        const pruned = this.stmt("DELETE FROM rejections WHERE seq <= (SELECT MAX(seq) FROM rejections) - ?").run(MAX_STORED_REJECTIONS);
        // Old rejections of any trace went: every trace's token changes.
        if (Number(pruned.changes) > 0) this.changes.changedEverything();
      }
      return result;
    });
  }

  upsertRun(run: RunUpsert, route = "store"): UpsertResult {
    return this.upsertRuns([run], { route });
  }

  private pushRejection(result: UpsertResult, input: RejectionInput): void {
    const r = this.recordRejection(input);
    result.rejected.push({ op: r.op, run_id: r.run_id, trace_id: r.trace_id, rule: r.rule, message: r.message });
  }

  private selectRun(id: string): RunRow | undefined {
    return this.stmt("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
  }

  /** The row `run` leaves when applied over what `lookup` returns, or the rule it breaks. Writes projects, never runs. */
  private mergeRun(run: RunUpsert, now: string, lookup: (id: string) => RunRow | undefined, tree: TreeLookup): RunRow | (RuleViolation & { trace_id?: string }) {
    const tooLong = runLimitViolation(run);
    if (tooLong !== undefined) return { rule: "over_limit", message: tooLong };
    const existing = lookup(run.id);
    let segments: DottedSegment[] | undefined;
    if (run.dotted_order !== undefined) {
      const parsed = parseDottedOrder(run.dotted_order);
      if (!Array.isArray(parsed)) return parsed;
      segments = parsed;
    }
    if (existing) {
      const incoming = {
        trace_id: run.trace_id,
        dotted_order: segments ? formatDottedOrder(segments) : undefined,
        parent_run_id: run.parent_run_id,
      };
      for (const key of ["trace_id", "dotted_order", "parent_run_id"] as const) {
        const value = incoming[key];
        if (value !== undefined && value !== (existing[key] ?? undefined)) {
          return {
            rule: "conflict",
            message: `${key} ${value} differs from the stored run's ${existing[key] ?? "(none: stored as a root run)"}`,
            trace_id: existing.trace_id,
          };
        }
      }
      segments ??= parseDottedOrder(existing.dotted_order) as DottedSegment[];
    }
    const parentId = run.parent_run_id ?? existing?.parent_run_id ?? undefined;
    if (!segments) {
      const start = run.start_time;
      if (start === undefined) {
        return { rule: "missing_field", message: "dotted_order is required (or at least start_time, to derive it)" };
      }
      const own: DottedSegment = { timestamp: dottedTimestamp(start), time: start, id: run.id };
      if (parentId === undefined) {
        segments = [own];
      } else {
        const parent = lookup(parentId);
        if (!parent) {
          return { rule: "missing_field", message: `dotted_order is required: parent run ${parentId} is not stored, so it cannot be derived` };
        }
        segments = [...(parseDottedOrder(parent.dotted_order) as DottedSegment[]), own];
      }
    }
    if (segments.length > MAX_TREE_DEPTH) {
      return { rule: "over_limit", message: `the run would be ${segments.length} levels deep (dotted_order segments), over the limit of ${MAX_TREE_DEPTH}` };
    }
    const traceId = run.trace_id ?? existing?.trace_id ?? segments[0]?.id ?? run.id;
    const violation = checkTreeRules({ id: run.id, trace_id: traceId, parent_run_id: parentId, segments }) ?? this.checkAncestry(run.id, traceId, parentId, segments, existing === undefined, tree);
    if (violation) return { ...violation, trace_id: traceId };

    let projectId: string | undefined;
    if (run.session_id !== undefined) {
      if (!this.getProject(run.session_id)) {
        return { rule: "unknown_project", message: `session_id ${run.session_id} names no project`, trace_id: traceId };
      }
      projectId = run.session_id;
    } else if (run.session_name !== undefined || run.address !== undefined) {
      projectId = this.ensureProject((run.session_name ?? run.address) as string);
    }

    // An update outranks a create whichever arrived first; among equals the later one wins.
    const dominant = run.op === "patch" || !existing || existing.has_patch === 0;
    const pick = <T>(incoming: T | undefined, stored: T | null | undefined): T | null =>
      incoming === undefined ? stored ?? null : stored === null || stored === undefined || dominant ? incoming : stored;
    const pickJson = (field: RawJsonField | "tags", stored: string | null | undefined): string | null => {
      const incoming = run[field];
      if (incoming === undefined) return stored ?? null;
      if (stored !== null && stored !== undefined && !dominant) return stored;
      return (field !== "tags" ? run.raw?.[field] : undefined) ?? JSON.stringify(incoming);
    };

    let extraText: string | null;
    let extraObj: JsonObject | null;
    if (run.extra === undefined) {
      extraText = existing?.extra ?? null;
      extraObj = parseJson<JsonObject>(extraText);
    } else {
      const stored = parseJson<JsonObject>(existing?.extra ?? null);
      extraObj = stored === null ? run.extra : dominant ? mergeExtra(stored, run.extra) : mergeExtra(run.extra, stored);
      extraText = stored === null ? run.raw?.extra ?? JSON.stringify(extraObj) : JSON.stringify(extraObj);
    }

    const runType = pick(run.run_type, existing?.run_type);
    const outputsText = pickJson("outputs", existing?.outputs);
    let usage: Usage | null = existing
      ? { prompt: existing.prompt_tokens, completion: existing.completion_tokens, total: existing.total_tokens }
      : null;
    if (outputsText !== (existing?.outputs ?? null) || runType !== (existing?.run_type ?? null)) {
      usage = runType === "llm" ? usageFromOutputs(parseJson<JsonObject>(outputsText) ?? undefined) : null;
    }
    const eventsText = pickJson("events", existing?.events);
    const firstToken = eventsText === (existing?.events ?? null) ? existing?.first_token_time ?? null : firstTokenTime(parseJson<JsonObject[]>(eventsText));
    const lastSegment = segments[segments.length - 1] as DottedSegment;

    const row: RunRow = {
      id: run.id,
      trace_id: traceId,
      dotted_order: formatDottedOrder(segments),
      parent_run_id: parentId ?? null,
      project_id: (existing?.project_explicit === 0 ? projectId : pick(projectId, existing?.project_id)) ?? existing?.project_id ?? this.ensureProject(DEFAULT_PROJECT_NAME),
      project_explicit: projectId !== undefined || existing?.project_explicit === 1 ? 1 : 0,
      name: pick(run.name, existing?.name),
      run_type: runType,
      start_time: pick(run.start_time, existing?.start_time) ?? lastSegment.time,
      end_time: pick(run.end_time, existing?.end_time),
      error: pick(run.error, existing?.error),
      inputs: pickJson("inputs", existing?.inputs),
      outputs: outputsText,
      extra: extraText,
      events: eventsText,
      tags: pickJson("tags", existing?.tags),
      serialized: pickJson("serialized", existing?.serialized),
      reference_example_id: pick(run.reference_example_id, existing?.reference_example_id),
      address: pick(run.address, existing?.address),
      service: serviceOf(extraObj),
      prompt_tokens: usage?.prompt ?? null,
      completion_tokens: usage?.completion ?? null,
      total_tokens: usage?.total ?? null,
      first_token_time: firstToken,
      has_post: existing?.has_post === 1 || run.op === "post" ? 1 : 0,
      has_patch: existing?.has_patch === 1 || run.op === "patch" ? 1 : 0,
      source: existing?.source ?? run.source ?? null,
      received_at: existing?.received_at ?? now,
      updated_at: now,
    };
    const tooLarge = payloadViolation([row.inputs, row.outputs, row.extra, row.events, row.serialized, row.error]);
    if (tooLarge !== undefined) return { rule: "over_limit", message: tooLarge, trace_id: traceId };
    return row;
  }

  /**
   * The run's stored parent, and its stored children when it is new, must agree with the ancestry
   * its dotted_order gives (see checkParentAncestry). A run's ancestry never changes once stored
   * (the conflict rule), so children are checked only when the run first arrives.
   */
  private checkAncestry(id: string, traceId: string, parentId: string | undefined, segments: DottedSegment[], isNew: boolean, tree: TreeLookup): RuleViolation | null {
    const parent = parentId === undefined ? undefined : tree.node(parentId);
    if (parentId !== undefined && parent) {
      const v = checkParentAncestry({ id, trace_id: traceId, segments }, { id: parentId, trace_id: parent.trace_id, dotted_order: parent.dotted_order });
      if (v) return v;
    }
    if (!isNew) return null;
    for (const child of tree.children(id)) {
      const v = checkChildAncestry({ id, segments }, child);
      if (v) return v;
    }
    return null;
  }

  private putAttachment(runId: string, a: RunAttachment): void {
    this.stmt("INSERT OR REPLACE INTO attachments (run_id, name, content_type, data) VALUES (?, ?, ?, ?)").run(runId, a.name, a.contentType, a.data);
  }

  recordRejection(input: RejectionInput): Rejection {
    const row = this.stmt(
      `INSERT INTO rejections (received_at, route, op, run_id, trace_id, rule, message, payload)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ).get(nowIso(), input.route, input.op ?? null, input.run_id ?? null, input.trace_id ?? null, input.rule, input.message, truncatePayload(input.payload)) as unknown as RejectionRow;
    return toRejection(row);
  }

  /**
   * Store feedback under its id (a new one when it has none). An id that is already stored with
   * another body throws FeedbackConflictError rather than replace the earlier feedback; the same
   * body again (a retried request) changes nothing.
   */
  recordFeedback(body: JsonObject): string {
    this.changes.noteUnattributed();
    const id = this.insertFeedback(body);
    const runId = typeof body.run_id === "string" ? body.run_id.toLowerCase() : undefined;
    const run = runId === undefined ? undefined : (this.stmt("SELECT trace_id FROM runs WHERE id = ?").get(runId) as { trace_id: string } | undefined);
    this.changes.attribute(run ? [run.trace_id] : []);
    return id;
  }

  private insertFeedback(body: JsonObject): string {
    const id = typeof body.id === "string" ? body.id : randomUUID();
    const text = JSON.stringify({ ...body, id });
    const stored = this.stmt("SELECT body FROM feedback WHERE id = ?").get(id) as { body: string } | undefined;
    if (stored !== undefined) {
      if (stored.body === text) return id;
      throw new FeedbackConflictError(`feedback ${id} already exists with other content; feedback ids are not reused`);
    }
    this.stmt("INSERT INTO feedback (id, run_id, trace_id, key, body, received_at) VALUES (?, ?, ?, ?, ?, ?)").run(
      id,
      typeof body.run_id === "string" ? body.run_id : null,
      typeof body.trace_id === "string" ? body.trace_id : null,
      typeof body.key === "string" ? body.key : null,
      text,
      nowIso(),
    );
    return id;
  }

  listFeedback(filter: { runIds?: string[]; keys?: string[]; limit?: number; offset?: number } = {}): JsonObject[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.runIds?.length) {
      where.push(`run_id IN (${filter.runIds.map(() => "?").join(", ")})`);
      params.push(...filter.runIds);
    }
    if (filter.keys?.length) {
      where.push(`key IN (${filter.keys.map(() => "?").join(", ")})`);
      params.push(...filter.keys);
    }
    const sql = `SELECT body, received_at FROM feedback ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY received_at, id LIMIT ? OFFSET ?`;
    const rows = this.stmt(sql).all(...params, filter.limit ?? 100, filter.offset ?? 0) as Array<{ body: string; received_at: string }>;
    return rows.map((r) => ({ created_at: r.received_at, modified_at: r.received_at, ...(JSON.parse(r.body) as JsonObject) }));
  }

  /** Delete every run, project, rejection, attachment and feedback. */
  clear(): void {
    this.transaction(() => {
      for (const table of ["runs", "projects", "rejections", "attachments", "feedback", "shares"]) this.db.exec(`DELETE FROM ${table}`);
    });
    this.projectIdsByName.clear();
  }

  // ---------------------------------------------------------------- change tokens

  /**
   * A token that differs whenever what the store holds for one trace (its runs, rejections and
   * their feedback), or with no trace anything at all, may have changed (see ChangeTokens). It
   * costs one SQLite call, so a viewer polling an unchanged trace costs nothing else.
   */
  changeToken(traceId?: string): string {
    return this.changes.token(traceId);
  }

  // ---------------------------------------------------------------- projects

  /** The id of the project with this name, creating it on first use. */
  ensureProject(name: string): string {
    const cached = this.projectIdsByName.get(name);
    if (cached !== undefined) return cached;
    const found = this.stmt("SELECT id FROM projects WHERE name = ?").get(name) as { id: string } | undefined;
    const id = found?.id ?? randomUUID();
    if (!found) {
      this.stmt("INSERT INTO projects (id, name, start_time) VALUES (?, ?, ?)").run(id, name, nowIso());
    }
    this.projectIdsByName.set(name, id);
    return id;
  }

  createProject(input: CreateProjectInput): StoredProject {
    return this.transaction(() => {
      const existing = this.getProjectByName(input.name);
      if (existing) {
        if (input.upsert) return existing;
        throw new ProjectConflictError(`project ${JSON.stringify(input.name)} already exists`);
      }
      const id = randomUUID();
      this.stmt("INSERT INTO projects (id, name, description, extra, start_time) VALUES (?, ?, ?, ?, ?)").run(
        id,
        input.name,
        input.description ?? null,
        input.extra ? JSON.stringify(input.extra) : null,
        nowIso(),
      );
      this.projectIdsByName.set(input.name, id);
      return this.getProject(id) as StoredProject;
    });
  }

  updateProject(id: string, patch: { name?: string | null; description?: string | null; extra?: JsonObject | null; end_time?: string | null }): StoredProject | undefined {
    return this.transaction(() => {
      const current = this.getProject(id);
      if (!current) return undefined;
      if (patch.name != null && patch.name !== current.name) {
        if (this.getProjectByName(patch.name)) throw new ProjectConflictError(`project ${JSON.stringify(patch.name)} already exists`);
        this.projectIdsByName.delete(current.name);
      }
      this.stmt("UPDATE projects SET name = ?, description = ?, extra = ?, end_time = ? WHERE id = ?").run(
        patch.name ?? current.name,
        patch.description !== undefined ? patch.description : current.description,
        patch.extra != null ? JSON.stringify(patch.extra) : current.extra ? JSON.stringify(current.extra) : null,
        patch.end_time !== undefined ? patch.end_time : current.end_time,
        id,
      );
      return this.getProject(id);
    });
  }

  /** Delete a project and its runs. */
  deleteProject(id: string): boolean {
    return this.transaction(() => {
      const project = this.getProject(id);
      if (!project) return false;
      this.stmt("DELETE FROM attachments WHERE run_id IN (SELECT id FROM runs WHERE project_id = ?)").run(id);
      this.stmt("DELETE FROM runs WHERE project_id = ?").run(id);
      this.stmt("DELETE FROM shares WHERE project_id = ?").run(id);
      this.stmt("DELETE FROM projects WHERE id = ?").run(id);
      this.projectIdsByName.delete(project.name);
      return true;
    });
  }

  getProject(id: string): StoredProject | undefined {
    const row = this.stmt("SELECT * FROM projects WHERE id = ?").get(id) as ProjectRow | undefined;
    return row && toProject(row);
  }

  getProjectByName(name: string): StoredProject | undefined {
    const row = this.stmt("SELECT * FROM projects WHERE name = ?").get(name) as ProjectRow | undefined;
    return row && toProject(row);
  }

  listProjects(filter: ProjectFilter = {}): StoredProject[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.ids?.length) {
      where.push(`id IN (${filter.ids.map(() => "?").join(", ")})`);
      params.push(...filter.ids);
    }
    if (filter.name !== undefined) {
      where.push("name = ?");
      params.push(filter.name);
    }
    if (filter.nameContains !== undefined) {
      where.push("instr(lower(name), lower(?)) > 0");
      params.push(filter.nameContains);
    }
    const sql = `SELECT * FROM projects ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY start_time DESC, id LIMIT ? OFFSET ?`;
    const { metadata } = filter;
    if (metadata === undefined) return (this.stmt(sql).all(...params, filter.limit ?? 100, filter.offset ?? 0) as unknown as ProjectRow[]).map(toProject);
    // Compared as JSON values (true is not 1), so filtered here; there are few projects.
    const offset = filter.offset ?? 0;
    return (this.stmt(sql).all(...params, -1, 0) as unknown as ProjectRow[])
      .map(toProject)
      .filter((p) => hasMetadata(p.extra, metadata))
      .slice(offset, offset + (filter.limit ?? 100));
  }

  projectStats(id: string): ProjectStats {
    const agg = this.stmt(
      `SELECT COUNT(*) AS run_count, MAX(start_time) AS last_start,
              SUM(parent_run_id IS NULL) AS roots, SUM(parent_run_id IS NULL AND error IS NOT NULL) AS root_errors,
              SUM(CASE WHEN run_type = 'llm' THEN total_tokens END) AS total_tokens,
              SUM(CASE WHEN run_type = 'llm' THEN prompt_tokens END) AS prompt_tokens,
              SUM(CASE WHEN run_type = 'llm' THEN completion_tokens END) AS completion_tokens
       FROM runs WHERE project_id = ?`,
    ).get(id) as { run_count: number; last_start: string | null; roots: number | null; root_errors: number | null; total_tokens: number | null; prompt_tokens: number | null; completion_tokens: number | null };
    const latencies = (this.stmt("SELECT start_time, end_time FROM runs WHERE project_id = ? AND parent_run_id IS NULL AND end_time IS NOT NULL").all(id) as Array<{ start_time: string; end_time: string }>)
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

  // ---------------------------------------------------------------- runs

  getRun(id: string, opts: RunReadOptions = {}): StoredRun | undefined {
    const row = this.selectRun(id.toLowerCase());
    return row && this.toRun(row, opts);
  }

  /**
   * The stored runs of a trace, in execution (dotted_order) order: every one, or `limit` of them
   * from `offset`. In that order a run's ancestors come before it, so any first page is a tree.
   */
  getTraceRuns(traceId: string, opts: RunReadOptions & { limit?: number; offset?: number } = {}): StoredRun[] {
    const rows = this.stmt("SELECT * FROM runs WHERE trace_id = ? ORDER BY dotted_order LIMIT ? OFFSET ?").all(traceId.toLowerCase(), opts.limit ?? -1, opts.offset ?? 0) as unknown as RunRow[];
    const usage = this.subtreeUsage(traceId.toLowerCase());
    return rows.map((r) => this.toRun(r, opts, usage));
  }

  /**
   * Token sums over the LLM runs below each run of a trace, by run id, in one pass over the
   * trace's LLM runs. Summed per run in SQL instead, each run scanned its whole subtree, so a
   * chain of runs cost its depth squared: 256 levels took hundreds of milliseconds per view.
   */
  private subtreeUsage(traceId: string): Map<string, Usage> {
    const sums = new Map<string, Usage>();
    const add = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);
    const llmRuns = this.stmt("SELECT dotted_order, prompt_tokens, completion_tokens, total_tokens FROM runs WHERE trace_id = ? AND run_type = 'llm'").all(traceId) as Array<
      Pick<RunRow, "dotted_order" | "prompt_tokens" | "completion_tokens" | "total_tokens">
    >;
    for (const llm of llmRuns) {
      for (const ancestor of dottedOrderIds(llm.dotted_order).slice(0, -1)) {
        const sum = sums.get(ancestor) ?? { prompt: null, completion: null, total: null };
        sums.set(ancestor, { prompt: add(sum.prompt, llm.prompt_tokens), completion: add(sum.completion, llm.completion_tokens), total: add(sum.total, llm.total_tokens) });
      }
    }
    return sums;
  }

  countTraceRuns(traceId: string): number {
    return (this.stmt("SELECT COUNT(*) AS n FROM runs WHERE trace_id = ?").get(traceId.toLowerCase()) as { n: number }).n;
  }

  /**
   * Runs matching a query, newest first unless `order` is "asc", one page at
   * a time; pass `nextCursor` back as `cursor` for the next page.
   *
   * With `budget`, every run scanned is charged 1 plus its filters' calls (see ScanBudget); when
   * the budget says stop, the page so far comes back with `stopped` and a `nextCursor` that
   * resumes the scan where it stopped (queryRunsWithinBudget drives this).
   */
  queryRuns(q: RunQuery, opts: RunReadOptions & { budget?: ScanBudget } = {}): RunPage {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    // One parameter per list, however long: SQLite refuses a statement with more than 32,766.
    const inList = (column: string, values: readonly string[]): void => {
      where.push(`${column} IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(values.map((v) => v.toLowerCase())));
    };
    if (q.projectIds?.length) inList("project_id", q.projectIds);
    if (q.runIds?.length) inList("id", q.runIds);
    if (q.referenceExampleIds?.length) inList("reference_example_id", q.referenceExampleIds);
    if (q.traceId !== undefined) {
      where.push("trace_id = ?");
      params.push(q.traceId.toLowerCase());
    }
    if (q.parentRunId !== undefined) {
      where.push("parent_run_id = ?");
      params.push(q.parentRunId.toLowerCase());
    }
    if (q.isRoot !== undefined) where.push(q.isRoot ? "parent_run_id IS NULL" : "parent_run_id IS NOT NULL");
    if (q.error !== undefined) where.push(q.error ? "error IS NOT NULL" : "error IS NULL");
    if (q.runType !== undefined) {
      where.push("run_type = ?");
      params.push(q.runType);
    }
    if (q.startTime !== undefined) {
      where.push("start_time >= ?");
      params.push(q.startTime);
    }
    if (q.maxStartTime !== undefined) {
      where.push("start_time <= ?");
      params.push(q.maxStartTime);
    }
    const asc = q.order === "asc";
    if (q.cursor !== undefined) {
      const c = decodeCursor(q.cursor);
      where.push(`(start_time, id) ${asc ? ">" : "<"} (?, ?)`);
      params.push(c.t, c.id);
    }
    const limit = Math.max(1, Math.min(q.limit ?? MAX_QUERY_PAGE, MAX_QUERY_PAGE));
    const charge = (units: number): void => void opts.budget?.spend(units);
    const predicates: RunPredicate[] = [];
    if (q.filter) predicates.push(compileFilter(q.filter));
    if (q.traceFilter) predicates.push(this.traceLevelPredicate(compileFilter(q.traceFilter), "root", opts, charge));
    if (q.treeFilter) predicates.push(this.traceLevelPredicate(compileFilter(q.treeFilter), "any", opts, charge));
    if (q.query) {
      const needle = q.query.toLowerCase();
      predicates.push((r) => JSON.stringify([r.name, r.inputs, r.outputs, r.error]).toLowerCase().includes(needle));
    }
    const rowCost = 1 + predicates.reduce((sum, p) => sum + (p.cost ?? 1), 0);
    const dir = asc ? "ASC" : "DESC";
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY start_time ${dir}, id ${dir}`;
    const runs: StoredRun[] = [];
    let nextCursor: string | null = null;
    let lastScanned: RunRow | undefined;
    for (const raw of this.stmt(sql).iterate(...params)) {
      if (opts.budget && !opts.budget.spend(rowCost)) {
        // Resume after the last run returned when the page is full, else after the last one scanned.
        const resume = runs.length === limit ? (runs[runs.length - 1] as StoredRun) : lastScanned;
        const at = resume ? { t: resume.start_time ?? "", id: resume.id } : q.cursor === undefined ? undefined : decodeCursor(q.cursor);
        return { runs, nextCursor: at ? encodeCursor(at) : null, stopped: true };
      }
      lastScanned = raw as unknown as RunRow;
      const run = this.toRun(lastScanned, opts);
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

  /** The earliest first-token time in a run's subtree, the run itself included. */
  subtreeFirstTokenTime(run: Pick<StoredRun, "trace_id" | "dotted_order">): string | null {
    const row = this.stmt(
      `SELECT MIN(first_token_time) AS t FROM runs
       WHERE trace_id = ? AND (dotted_order = ? OR (dotted_order > ? AND dotted_order < ?))`,
    ).get(run.trace_id, run.dotted_order, `${run.dotted_order}.`, `${run.dotted_order}/`) as { t: string | null };
    return row.t;
  }

  private traceLevelPredicate(pred: RunPredicate, scope: "root" | "any", opts: RunReadOptions, charge: (units: number) => void): RunPredicate {
    const verdicts = new Map<string, boolean>();
    const perRun = 1 + (pred.cost ?? 1);
    return (run) => {
      let v = verdicts.get(run.trace_id);
      if (v === undefined) {
        if (scope === "root") {
          const root = this.getRun(run.trace_id, opts);
          charge(perRun);
          v = root !== undefined && pred(root);
        } else {
          const traceRuns = this.getTraceRuns(run.trace_id, opts);
          charge(traceRuns.length * perRun);
          v = traceRuns.some(pred);
        }
        verdicts.set(run.trace_id, v);
      }
      return v;
    };
  }

  /** `subtreeUsage`, when the caller has it for the run's trace (see subtreeUsage), saves a query per run. */
  private toRun(row: RunRow, opts: RunReadOptions, subtreeUsage?: Map<string, Usage>): StoredRun {
    const segments = row.dotted_order.split(".");
    const parentRunIds = segments.slice(0, -1).map((s) => s.slice(-36));
    const childIds = (this.stmt("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY dotted_order").all(row.id) as Array<{ id: string }>).map((r) => r.id);
    let usage: Usage = { prompt: row.prompt_tokens, completion: row.completion_tokens, total: row.total_tokens };
    if (row.run_type !== "llm" && subtreeUsage !== undefined) {
      usage = subtreeUsage.get(row.id) ?? { prompt: null, completion: null, total: null };
    } else if (row.run_type !== "llm") {
      // LangSmith reports a chain's tokens as the sum over the LLM runs beneath it.
      const sum = this.stmt(
        `SELECT SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c, SUM(total_tokens) AS t FROM runs
         WHERE trace_id = ? AND dotted_order > ? AND dotted_order < ? AND run_type = 'llm'`,
      ).get(row.trace_id, `${row.dotted_order}.`, `${row.dotted_order}/`) as { p: number | null; c: number | null; t: number | null };
      usage = { prompt: sum.p, completion: sum.c, total: sum.t };
    }
    const attachments: StoredRun["attachments"] = {};
    for (const a of this.stmt("SELECT name, content_type FROM attachments WHERE run_id = ?").all(row.id) as Array<{ name: string; content_type: string }>) {
      attachments[a.name] = {
        presigned_url: `${opts.urlBase ?? ""}/api/attachments/${row.id}/${encodeURIComponent(a.name)}`,
        mime_type: a.content_type,
      };
    }
    const feedback = this.stmt(
      `SELECT key, COUNT(*) AS n, AVG(json_extract(body, '$.score')) AS avg FROM feedback
       WHERE run_id = ? AND key IS NOT NULL GROUP BY key ORDER BY key`,
    ).all(row.id) as Array<{ key: string; n: number; avg: number | null }>;
    const feedbackStats = feedback.length ? Object.fromEntries(feedback.map((f) => [f.key, { n: f.n, avg: f.avg }])) : null;
    const status: RunStatus = row.error !== null ? "error" : row.end_time !== null ? "success" : "pending";
    const run: StoredRun = {
      id: row.id,
      name: row.name ?? "",
      run_type: row.run_type ?? "chain",
      start_time: row.start_time,
      end_time: row.end_time,
      status,
      trace_id: row.trace_id,
      dotted_order: row.dotted_order,
      parent_run_id: row.parent_run_id,
      parent_run_ids: parentRunIds,
      child_run_ids: childIds,
      session_id: row.project_id,
      inputs: parseJson<JsonObject>(row.inputs) ?? {},
      outputs: parseJson<JsonObject>(row.outputs),
      error: row.error,
      extra: parseJson<JsonObject>(row.extra) ?? {},
      events: parseJson<JsonObject[]>(row.events) ?? [],
      tags: parseJson<string[]>(row.tags) ?? [],
      serialized: parseJson<JsonObject>(row.serialized),
      reference_example_id: row.reference_example_id,
      prompt_tokens: usage.prompt,
      completion_tokens: usage.completion,
      total_tokens: usage.total,
      first_token_time: row.first_token_time,
      thread_id: null,
      feedback_stats: feedbackStats,
      app_path: `/o/${LOCAL_TENANT_ID}/projects/p/${row.project_id}/r/${row.id}?trace_id=${row.trace_id}&start_time=${row.start_time}`,
      attachments,
      in_dataset: false,
      manifest_id: null,
    };
    if (row.address !== null) run.address = row.address;
    const thread = threadIdOf(run);
    if (typeof thread === "string") run.thread_id = thread;
    return run;
  }

  getAttachment(runId: string, name: string): { contentType: string; data: Uint8Array } | undefined {
    const row = this.stmt("SELECT content_type, data FROM attachments WHERE run_id = ? AND name = ?").get(runId.toLowerCase(), name) as
      | { content_type: string; data: Uint8Array }
      | undefined;
    return row && { contentType: row.content_type, data: row.data };
  }

  // ---------------------------------------------------------------- traces & rejections

  /** Trace summaries matching every given filter, newest first, one page of them. */
  listTraces(filter: TraceFilter = {}): TraceSummary[] {
    // WHERE only narrows to whole traces (by trace_id), so each group's aggregates stay those of the full trace.
    const where: string[] = [];
    const whereParams: SQLInputValue[] = [];
    const having: string[] = [];
    const havingParams: SQLInputValue[] = [];
    let projectId = filter.projectId;
    if (filter.projectName !== undefined) {
      const p = this.getProjectByName(filter.projectName);
      if (!p) return [];
      projectId = p.id;
    }
    if (projectId !== undefined) {
      having.push("SUM(r.project_id = ?) > 0");
      havingParams.push(projectId);
    }
    if (filter.service !== undefined) {
      having.push("SUM(r.service = ?) > 0");
      havingParams.push(filter.service);
    }
    if (filter.since !== undefined) {
      having.push("MIN(r.start_time) >= ?");
      havingParams.push(filter.since);
    }
    // The same rule as the summary's status below: any error wins, then any run not ended.
    if (filter.status === "error") {
      where.push("r.trace_id IN (SELECT trace_id FROM runs WHERE error IS NOT NULL)");
    } else if (filter.status === "pending") {
      where.push("r.trace_id IN (SELECT trace_id FROM runs WHERE end_time IS NULL)");
      having.push("SUM(r.error IS NOT NULL) = 0");
    } else if (filter.status === "success") {
      having.push("SUM(r.error IS NOT NULL) = 0 AND SUM(r.end_time IS NULL) = 0");
    }
    // Every name contains "" (a missing root's too), so an empty needle filters nothing.
    if (filter.rootNameContains) {
      // The root is looked up by id = trace_id, as the summary's root_name is.
      where.push("r.trace_id IN (SELECT id FROM runs WHERE js_lower_includes(name, ?))");
      whereParams.push(filter.rootNameContains.toLowerCase());
    }
    const sql = `SELECT r.trace_id AS trace_id, COUNT(*) AS run_count, MIN(r.start_time) AS start_time,
        MAX(r.end_time) AS max_end, SUM(r.end_time IS NULL) AS pending,
        SUM(r.error IS NOT NULL) AS error_count,
        SUM(r.parent_run_id IS NOT NULL AND p.id IS NULL) AS orphan_count,
        json_group_array(DISTINCT r.service) AS services,
        json_group_array(DISTINCT r.project_id) AS project_ids
      FROM runs r LEFT JOIN runs p ON p.id = r.parent_run_id
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      GROUP BY r.trace_id
      ${having.length ? `HAVING ${having.join(" AND ")}` : ""}
      ORDER BY start_time DESC, trace_id DESC LIMIT ? OFFSET ?`;
    const rows = this.stmt(sql).all(...whereParams, ...havingParams, filter.limit ?? 100, filter.offset ?? 0) as Array<{
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
      const root = this.stmt("SELECT id, name FROM runs WHERE id = ?").get(r.trace_id) as { id: string; name: string | null } | undefined;
      const projectIds = (JSON.parse(r.project_ids) as string[]).sort();
      const rejected = this.stmt("SELECT COUNT(*) AS n FROM rejections WHERE trace_id = ?").get(r.trace_id) as { n: number };
      const status: RunStatus = r.error_count > 0 ? "error" : r.pending > 0 ? "pending" : "success";
      return {
        trace_id: r.trace_id,
        root_run_id: root?.id ?? null,
        root_name: root?.name ?? null,
        project_ids: projectIds,
        project_names: projectIds.map((id) => this.getProject(id)?.name ?? id),
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

  /** Rejections, newest first. */
  listRejections(filter: RejectionFilter = {}): Rejection[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.traceId !== undefined) {
      where.push("trace_id = ?");
      params.push(filter.traceId.toLowerCase());
    }
    if (filter.runId !== undefined) {
      where.push("run_id = ?");
      params.push(filter.runId.toLowerCase());
    }
    if (filter.rule !== undefined) {
      where.push("rule = ?");
      params.push(filter.rule);
    }
    if (filter.afterSeq !== undefined) {
      where.push("seq > ?");
      params.push(filter.afterSeq);
    }
    const sql = `SELECT * FROM rejections ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    return (this.stmt(sql).all(...params, filter.limit ?? 100) as unknown as RejectionRow[]).map(toRejection);
  }

  /** Bytes the database uses (its pages less the free ones), the measure of TraceServerAppOptions.maxStoreBytes. */
  sizeBytes(): number {
    const pragma = (name: string): number => Object.values(this.db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[0] ?? 0;
    return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
  }

  counts(): { runs: number; traces: number; projects: number; rejections: number } {
    const one = (sql: string): number => (this.stmt(sql).get() as { n: number }).n;
    return {
      runs: one("SELECT COUNT(*) AS n FROM runs"),
      traces: one("SELECT COUNT(DISTINCT trace_id) AS n FROM runs"),
      projects: one("SELECT COUNT(*) AS n FROM projects"),
      rejections: one("SELECT COUNT(*) AS n FROM rejections"),
    };
  }
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
