// Where an OpenTelemetry span lands in LangSmith, for linking the two: LangSmith's OTLP ingest
// makes a span's 8-byte id the run id `00000000-0000-0000-XXXX-XXXXXXXXXXXX` (what the langsmith
// SDK's getUuidFromOtelSpanId computes), and a root span's run id is also its trace's id.
//
//   res.setHeader("x-langsmith-run-id", langsmithRunId(span.spanContext().spanId));
import { context, type Span } from "@opentelemetry/api";
import { getRPCMetadata } from "@opentelemetry/core";

/** The LangSmith run id of an OpenTelemetry span id (16 hex digits). */
export function langsmithRunId(spanIdHex: string): string {
  const hex = spanIdHex.padStart(16, "0");
  return `00000000-0000-0000-${hex.slice(0, 4)}-${hex.slice(4)}`;
}

/** The HTTP server span of the request being handled (the HTTP instrumentation keeps it in the context). */
export function serverSpan(): Span | undefined {
  return getRPCMetadata(context.active())?.span;
}
