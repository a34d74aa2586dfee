/**
 * The notebook harness: what cells need around a pattern (clients, concurrency drivers, judges,
 * timing) so that each cell shows the pattern and checks its trace with one named call.
 * Notebooks import it from the package: `import { expectTrace, clientCall } from "@tracing-patterns/setup"`.
 * Described in docs/setup-utilities.md ("Notebook helpers").
 */
export { expectTrace, expectBrokenTrace, expectEqual, expectMatch, expectThrows, runNamed, metadataOf, type TraceCheck, type CheckedTrace } from "./expect.js";
export { clientCall, postJson, traceRoot, withTracingDisabled, collectText, type ClientCallOptions, type ClientCallResult, type PostJsonResult } from "./calls.js";
export {
  concurrentRequests,
  postConcurrently,
  readTraces,
  judgeRequests,
  expectIsolated,
  expectLeaks,
  requestIds,
  type IsolationResult,
  type RequestChecks,
  type Verdict,
} from "./load.js";
export { percentile, median, round, durationMs, timePerCall, compareLatency, type LatencyComparison } from "./timing.js";
export { countTraces, projectNamesOf, type CountTracesOptions } from "./projects.js";
export { expectDiagnosis, type DiagnosisCheck } from "./doctor.js";
export { startOtlpReceiver, type OtlpReceiver, type RecordedRequest } from "./otlp-receiver.js";
export {
  sendRequests,
  sdkSamples,
  predictShapes,
  traceShapes,
  storedShapes,
  tallyShapes,
  shapeMismatches,
  startBackendDoor,
  traceCompleteness,
  findSecrets,
  type BackendDoor,
  type SecretFound,
  type RequestOutcome,
  type TraceShape,
} from "./production.js";
export type { FindingAllowance } from "./healthy.js";
