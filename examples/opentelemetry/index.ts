// The example's pieces for notebooks and tests: the gen_ai span helper, the OTel-to-LangSmith id
// mapping and the process launcher.
// (instrument.ts is not exported: it is preloaded with --import, never imported.)
export { chatCompletion } from "./genai.js";
export type { ChatMessage, ChatCompletionRequest, ChatCompletionResult } from "./genai.js";
export { langsmithRunId, serverSpan } from "./ids.js";
export { currentOtelRunId, setupLangSmithOtel, type LangSmithOtel } from "./langsmith-otel.js";
export { startService, EXAMPLE_DIR, INSTRUMENT_SCRIPT, OTEL_MODE_SERVICE_SCRIPT, SERVICE_SCRIPT } from "./harness/processes.js";
export type { ServiceOptions, RunningService } from "./harness/processes.js";
export { measureTracingCost, type CostSample } from "./harness/cost.js";
export { redactSecrets, REDACTED } from "./redact.js";
