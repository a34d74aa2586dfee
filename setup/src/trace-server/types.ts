/** A JSON object as it arrives from or is returned to clients. */
export type JsonObject = { [key: string]: unknown };

/** Run lifecycle as LangSmith reports it. */
export type RunStatus = "pending" | "success" | "error";

/** Where an ingested run came from; every source funnels into `TraceStore.upsertRuns`. */
export type IngestSource = "sdk" | "otel";

/**
 * One create (`post`) or update (`patch`) of a run, already decoded from its
 * wire format. Times are normalized ISO strings with microseconds
 * (`2025-01-02T03:04:05.123456Z`). Absent fields mean "not sent", so a merge
 * never erases what an earlier operation stored.
 */
export interface RunUpsert {
  op: "post" | "patch";
  id: string;
  trace_id?: string;
  dotted_order?: string;
  parent_run_id?: string;
  /** Project by name; created on first use. */
  session_name?: string;
  /** Project by id; must already exist. */
  session_id?: string;
  name?: string;
  run_type?: string;
  start_time?: string;
  end_time?: string;
  inputs?: JsonObject;
  outputs?: JsonObject;
  error?: string;
  extra?: JsonObject;
  events?: JsonObject[];
  tags?: string[];
  serialized?: JsonObject;
  reference_example_id?: string;
  /** Agent address (`lrn:agents/...`) the SDK sends instead of a project. */
  address?: string;
  attachments?: RunAttachment[];
  source?: IngestSource;
  /**
   * The JSON text each object field was parsed from, when the ingest path has
   * it (multipart parts): the store keeps it as is instead of serializing the
   * object again. It must parse to the same value as the field.
   */
  raw?: Partial<Record<RawJsonField, string>>;
}

export type RawJsonField = "inputs" | "outputs" | "events" | "extra" | "serialized";

export interface RunAttachment {
  name: string;
  contentType: string;
  data: Uint8Array;
}

/**
 * A stored run in the shape LangSmith's `GET /runs/{id}` returns, so
 * verification code reads the same fields locally and against LangSmith.
 * Times are ISO strings with microseconds and a `Z`.
 */
export interface StoredRun {
  id: string;
  name: string;
  run_type: string;
  start_time: string | null;
  end_time: string | null;
  status: RunStatus;
  trace_id: string;
  dotted_order: string;
  parent_run_id: string | null;
  /** Ancestors from the root down to the direct parent, as LangSmith orders them. */
  parent_run_ids: string[];
  child_run_ids: string[];
  session_id: string;
  inputs: JsonObject;
  outputs: JsonObject | null;
  error: string | null;
  extra: JsonObject;
  events: JsonObject[];
  tags: string[];
  serialized: JsonObject | null;
  reference_example_id: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  first_token_time: string | null;
  /** The conversation (LangSmith thread) the run belongs to: metadata `thread_id`, `session_id` or `conversation_id`. */
  thread_id: string | null;
  feedback_stats: JsonObject | null;
  app_path: string;
  attachments: Record<string, { presigned_url: string; mime_type: string }>;
  in_dataset: boolean;
  manifest_id: string | null;
  /** Not part of LangSmith's schema: the agent address, when the run named one. */
  address?: string;
}

/** A project (LangSmith calls it a tracer session). */
export interface StoredProject {
  id: string;
  name: string;
  tenant_id: string;
  description: string | null;
  extra: JsonObject | null;
  /** Creation time, ISO. */
  start_time: string;
  end_time: string | null;
  reference_dataset_id: string | null;
}

export interface ProjectStats {
  run_count: number;
  error_rate: number | null;
  last_run_start_time: string | null;
  total_tokens: number;
  prompt_tokens: number;
  completion_tokens: number;
  latency_p50: number | null;
  latency_p99: number | null;
}

/** Why a run (or part of a request) was not stored. Stable identifiers, documented in docs/local-stack.md. */
export type RejectionRule =
  | "invalid_json"
  | "invalid_field"
  | "invalid_uuid"
  | "missing_field"
  | "dotted_order_format"
  | "dotted_order_self"
  | "root_trace_id"
  | "root_single_segment"
  | "child_segments"
  | "child_trace_id"
  | "child_parent_id"
  | "cycle"
  | "parent_trace"
  | "parent_dotted_order"
  | "over_limit"
  | "conflict"
  | "unknown_project"
  | "unknown_part";

export interface Rejection {
  seq: number;
  received_at: string;
  route: string;
  op: "post" | "patch" | null;
  run_id: string | null;
  trace_id: string | null;
  rule: RejectionRule;
  message: string;
  /** The offending payload, JSON text truncated to a few KiB. */
  payload: string | null;
}

export interface RejectionInput {
  route: string;
  op?: "post" | "patch" | null;
  run_id?: string | null;
  trace_id?: string | null;
  rule: RejectionRule;
  message: string;
  payload?: unknown;
}

export interface RejectionFilter {
  traceId?: string;
  runId?: string;
  rule?: RejectionRule;
  /** Only rejections with `seq` greater than this. */
  afterSeq?: number;
  limit?: number;
}

/** The outcome of one ingest request. */
export interface UpsertResult {
  accepted: string[];
  rejected: Array<Omit<Rejection, "seq" | "received_at" | "route" | "payload">>;
  /** Rejections past the per-request limit: counted in the last entry of `rejected`, not recorded. */
  unrecorded?: number;
}

export interface RunQuery {
  projectIds?: string[];
  traceId?: string;
  parentRunId?: string;
  runIds?: string[];
  isRoot?: boolean;
  error?: boolean;
  runType?: string;
  referenceExampleIds?: string[];
  /** Runs that started at or after this ISO time. */
  startTime?: string;
  /** Runs that started at or before this ISO time. */
  maxStartTime?: string;
  /** LangSmith filter expression, e.g. `and(eq(run_type, "llm"), has(tags, "x"))`. */
  filter?: string;
  /** Filter evaluated on the root run of each candidate's trace. */
  traceFilter?: string;
  /** Filter that some run of the candidate's trace must match. */
  treeFilter?: string;
  /** Case-insensitive substring searched in name, inputs, outputs and error. */
  query?: string;
  order?: "asc" | "desc";
  /** Page size, at most 100. */
  limit?: number;
  cursor?: string;
}

export interface RunPage {
  runs: StoredRun[];
  nextCursor: string | null;
  /** A scan budget stopped the scan before the page filled; `nextCursor` resumes it. */
  stopped?: boolean;
}

export interface TraceFilter {
  projectId?: string;
  projectName?: string;
  /** Traces touching this service (`extra.metadata.LANGSMITH_SERVICE`). */
  service?: string;
  /** Traces that started at or after this ISO time. */
  since?: string;
  /** Traces whose summary `status` is this. */
  status?: RunStatus;
  /**
   * Traces whose root run's name contains this text, ignoring case as
   * JavaScript's `toLowerCase` does (Unicode, not only ASCII). A trace
   * without a stored root run matches only the empty string.
   */
  rootNameContains?: string;
  limit?: number;
  offset?: number;
}

/** One line of a trace list: what a viewer shows before opening a trace. */
export interface TraceSummary {
  trace_id: string;
  root_run_id: string | null;
  root_name: string | null;
  project_ids: string[];
  project_names: string[];
  /** Distinct `extra.metadata.LANGSMITH_SERVICE` values, sorted. */
  services: string[];
  run_count: number;
  start_time: string | null;
  end_time: string | null;
  error_count: number;
  /** Runs whose parent run is not stored (lost, rejected, or not sent yet). */
  orphan_count: number;
  rejected_count: number;
  status: RunStatus;
}
