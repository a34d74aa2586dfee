// The example's two services in LangSmith's OTel mode instead of OpenTelemetry instrumentation:
//
//   LANGSMITH_TRACING=true LANGSMITH_TRACING_MODE=otel SERVICE_ROLE=llm node --import tsx otel-mode-service.ts
//
// SERVICE_ROLE=frontend: POST /ask runs traceable "ask", which calls DOWNSTREAM_URL/answer with
// `traceparent` injected. SERVICE_ROLE=llm: POST /answer continues the extracted context and runs
// traceable "answer" > "call_model" (an llm run: OPENAI_BASE_URL, OPENAI_API_KEY, MODEL).
// LINK_REMOTE_PARENT=1 turns on setupLangSmithOtel's linkRemoteParent. Both answer with the run
// ids they traced; prints "<service> listening on <url>" once it listens.
import type { AddressInfo } from "node:net";
import { context, propagation } from "@opentelemetry/api";
import express from "express";
import { traceable } from "langsmith/traceable";
import { currentOtelRunId, setupLangSmithOtel } from "./langsmith-otel.js";

const otel = setupLangSmithOtel({ linkRemoteParent: process.env.LINK_REMOTE_PARENT === "1" });
const role = process.env.SERVICE_ROLE;
const service = process.env.OTEL_SERVICE_NAME ?? role ?? "service";
const app = express();
app.use(express.json());

if (role === "frontend") {
  const downstream = process.env.DOWNSTREAM_URL;
  if (!downstream) throw new Error("DOWNSTREAM_URL is required for SERVICE_ROLE=frontend");
  const ask = traceable(
    async (question: string) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      propagation.inject(context.active(), headers);
      const res = await fetch(`${downstream}/answer`, { method: "POST", headers, body: JSON.stringify({ question }) });
      return { ...((await res.json()) as { answer: string; served_by: unknown }), langsmith_run_id: currentOtelRunId() };
    },
    { name: "ask" },
  );
  app.post("/ask", async (req, res) => {
    const body = await ask(String(req.body?.question ?? ""));
    await otel.flush();
    res.json(body);
  });
} else if (role === "llm") {
  const callModel = traceable(
    async (messages: Array<{ role: string; content: string }>) => {
      const model = process.env.MODEL ?? "gpt-4o-mini";
      const res = await fetch(`${(process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1").replace(/\/$/, "")}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${process.env.OPENAI_API_KEY ?? ""}` },
        body: JSON.stringify({ model, messages }),
      });
      const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }>; usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
      const usage = body.usage;
      return {
        content: body.choices?.[0]?.message?.content ?? "",
        ...(usage ? { usage_metadata: { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens, total_tokens: usage.total_tokens } } : {}),
      };
    },
    { name: "call_model", run_type: "llm" },
  );
  const answer = traceable(
    async (question: string) => {
      const reply = await callModel([{ role: "user", content: question }]);
      return { answer: reply.content, served_by: { service, langsmith_run_id: currentOtelRunId() } };
    },
    { name: "answer" },
  );
  app.post("/answer", async (req, res) => {
    const parent = propagation.extract(context.active(), req.headers);
    const body = await context.with(parent, () => answer(String(req.body?.question ?? "")));
    await otel.flush();
    res.json(body);
  });
} else {
  throw new Error(`SERVICE_ROLE must be frontend or llm, got ${String(role)}`);
}

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`${service} listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    server.close();
    void otel.shutdown().finally(() => process.exit(0));
  });
}
