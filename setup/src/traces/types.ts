/**
 * The fields of a run these utilities use. The SDK's `Run` (from readTrace, runFromV2, or the
 * deprecated listRuns / readRun) is assignable to it, and so are hand-built objects in tests.
 */
export interface TraceRun {
  id: string;
  name: string;
  run_type: string;
  trace_id?: string;
  parent_run_id?: string | null;
  dotted_order?: string;
  /** ISO string or epoch milliseconds. */
  start_time?: number | string;
  end_time?: number | string | null;
  error?: string | null;
  status?: string;
  extra?: Record<string, unknown> | null;
}
