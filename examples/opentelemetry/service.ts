// One service of the example, run with the instrumentation preloaded:
//
//   OTEL_SERVICE_NAME=llm-service SERVICE_ROLE=llm node --import tsx --import ./instrument.ts service.ts
//
// SERVICE_ROLE=frontend: POST /ask {question} calls DOWNSTREAM_URL/answer with fetch and returns
// its answer, with the request's OTel trace id and its server span's LangSmith run id.
// SERVICE_ROLE=llm: POST /answer {question} asks the model (OPENAI_BASE_URL, OPENAI_API_KEY,
// MODEL) through chatCompletion, a gen_ai span, and says which trace and run served it
// (`served_by`). Neither creates HTTP spans or handles traceparent itself: the instrumentation
// does. PORT (default 0, any free port); prints "<service> listening on <url>" once it listens.
import type { AddressInfo } from "node:net";
import { trace } from "@opentelemetry/api";
import express from "express";
import { chatCompletion } from "./genai.js";
import { langsmithRunId, serverSpan } from "./ids.js";

const role = process.env.SERVICE_ROLE;
const service = process.env.OTEL_SERVICE_NAME ?? role ?? "service";
const app = express();
app.use(express.json());

if (role === "frontend") {
  const downstream = process.env.DOWNSTREAM_URL;
  if (!downstream) throw new Error("DOWNSTREAM_URL is required for SERVICE_ROLE=frontend");
  app.post("/ask", async (req, res) => {
    const question = String(req.body?.question ?? "");
    const answer = await fetch(`${downstream}/answer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question }) });
    // The same request as an OTel trace id (what an APM shows) and a LangSmith run id.
    const span = serverSpan();
    res.status(answer.status).json({
      ...((await answer.json()) as object),
      trace_id: span?.spanContext().traceId,
      langsmith_run_id: span ? langsmithRunId(span.spanContext().spanId) : undefined,
    });
  });
} else if (role === "llm") {
  const tracer = trace.getTracer(service);
  app.post("/answer", async (req, res) => {
    const question = String(req.body?.question ?? "");
    const result = await chatCompletion(tracer, {
      baseURL: process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1",
      apiKey: process.env.OPENAI_API_KEY ?? "",
      model: process.env.MODEL ?? "gpt-4o-mini",
      messages: [
        { role: "system", content: "Answer in one short sentence." },
        { role: "user", content: question },
      ],
    });
    const span = serverSpan();
    res.json({
      answer: result.content,
      served_by: span ? { service, trace_id: span.spanContext().traceId, langsmith_run_id: langsmithRunId(span.spanContext().spanId) } : undefined,
    });
  });
} else {
  throw new Error(`SERVICE_ROLE must be frontend or llm, got ${String(role)}`);
}

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`${service} listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
