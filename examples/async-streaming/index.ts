// The copyable pieces of the async and streaming patterns, for notebooks and services.
export { injectTraceContext, extractTraceContext, continueTrace, TRACE_KEY, BAGGAGE_KEY } from "./queue-context.js";
export type { TraceCarrier, CarrierRejection, ExtractedContext, ExtractOptions, ContinueTraceOptions } from "./queue-context.js";
export { addTracedJob, tracedProcessor } from "./jobs.js";
export type { TracedJobData, TracedProcessorOptions } from "./jobs.js";
export { sseChatHandler, chatStreamClient, streamText, joinTokens, sseEvent, StreamCancelled } from "./sse.js";
export type { StreamedText, StreamTextInput, SseChatOptions, ChatStreamClientOptions } from "./sse.js";
export { BackgroundTasks, flushTracing } from "./background.js";
export { startRedisServer, pingRedis } from "./redis.js";
export type { RedisServer, RedisServerOptions } from "./redis.js";
export { startProcess, EXAMPLE_DIR, OUTPUT_LIMIT, SERVER_SCRIPT, WORKER_SCRIPT } from "./processes.js";
export type { StartedProcess, StartProcessOptions } from "./processes.js";
export { checkIsolation, formatIsolation } from "./isolation.js";
export type { IsolationReport, RunLike } from "./isolation.js";
export { currentRun } from "@tracing-patterns/example-express-middleware";
export { pLimit, type Limiter } from "./limit.js";
