// Redaction at export for LangSmith's OTel mode: a `transformExportedSpan` that masks secrets in
// every string attribute (the run's inputs and outputs travel as `gen_ai.prompt` and
// `gen_ai.completion`, metadata as `langsmith.metadata.*`) before the span leaves the process.
//
//   initializeOTEL({ exporterConfig: { transformExportedSpan: redactSecrets([/sk-[\w-]{8,}/g]) } });
//
// It runs in the exporter, so it covers what that exporter sends and nothing else: runs sent by a
// native-mode Client (run batches) need the Client's own hideInputs/hideOutputs. Span names and
// event attributes are left as they are; keep secrets out of names.
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

export const REDACTED = "[redacted]";

/** A transformExportedSpan that replaces every match of the patterns (use the g flag) with REDACTED. */
export function redactSecrets(patterns: readonly RegExp[]): (span: ReadableSpan) => ReadableSpan {
  const mask = (text: string): string => patterns.reduce((out, pattern) => out.replace(pattern, REDACTED), text);
  return (span) => {
    // The exporter hands over the span it is about to send; its attributes object is changed in place.
    const attributes = span.attributes as Record<string, unknown>;
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value === "string") attributes[key] = mask(value);
      else if (Array.isArray(value)) attributes[key] = value.map((item: unknown) => (typeof item === "string" ? mask(item) : item));
    }
    return span;
  };
}
