// Stores mapped OTLP spans through TraceStore.upsertRuns, holding back spans whose parent has not
// arrived yet. Use one per store:
//
//   const ingest = otlpIngestFor(store, { orphanAfterMs: 60_000, log });
//   const { result, held } = ingest.ingest(mappedSpans, { route, rejections });
//
// A BatchSpanProcessor exports a span when it ends, so children routinely arrive before their
// parent, often in an earlier request. A run's dotted_order and trace id come from its parent, so
// such a span waits in the `otlp_pending` table (next to the runs, so a restart loses nothing)
// and is stored as soon as its parent is: by a later OTLP request, or by the SDK's native
// endpoints (checked every second while anything waits). LangSmith drops a span whose parent
// never comes; here it is stored after `orphanAfterMs` as an orphan, still naming its missing
// parent, inside the trace of its OpenTelemetry trace's root when that is known, with
// `extra.otel.orphan` saying how long it waited, so a broken trace looks broken.
import type { StatementSync } from "node:sqlite";
import { dottedTimestamp } from "../time.js";
import type { TraceStore } from "../store.js";
import type { RejectionInput, RunUpsert, UpsertResult } from "../types.js";
import type { MappedSpan } from "./mapping.js";
import { traceIdToUuid } from "./mapping.js";
import { DERIVE_BUDGET, MAX_SPAN_DEPTH, planSpans, tooDeepMessage } from "./plan.js";

