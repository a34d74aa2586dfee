/**
 * The rows the trace store keeps in SQLite, as TypeScript reads them, and the few helpers every
 * part of the store shares to read them. No SQLite here: the merge rules (merge.ts) use these
 * types without a database.
 *
 *   const row = db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
 *   const extra = parseJson<JsonObject>(row.extra);
 */
import type { JsonObject } from "../types.js";

/** LangSmith scopes everything to a tenant; the local server has exactly one. */
export const LOCAL_TENANT_ID = "00000000-0000-4000-8000-000000000000";
export const DEFAULT_PROJECT_NAME = "default";

export interface RunRow {
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

export interface ProjectRow {
  id: string;
  name: string;
  description: string | null;
  extra: string | null;
  start_time: string;
  end_time: string | null;
  reference_dataset_id: string | null;
}

export interface RejectionRow {
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
export const RUN_COLUMNS = [
  "id", "trace_id", "dotted_order", "parent_run_id", "project_id", "project_explicit", "name", "run_type", "start_time", "end_time",
  "error", "inputs", "outputs", "extra", "events", "tags", "serialized", "reference_example_id", "address", "service",
  "prompt_tokens", "completion_tokens", "total_tokens", "first_token_time", "has_post", "has_patch", "source",
  "received_at", "updated_at",
] as const satisfies ReadonlyArray<keyof RunRow>;

/** Token counts of a run, or of the LLM runs below it. */
export type Usage = { prompt: number | null; completion: number | null; total: number | null };

export const parseJson = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export function asObject(v: unknown): JsonObject | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;
}
