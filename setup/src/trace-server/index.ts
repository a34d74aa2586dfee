export { createTraceServerApp, DEFAULT_MAX_BODY_BYTES, LOCAL_VERSION, type MountContext, type TraceServerAppOptions } from "./app.js";
export { HttpError, openBody, readBody, readJson, type OpenedBody } from "./body.js";
export { compileFilter, FilterError, type RunPredicate } from "./filter.js";
export { startTraceServer, type TraceServerHandle, type TraceServerOptions } from "./server.js";
export { DEFAULT_PROJECT_NAME, FeedbackConflictError, LOCAL_TENANT_ID, ProjectConflictError, TraceStore, type CreateProjectInput, type ProjectFilter, type RunReadOptions } from "./store.js";
export type {
  IngestSource,
  ProjectStats,
  Rejection,
  RejectionFilter,
  RejectionInput,
  RejectionRule,
  RunAttachment,
  RunPage,
  RunQuery,
  RunStatus,
  RunUpsert,
  StoredProject,
  StoredRun,
  TraceFilter,
  TraceSummary,
  UpsertResult,
} from "./types.js";
export { createV2Router, RUN_SELECT_FIELDS, type RunSelectField } from "./v2.js";
export { checkTreeRules, formatDottedOrder, parseDottedOrder, type DottedSegment, type RuleViolation } from "./validate.js";
export { decodeRun, type DecodeFailure } from "./wire.js";
