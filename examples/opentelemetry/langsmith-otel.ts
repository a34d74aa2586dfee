// LangSmith's own OpenTelemetry mode for a service, with W3C propagation: `traceable` runs are sent
// as OTLP spans (no native /runs batches), and `traceparent` links them across services.
//
//   LANGSMITH_TRACING=true LANGSMITH_TRACING_MODE=otel (plus LANGSMITH_ENDPOINT, _API_KEY, _PROJECT)
//   const otel = setupLangSmithOtel({ linkRemoteParent: true });   // before the first traceable call
//   ... context.with(propagation.extract(context.active(), req.headers), () => handler(req)) ...
//   await otel.flush();
//
// initializeOTEL registers no propagator, so this registers the W3C trace-context one. Its span
// processor also marks the first traceable span of every process `langsmith.is_root`, even when
// that span continues a remote parent: each service then starts its own LangSmith trace.
// `linkRemoteParent` exports such a span as a child of the remote parent instead
// (`langsmith.span.parent_id`), which is right only when that parent is itself exported: a
// traceable span of the caller, not an HTTP span from an instrumentation (OTel mode exports only
// traceable spans, and LangSmith drops a span whose parent never arrives).
import { propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { initializeOTEL } from "langsmith/experimental/otel/setup";
import { RunTree } from "langsmith/run_trees";
import { langsmithRunId } from "./ids.js";

export interface LangSmithOtel {
  /** Everything traced so far, exported: the SDK ends its spans as its run queue drains. */
  flush(): Promise<void>;
  /** flush, then stop exporting. */
  shutdown(): Promise<void>;
}

export function setupLangSmithOtel(options: { linkRemoteParent?: boolean } = {}): LangSmithOtel {
  const { DEFAULT_LANGSMITH_SPAN_PROCESSOR: processor } = initializeOTEL({
    exporterConfig: {
      transformExportedSpan: (span) => {
        const parent = span.parentSpanContext;
        if (options.linkRemoteParent && span.attributes["langsmith.is_root"] === true && parent?.isRemote) {
          delete span.attributes["langsmith.is_root"];
          span.attributes["langsmith.span.parent_id"] = langsmithRunId(parent.spanId);
        }
        return span;
      },
    },
  });
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const flush = async (): Promise<void> => {
    await RunTree.getSharedClient().awaitPendingTraceBatches();
    await processor.forceFlush();
  };
  return { flush, shutdown: () => processor.shutdown() };
}

/**
 * The LangSmith id of the current traceable run in OTel mode: its span's id as LangSmith maps it.
 * (getCurrentRunTree().id can differ: the SDK replaces it with the span's only for some roots.)
 */
export function currentOtelRunId(): string | undefined {
  const span = trace.getActiveSpan();
  return span ? langsmithRunId(span.spanContext().spanId) : undefined;
}
