// The trace doctor: what is wrong with a trace, why, and the fix (docs/troubleshooting.md).
export { diagnoseTrace } from "./diagnose.js";
export { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_SKEW_MS, DEFAULT_STALE_MS } from "./context.js";
export { formatDiagnosis, formatProjectHealth } from "./format.js";
export { parseSince, scanProject, type ProjectHealth, type RequestHealth, type ScanOptions, type ServiceHealth } from "./scan.js";
export { DoctorReadError, doctorClient, listProjectNames, queryTraceRuns, readDoctorContext, readDoctorInput, readRejections, readRelated, type DoctorReadOptions } from "./source.js";
export { readDoctorBatch } from "./batch.js";
export { DoctorUsageError, parseTarget, resolveTraceId, type DoctorTarget } from "./target.js";
export type {
  DiagnoseInput,
  DoctorOptions,
  DoctorRejection,
  DoctorRun,
  Finding,
  FindingKind,
  RelatedTrace,
  RunRef,
  Severity,
  TraceDiagnosis,
} from "./types.js";
