// The kit's one entry point (notebooks load it through tslab, which resolves no
// subpath exports). Each file says what it does and how to use it in its first lines.

// Receiving and sending trace context, for any transport.
export {
  DEFAULT_LIMITS,
  parseTraceHeader,
  sanitizeBaggage,
  type BaggageAdjustment,
  type BaggagePolicy,
  type BaggageResult,
  type HeaderLimits,
  type InboundRejection,
  type TraceHeader,
  type TraceHeaderResult,
} from "./headers.js";
export {
  BAGGAGE_HEADER,
  SAMPLING_HEADER,
  TRACE_HEADER,
  continueInbound,
  currentRun,
  describeError,
  inboundMetadata,
  injectTraceHeaders,
  onceWarner,
  parentFromValidatedContext,
  readInbound,
  serviceProject,
  startRun,
  tracedFetch,
  tracingEnabledFromEnv,
  type InboundContext,
  type InboundHeaders,
  type InboundOptions,
  type OutboundOptions,
  type RunConfig,
  type TracingLogger,
  type TrustPolicy,
  type Warn,
} from "./propagator.js";
export {
  DEFAULT_MAX_AGE_SECONDS,
  MIN_KEY_BYTES,
  SIGNATURE_CAUSES,
  SIGNATURE_HEADER,
  assertSigningKey,
  signContext,
  verifyContext,
  type SignatureRejection,
  type SignedTrust,
} from "./signing.js";

// One decision per request, carried to every service: keep, drop (pass-through) or tail.
export {
  Sampler,
  createSampler,
  droppedRun,
  parseDecision,
  traced,
  tracingOffHere,
  type SamplingDecision,
  type SamplingEvent,
  type SamplingListener,
  type SamplingOptions,
  type RequestOutcome,
  type SamplingStats,
} from "./sampling.js";
export {
  DEFAULT_TAIL_LIMITS,
  KEEP_HEADER,
  PARTICIPANTS_HEADER,
  TAIL_HEADER,
  TAIL_ROUTE,
  TailBuffer,
  TailClient,
  tailClients,
  type KeepReason,
  type TailEvent,
  type TailLimits,
  type TailStats,
} from "./tail.js";

// One run per HTTP request: the shared part, then one adapter per framework.
export {
  endServerRun,
  noticeAllowed,
  serverTracing,
  settleTail,
  startServerRun,
  trustFor,
  type HttpRequestInfo,
  type HttpTracingOptions,
  type ServerRun,
  type ServerRunEnd,
  type ServerTracing,
} from "./server-run.js";
export { langsmithTracing, getRequestRun, type LangSmithTracingOptions } from "./express.js";
export { answerTailNotice, nodeTracing, traceNodeRequest, tracedListener, type NodeRequestHooks, type NodeTracing, type NodeTracingOptions } from "./node-http.js";
export { langsmithHono, type HonoTracingOptions } from "./hono.js";
export { jsonErrors, type JsonErrorsOptions } from "./errors.js";

// Not losing the last runs: background work, flushing, shutdown, replay.
export { BackgroundTasks } from "./background.js";
export { existingSharedClients, flushTraces, type FlushableClient, type FlushOptions, type FlushResult, type PendingWork } from "./flush.js";
export {
  defaultFlushReserveMs,
  describeShutdown,
  drainAndFlush,
  installShutdown,
  shutdownBudget,
  trackConnections,
  type Drainable,
  type InstallShutdownOptions,
  type InstalledShutdown,
  type ShutdownBudget,
  type ShutdownOptions,
  type ShutdownResult,
  type TrackedConnections,
} from "./shutdown.js";
export { replayFailedTraces, type ReplayFailure, type ReplayOptions, type ReplayResult } from "./replay.js";
