/**
 * The trace doctor's data model: the runs and rejections it reads, the findings it reports and the
 * options that tune its checks. diagnose.ts fills these from a trace, source.ts reads them through
 * the SDK, format.ts prints them, and the CLI (setup/cli/doctor.ts) and the viewer show them.
 */
import type { TraceReport } from "../traces/verify.js";
import type { TraceRun } from "../traces/types.js";

/** A run as the doctor reads it: the SDK's `Run` (from readTrace) and the store's runs both fit. */
export interface DoctorRun extends TraceRun {
  /** The project's id (v1 name: session_id). */
  session_id?: string;
  inputs?: unknown;
  outputs?: unknown;
  events?: unknown;
}

/** A run the trace server refused, as `GET /api/rejections` reports it. */
export interface DoctorRejection {
  seq?: number;
  received_at?: string;
  op: "post" | "patch" | null;
  run_id: string | null;
  trace_id: string | null;
  rule: string;
  message: string;
  payload?: string | null;
}

/** Another trace near this one in time (or named by it), for split and lost-context checks. */
export interface RelatedTrace {
  traceId: string;
  /** Its runs; just the root when only the roots of the time window were read. */
  runs: DoctorRun[];
}

export type FindingKind =
  | "orphan"
  | "split"
  | "unended"
  | "rejected"
  | "project-mismatch"
  | "clock-skew"
  | "flat"
  | "duplicate"
  | "oversized"
  | "in-progress"
  | "no-runs";

/** "problem": the trace is broken (exit code 1). "note": worth knowing, not a fault. */
export type Severity = "problem" | "note";

export interface RunRef {
  id: string;
  name: string;
  service?: string;
  project?: string;
  /** The trace it belongs to, when not the one diagnosed. */
  trace?: string;
}

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** What is wrong, in one sentence naming runs and services. */
  title: string;
  /** The likely cause, from the evidence in the trace where there is some. */
  cause: string;
  fix: string;
  runs: RunRef[];
  services: string[];
  /** Other traces involved (the other half of a split, the caller a run was lost from). */
  relatedTraces: string[];
  /** Machine-readable detail: open for how long, by how much, how many bytes. */
  evidence: Record<string, string | number | boolean>;
}

export interface DoctorOptions {
  /** A child may start this much before its parent before it counts as clock skew. Default 50 ms (verifyTrace's). */
  skewMs?: number;
  /** A run open this long is reported as never ended even while its parent is open. Default 60 s. */
  staleMs?: number;
  /** Inputs, outputs or events over this many bytes (as JSON) are oversized. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** The project the trace should be in; runs elsewhere are a project mismatch. */
  expectProject?: string;
  /** "Now", for how long runs have been open. Default Date.now(). */
  now?: number;
}

export interface DiagnoseInput {
  traceId: string;
  runs: readonly DoctorRun[];
  /** The trace server's rejections for this trace; undefined when the backend does not expose them (LangSmith). */
  rejections?: readonly DoctorRejection[];
  related?: readonly RelatedTrace[];
  /** Project id to name. */
  projectNames?: ReadonlyMap<string, string>;
}

export interface TraceDiagnosis {
  traceId: string;
  /** Where it was read from: the endpoint URL. */
  source?: string;
  runCount: number;
  services: string[];
  projects: string[];
  /** verifyTrace's report of the run set: completeness and propagation as the README defines them. */
  report: TraceReport;
  findings: Finding[];
  /** True when no finding is a problem. */
  healthy: boolean;
}
