// The package entry that notebooks, tests and start.ts import
// (@tracing-patterns/example-async-streaming; tslab resolves one entry only).

// The copyable patterns, one file each at the top of this folder.
export { injectTraceContext, extractTraceContext, continueTrace, TRACE_KEY, BAGGAGE_KEY } from "./queue-context.js";
export type { TraceCarrier, CarrierRejection, ExtractedContext, ExtractOptions, ContinueTraceOptions } from "./queue-context.js";
export { addTracedJob, tracedProcessor } from "./jobs.js";
export type { TracedJobData, TracedProcessorOptions } from "./jobs.js";
export { sseChatHandler, chatStreamClient, streamText, joinTokens, sseEvent, StreamCancelled } from "./sse.js";
export type { StreamedText, StreamTextInput, SseChatOptions, ChatStreamClientOptions } from "./sse.js";
export { pLimit, type Limiter } from "./limit.js";
// From the copyable kit (examples/kit), where they live now; re-exported for the notebooks.
export { BackgroundTasks, currentRun } from "@tracing-patterns/kit";

// The harness: running this example's processes, a redis-server per use, and the
// isolation check the tests and notebook 03 apply to traces. Not part of what you copy.
export { startProcess, EXAMPLE_DIR, OUTPUT_LIMIT, SERVER_SCRIPT, WORKER_SCRIPT } from "./harness/processes.js";
export type { StartedProcess, StartProcessOptions } from "./harness/processes.js";
export { startRedisServer, pingRedis } from "./harness/redis.js";
export type { RedisServer, RedisServerOptions } from "./harness/redis.js";
export { checkIsolation, formatIsolation } from "./harness/isolation.js";
export type { IsolationReport, RunLike } from "./harness/isolation.js";
