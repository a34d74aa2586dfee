// OpenTelemetry for a Node service, loaded before the service's own code:
//
//   node --import tsx --import ./instrument.ts service.ts      (or --import ./instrument.js when compiled)
//
// Everything comes from the standard OpenTelemetry variables, so the same file sends to LangSmith,
// a Collector or the local trace server:
//   OTEL_SERVICE_NAME                    the service.name of every span (the service label in LangSmith's run metadata)
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   e.g. https://api.smith.langchain.com/otel/v1/traces
//   OTEL_EXPORTER_OTLP_HEADERS           e.g. x-api-key=<key>,Langsmith-Project=<project>
//   OTEL_BSP_SCHEDULE_DELAY              how long spans wait to be batched (ms, default 5000)
//   OTEL_NODE_DISABLED_INSTRUMENTATIONS  comma-separated: http, express, undici
//   SECOND_OTLP_TRACES_ENDPOINT          optional second backend (an APM, a Collector): the same spans,
//   SECOND_OTLP_HEADERS                  through their own exporter and batch queue, with these headers
//                                        ("name=value,..."). The SDK adds OTEL_EXPORTER_OTLP_HEADERS
//                                        to every exporter's headers, so a secret kept there goes to
//                                        both backends: give the backend with the secret this slot.
// Spans go out over OTLP/HTTP protobuf in batches; W3C `traceparent` and `baggage` are read from
// and written to HTTP requests. The ESM loader hook must be registered before express is
// imported: that is why this is a separate file given to --import, not an import in the service.
import { register } from "node:module";
import { registerInstrumentations, type Instrumentation } from "@opentelemetry/instrumentation";
import { ExpressInstrumentation } from "@opentelemetry/instrumentation-express";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);

// The first exporter reads its URL and headers from the OTEL_EXPORTER_OTLP_* variables.
const exporters = [new OTLPTraceExporter()];
const second = process.env.SECOND_OTLP_TRACES_ENDPOINT;
if (second) exporters.push(new OTLPTraceExporter({ url: second, headers: parseHeaders(process.env.SECOND_OTLP_HEADERS ?? "") }));
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME || "unknown_service" }),
  // One processor per backend: a slow or failing backend fills only its own queue.
  spanProcessors: exporters.map((exporter) => new BatchSpanProcessor(exporter)),
});
// The default propagators: W3C trace context and baggage.
provider.register();

const disabled = new Set((process.env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? "").split(",").map((s) => s.trim()));
const instrumentations: Record<string, () => Instrumentation> = {
  http: () => new HttpInstrumentation(),
  express: () => new ExpressInstrumentation(),
  // Node's global fetch is undici, which the http instrumentation does not see: without this,
  // calls made with fetch carry no traceparent and the next service starts a trace of its own.
  undici: () => new UndiciInstrumentation(),
};
registerInstrumentations({ instrumentations: Object.entries(instrumentations).filter(([name]) => !disabled.has(name)).map(([, make]) => make()) });

// Spans still batched when the process is asked to stop are sent first.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void provider.shutdown().finally(() => process.exit(0));
  });
}

/** "a=1,b=2" (the OTEL_EXPORTER_OTLP_HEADERS format, values URL-encoded) as an object. */
function parseHeaders(list: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of list.split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) continue;
    const value = pair.slice(at + 1).trim();
    try {
      headers[pair.slice(0, at).trim()] = decodeURIComponent(value);
    } catch {
      headers[pair.slice(0, at).trim()] = value;
    }
  }
  return headers;
}