export interface OtlpIngestOptions {
  /** How long a span waits for its parent before it is stored as an orphan. Default 60 s. */
  orphanAfterMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_ORPHAN_AFTER_MS = 60_000;
/** How often waiting spans are checked against runs that arrived by other routes. */
const RELEASE_CHECK_MS = 1_000;
/** Waiting spans released per query and per upsert. */
const DRAIN_BATCH = 500;
/** Spans stored as orphans per sweep; the rest wait for the next one. */
const ORPHANS_PER_SWEEP = 2_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS otlp_pending (
  run_id TEXT PRIMARY KEY,
  parent_run_id TEXT NOT NULL,
  otel_trace_id TEXT NOT NULL,
  route TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS otlp_pending_parent ON otlp_pending (parent_run_id);
CREATE INDEX IF NOT EXISTS otlp_pending_received ON otlp_pending (received_ms);
CREATE TABLE IF NOT EXISTS otlp_traces (
  otel_trace_id TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL,
  root_segment TEXT NOT NULL
);
`;

interface PendingRow {
  run_id: string;
  parent_run_id: string;
  otel_trace_id: string;
  route: string;
  received_ms: number;
  run: string;
}

export interface IngestResult {
  result: UpsertResult;
  /** Spans of this request now waiting for their parent. */
  held: number;
}

/** A waiting span, as `/api/otel/pending` lists it. */
export interface PendingSpan {
  run_id: string;
  parent_run_id: string;
  otel_trace_id: string;
  name: string | null;
  received_at: string;
  orphaned_in_ms: number;
}

function partition<T>(items: readonly T[], keep: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (keep(item) ? yes : no).push(item);
  return [yes, no];
}

const ingests = new WeakMap<TraceStore, OtlpIngest>();

/** The store's OTLP ingest, created on first use; options apply when it is created. */
export function otlpIngestFor(store: TraceStore, opts: OtlpIngestOptions = {}): OtlpIngest {
  let ingest = ingests.get(store);
  if (!ingest) {
    ingest = new OtlpIngest(store, opts);
    ingests.set(store, ingest);
  }
  return ingest;
}

export class OtlpIngest {
  private readonly orphanAfterMs: number;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private readonly stmts = new Map<string, StatementSync>();

  constructor(
    private readonly store: TraceStore,
    opts: OtlpIngestOptions = {},
  ) {
    this.orphanAfterMs = opts.orphanAfterMs ?? DEFAULT_ORPHAN_AFTER_MS;
    this.log = opts.log ?? ((): void => undefined);
    store.db.exec(SCHEMA);
    // Spans left waiting by a previous process: their clock kept running.
    if (this.pendingCount() > 0) this.schedule(0);
  }

  /** Store what can be stored now (parents first), hold the rest, and release what waited on them. */
  ingest(spans: readonly MappedSpan[], ctx: { route: string; rejections: RejectionInput[] }): IngestResult {
    const { ready, waiting } = planSpans(spans, (id) => this.storedDepth(id), ctx);
    const result = this.store.upsertRuns(ready.map((s) => s.run), { route: ctx.route, rejections: ctx.rejections });
    this.rememberTraces(ready, new Set(result.accepted));
    this.hold(waiting, ctx.route);
    this.drain(result.accepted);
    if (this.pendingCount() > 0) this.schedule(RELEASE_CHECK_MS);
    return { result, held: waiting.length };
  }

  /** Spans waiting for their parent, oldest first. */
  listPending(limit = 100): PendingSpan[] {
    const rows = this.stmt("SELECT * FROM otlp_pending ORDER BY received_ms, run_id LIMIT ?").all(limit) as unknown as PendingRow[];
    const now = Date.now();
    return rows.map((row) => ({
      run_id: row.run_id,
      parent_run_id: row.parent_run_id,
      otel_trace_id: row.otel_trace_id,
      name: (JSON.parse(row.run) as RunUpsert).name ?? null,
      received_at: new Date(row.received_ms).toISOString(),
      orphaned_in_ms: Math.max(0, row.received_ms + this.orphanAfterMs - now),
    }));
  }

  /**
   * Release spans whose parent is now stored and store the ones that waited past the deadline
   * as orphans. Runs on a timer while anything waits; callable directly (tests, shutdown).
   */
  sweep(now = Date.now()): void {
    if (!this.store.db.isOpen) return;
    const arrived = this.stmt("SELECT DISTINCT parent_run_id AS id FROM otlp_pending WHERE parent_run_id IN (SELECT id FROM runs)").all() as unknown as Array<{ id: string }>;
    this.drain(arrived.map((r) => r.id));
    // Each orphan is its own upsert: a bounded number per sweep keeps one sweep short.
    const expired = this.stmt(`SELECT * FROM otlp_pending WHERE received_ms <= ? ORDER BY received_ms, run_id LIMIT ${ORPHANS_PER_SWEEP}`).all(now - this.orphanAfterMs) as unknown as PendingRow[];
    for (const row of expired) {
      // Released meanwhile, or its parent waits too: then it follows its parent's fate.
      if (!this.pendingRow(row.run_id) || this.pendingRow(row.parent_run_id)) continue;
      this.storeOrphan(row, now);
    }
    // Spans that wait on each other in a loop would wait forever: store one, the rest follow it.
    for (const row of expired) if (this.pendingRow(row.run_id) && this.waitsInLoop(row.run_id)) this.storeOrphan(row, now);
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.store.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private isStored(runId: string): boolean {
    return this.storedDepth(runId) !== undefined;
  }

  /** Levels of a stored run (a root is 1): its dotted_order's segments. */
  private storedDepth(runId: string): number | undefined {
    const row = this.stmt("SELECT length(dotted_order) - length(replace(dotted_order, '.', '')) + 1 AS depth FROM runs WHERE id = ?").get(runId) as { depth: number } | undefined;
    return row?.depth;
  }

  private pendingRow(runId: string): PendingRow | undefined {
    return this.stmt("SELECT * FROM otlp_pending WHERE run_id = ?").get(runId) as unknown as PendingRow | undefined;
  }

  private waitsInLoop(runId: string): boolean {
    const seen = new Set<string>();
    let current = this.pendingRow(runId);
    while (current && !seen.has(current.run_id)) {
      if (current.parent_run_id === runId) return true;
      seen.add(current.run_id);
      current = this.pendingRow(current.parent_run_id);
    }
    return false;
  }

  private pendingCount(): number {
    return (this.stmt("SELECT COUNT(*) AS n FROM otlp_pending").get() as { n: number }).n;
  }

  private hold(spans: readonly MappedSpan[], route: string): void {
    if (spans.length === 0) return;
    const insert = this.stmt(
      `INSERT INTO otlp_pending (run_id, parent_run_id, otel_trace_id, route, received_ms, run) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id) DO UPDATE SET parent_run_id = excluded.parent_run_id, otel_trace_id = excluded.otel_trace_id, run = excluded.run`,
    );
    const now = Date.now();
    this.inTransaction(() => {
      for (const s of spans) insert.run(s.run.id, s.parentId as string, s.otelTraceId, route, now, JSON.stringify(s.run));
    });
  }

  /**
   * Store the waiting descendants of `parentIds`, level by level, as their parents are stored.
   * Past DERIVE_BUDGET segments the rest keeps waiting for the next sweep, a second later.
   */
  private drain(parentIds: readonly string[]): void {
    let level = [...new Set(parentIds)];
    let derived = 0;
    while (level.length > 0) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += DRAIN_BATCH) {
        const chunk = level.slice(i, i + DRAIN_BATCH);
        const select = this.stmt(`SELECT * FROM otlp_pending WHERE parent_run_id IN (${chunk.map(() => "?").join(", ")}) ORDER BY received_ms, run_id LIMIT ${DRAIN_BATCH}`);
        const parentDepth = new Map(chunk.map((id) => [id, this.storedDepth(id) ?? 0]));
        for (;;) {
          // What is left waits, its parent stored, for the next sweep to find.
          if (derived > DERIVE_BUDGET) {
            this.log(`OTLP: released waiting spans up to ${DERIVE_BUDGET} derived dotted_order segments; the rest follows in ${RELEASE_CHECK_MS} ms`);
            this.schedule(RELEASE_CHECK_MS);
            return;
          }
          const rows = select.all(...chunk) as unknown as PendingRow[];
          if (rows.length === 0) break;
          const [fits, tooDeep] = partition(rows, (row) => (parentDepth.get(row.parent_run_id) ?? 0) < MAX_SPAN_DEPTH);
          this.refuseTooDeep(tooDeep, (row) => (parentDepth.get(row.parent_run_id) ?? 0) + 1);
          for (const row of fits) derived += (parentDepth.get(row.parent_run_id) ?? 0) + 1;
          if (fits.length > 0) next.push(...this.storeRows(fits, (row) => JSON.parse(row.run) as RunUpsert));
        }
      }
      level = next;
    }
  }

  /** Upsert pending rows, drop them from the table, and return the ids now stored. */
  private storeRows(rows: readonly PendingRow[], toRun: (row: PendingRow) => RunUpsert): string[] {
    const byRoute = new Map<string, PendingRow[]>();
    for (const row of rows) byRoute.set(row.route, [...(byRoute.get(row.route) ?? []), row]);
    const accepted: string[] = [];
    for (const [route, group] of byRoute) {
      const result = this.store.upsertRuns(group.map(toRun), { route });
      accepted.push(...result.accepted);
      this.rememberTraces(group.map((row) => ({ otelTraceId: row.otel_trace_id, run: { id: row.run_id } })), new Set(result.accepted));
      for (const r of result.rejected) this.log(`OTLP span ${r.run_id ?? "?"} released after waiting for its parent, then rejected: ${r.message}`);
    }
    // Rejected ones too: the store recorded why, and waiting longer would not change it.
    this.removePending(rows);
    return accepted;
  }

  /** Refuse waiting spans past MAX_SPAN_DEPTH, and everything waiting below them, which is deeper still. */
  private refuseTooDeep(rows: readonly PendingRow[], levelOf: (row: PendingRow) => number): void {
    let level = rows.map((row) => ({ row, depth: levelOf(row) }));
    while (level.length > 0) {
      for (const { row, depth } of level) this.store.recordRejection({ route: row.route, op: "post", run_id: row.run_id, rule: "invalid_field", message: tooDeepMessage(row.run_id, depth) });
      this.removePending(level.map((l) => l.row));
      const depthOf = new Map(level.map((l) => [l.row.run_id, l.depth]));
      const below = this.stmt(`SELECT * FROM otlp_pending WHERE parent_run_id IN (SELECT value FROM json_each(?))`).all(JSON.stringify([...depthOf.keys()])) as unknown as PendingRow[];
      level = below.map((row) => ({ row, depth: (depthOf.get(row.parent_run_id) ?? MAX_SPAN_DEPTH) + 1 }));
    }
  }

  private removePending(rows: readonly PendingRow[]): void {
    if (rows.length === 0) return;
    const remove = this.stmt("DELETE FROM otlp_pending WHERE run_id = ?");
    this.inTransaction(() => {
      for (const row of rows) remove.run(row.run_id);
    });
  }

  private storeOrphan(row: PendingRow, now: number): void {
    if (this.isStored(row.parent_run_id)) {
      this.drain([row.parent_run_id]);
      return;
    }
    const waited = now - row.received_ms;
    const known = this.stmt("SELECT trace_id, root_segment FROM otlp_traces WHERE otel_trace_id = ?").get(row.otel_trace_id) as { trace_id: string; root_segment: string } | undefined;
    const stored = this.storeRows([row], (r) => {
      const run = JSON.parse(r.run) as RunUpsert;
      const own = dottedTimestamp(run.start_time as string);
      // The path from the trace's root to the missing parent is unknown: the parent stands directly under the root.
      const traceId = known?.trace_id ?? traceIdToUuid(r.otel_trace_id);
      const rootSegment = known?.root_segment ?? `${own}${traceId}`;
      const otel = typeof run.extra?.otel === "object" && run.extra.otel !== null ? run.extra.otel : {};
      return {
        ...run,
        trace_id: traceId,
        dotted_order: `${rootSegment}.${own}${r.parent_run_id}.${own}${run.id}`,
        extra: { ...run.extra, otel: { ...otel, orphan: { missing_parent_run_id: r.parent_run_id, waited_ms: waited } } },
      };
    });
    this.log(`OTLP span ${row.run_id} stored as an orphan: parent ${row.parent_run_id} did not arrive within ${Math.round(waited / 1000)} s`);
    this.drain(stored);
  }

  /** Note each OTel trace's LangSmith trace (its root run) the first time one of its spans is stored. */
  private rememberTraces(spans: ReadonlyArray<Pick<MappedSpan, "otelTraceId"> & { run: { id: string } }>, accepted: ReadonlySet<string>): void {
    const seen = new Set<string>();
    const known = this.stmt("SELECT 1 AS found FROM otlp_traces WHERE otel_trace_id = ?");
    // Only the two columns needed, and one transaction: reading whole runs and committing each
    // insert made this most of the time of a request of many traces (80,000 one-span traces: 4 s).
    const stored = this.stmt("SELECT trace_id, dotted_order FROM runs WHERE id = ?");
    const insert = this.stmt("INSERT OR IGNORE INTO otlp_traces (otel_trace_id, trace_id, root_segment) VALUES (?, ?, ?)");
    this.inTransaction(() => {
      for (const span of spans) {
        if (!accepted.has(span.run.id) || seen.has(span.otelTraceId)) continue;
        seen.add(span.otelTraceId);
        if (known.get(span.otelTraceId) !== undefined) continue;
        const run = stored.get(span.run.id) as { trace_id: string; dotted_order: string } | undefined;
        const rootSegment = run?.dotted_order.split(".")[0];
        if (run && rootSegment) insert.run(span.otelTraceId, run.trace_id, rootSegment);
      }
    });
  }

  private inTransaction(fn: () => void): void {
    if (this.store.db.isTransaction) return fn();
    this.store.db.exec("BEGIN IMMEDIATE");
    try {
      fn();
      this.store.db.exec("COMMIT");
    } catch (e) {
      this.store.db.exec("ROLLBACK");
      throw e;
    }
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.store.db.isOpen) return;
      try {
        this.sweep();
      } catch (e) {
        this.log(`ERROR releasing waiting OTLP spans: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
      if (this.store.db.isOpen && this.pendingCount() > 0) this.schedule(RELEASE_CHECK_MS);
    }, delayMs);
    // Waiting spans must not keep a process alive that is otherwise done.
    this.timer.unref();
  }
}
