/**
 * Reading stored runs as the API returns them (StoredRun): one run, a trace's runs in execution
 * order, counts, the first streamed token under a run, and attachments. A chain's token counts
 * are the sums over the LLM runs beneath it, as LangSmith reports them. Functions of a
 * StoreConnection; use them through TraceStore.
 *
 *   getRun(conn, id, { urlBase: "http://127.0.0.1:1984" });
 *   getTraceRuns(conn, traceId, { limit: 2000 });
 */
import { threadIdOf } from "../filter.js";
import type { JsonObject, RunStatus, StoredRun } from "../types.js";
import { dottedOrderIds } from "../validate.js";
import type { StoreConnection } from "./connection.js";
import { LOCAL_TENANT_ID, parseJson, type RunRow, type Usage } from "./rows.js";

export interface RunReadOptions {
  /** Prefix for attachment URLs, e.g. `http://127.0.0.1:1984`. */
  urlBase?: string;
}

export function getRun(conn: StoreConnection, id: string, opts: RunReadOptions = {}): StoredRun | undefined {
  const row = selectRun(conn, id.toLowerCase());
  return row && toRun(conn, row, opts);
}

/**
 * The stored runs of a trace, in execution (dotted_order) order: every one, or `limit` of them
 * from `offset`. In that order a run's ancestors come before it, so any first page is a tree.
 */
export function getTraceRuns(conn: StoreConnection, traceId: string, opts: RunReadOptions & { limit?: number; offset?: number } = {}): StoredRun[] {
  const rows = conn.stmt("SELECT * FROM runs WHERE trace_id = ? ORDER BY dotted_order LIMIT ? OFFSET ?").all(traceId.toLowerCase(), opts.limit ?? -1, opts.offset ?? 0) as unknown as RunRow[];
  const usage = subtreeUsage(conn, traceId.toLowerCase());
  return rows.map((r) => toRun(conn, r, opts, usage));
}

export function countTraceRuns(conn: StoreConnection, traceId: string): number {
  return (conn.stmt("SELECT COUNT(*) AS n FROM runs WHERE trace_id = ?").get(traceId.toLowerCase()) as { n: number }).n;
}

/** The earliest first-token time in a run's subtree, the run itself included. */
export function subtreeFirstTokenTime(conn: StoreConnection, run: Pick<StoredRun, "trace_id" | "dotted_order">): string | null {
  const row = conn.stmt(
    `SELECT MIN(first_token_time) AS t FROM runs
     WHERE trace_id = ? AND (dotted_order = ? OR (dotted_order > ? AND dotted_order < ?))`,
  ).get(run.trace_id, run.dotted_order, `${run.dotted_order}.`, `${run.dotted_order}/`) as { t: string | null };
  return row.t;
}

export function getAttachment(conn: StoreConnection, runId: string, name: string): { contentType: string; data: Uint8Array } | undefined {
  const row = conn.stmt("SELECT content_type, data FROM attachments WHERE run_id = ? AND name = ?").get(runId.toLowerCase(), name) as
    | { content_type: string; data: Uint8Array }
    | undefined;
  return row && { contentType: row.content_type, data: row.data };
}

export function selectRun(conn: StoreConnection, id: string): RunRow | undefined {
  return conn.stmt("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
}

/** `subtreeUsage`, when the caller has it for the run's trace (see subtreeUsage), saves a query per run. */
export function toRun(conn: StoreConnection, row: RunRow, opts: RunReadOptions, subtreeUsage?: Map<string, Usage>): StoredRun {
  const segments = row.dotted_order.split(".");
  const parentRunIds = segments.slice(0, -1).map((s) => s.slice(-36));
  const childIds = (conn.stmt("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY dotted_order").all(row.id) as Array<{ id: string }>).map((r) => r.id);
  let usage: Usage = { prompt: row.prompt_tokens, completion: row.completion_tokens, total: row.total_tokens };
  if (row.run_type !== "llm" && subtreeUsage !== undefined) {
    usage = subtreeUsage.get(row.id) ?? { prompt: null, completion: null, total: null };
  } else if (row.run_type !== "llm") {
    // LangSmith reports a chain's tokens as the sum over the LLM runs beneath it.
    const sum = conn.stmt(
      `SELECT SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c, SUM(total_tokens) AS t FROM runs
       WHERE trace_id = ? AND dotted_order > ? AND dotted_order < ? AND run_type = 'llm'`,
    ).get(row.trace_id, `${row.dotted_order}.`, `${row.dotted_order}/`) as { p: number | null; c: number | null; t: number | null };
    usage = { prompt: sum.p, completion: sum.c, total: sum.t };
  }
  const attachments: StoredRun["attachments"] = {};
  for (const a of conn.stmt("SELECT name, content_type FROM attachments WHERE run_id = ?").all(row.id) as Array<{ name: string; content_type: string }>) {
    attachments[a.name] = {
      presigned_url: `${opts.urlBase ?? ""}/api/attachments/${row.id}/${encodeURIComponent(a.name)}`,
      mime_type: a.content_type,
    };
  }
  const feedback = conn.stmt(
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

/**
 * Token sums over the LLM runs below each run of a trace, by run id, in one pass over the
 * trace's LLM runs. Summed per run in SQL instead, each run scanned its whole subtree, so a
 * chain of runs cost its depth squared: 256 levels took hundreds of milliseconds per view.
 */
function subtreeUsage(conn: StoreConnection, traceId: string): Map<string, Usage> {
  const sums = new Map<string, Usage>();
  const add = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);
  const llmRuns = conn.stmt("SELECT dotted_order, prompt_tokens, completion_tokens, total_tokens FROM runs WHERE trace_id = ? AND run_type = 'llm'").all(traceId) as Array<
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
