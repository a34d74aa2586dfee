// Writes the answer with a real ChatOpenAI, configured from the environment
// (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL; the launcher points them at
// the local model endpoint unless OPENAI_API_KEY is set). The ChatOpenAI
// run nests under generate_answer through LangChain's callbacks, which find
// the current run the middleware and traceable keep in AsyncLocalStorage.
import { fileURLToPath } from "node:url";
import express from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import { currentRun, jsonErrors, langsmithTracing, traced, type Sampler } from "@tracing-patterns/kit";
import { GenerateRequestSchema, InvalidRequest, describeIssues, type RetrievedDocument } from "./contracts.js";
import { DownstreamError, isDownstreamError } from "./downstream.js";
import { contextKeyFromEnv, requireInternalCaller } from "./internal.js";
import { samplerFromEnv } from "./sampling.js";
import { serve } from "./serve.js";

const SYSTEM_PROMPT =
  "You answer questions about distributed tracing in two sentences. Use only the numbered context; cite it as [1], [2]. If the context is empty, say what you would need to know.";

export function promptFor(message: string, documents: readonly RetrievedDocument[]): Array<{ role: "system" | "user"; content: string }> {
  const context = documents.map((d, i) => `[${i + 1}] ${d.metadata.title}: ${d.page_content}`).join("\n");
  return [
    { role: "system", content: `${SYSTEM_PROMPT}\n\nContext:\n${context || "(none)"}` },
    { role: "user", content: message },
  ];
}

/** `contextKey`: shared with the orchestrator (internal.ts). `sampling`: follows the gateway's decision (sampling.ts). */
export function createLlmApp(model: BaseChatModel, modelName: string, contextKey: string, sampling?: Sampler): express.Express {
  const generateAnswer = traced(
    async (input: { message: string; documents: RetrievedDocument[] }) => {
      // A LangChain run nested in a traceable gets the traceable's parent but not
      // its metadata (langsmith 0.12), so the tenant from baggage is passed on by hand.
      const tenant = currentRun()?.metadata?.tenant;
      const reply = await model.invoke(promptFor(input.message, input.documents), tenant === undefined ? {} : { metadata: { tenant } });
      return { answer: reply.text, model: modelName };
    },
    { name: "generate_answer" },
  );

  const app = express();
  app.use(langsmithTracing({ trust: { signedBy: contextKey }, sampling }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "llm", model: modelName });
  });
  app.use(requireInternalCaller(contextKey));
  app.use(express.json({ limit: "64kb" }));
  app.post("/generate", async (req, res) => {
    const input = GenerateRequestSchema.safeParse(req.body);
    // Thrown rather than answered, so that this request's run ends with the reason: only our
    // orchestrator calls this service, and documents it should not have sent are a bug to find.
    if (!input.success) throw new InvalidRequest(`invalid request body: ${describeIssues(input.error)}`);
    let answer: { answer: string; model: string };
    try {
      answer = await generateAnswer(input.data);
    } catch (err) {
      // After ChatOpenAI's own retries; generate_answer and the ChatOpenAI run carry the details.
      throw new DownstreamError("model", undefined, `model call failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    res.json(answer);
  });
  app.use(jsonErrors({ service: "llm", exposeFailures: true, upstreamFailure: isDownstreamError }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "llm";
  const modelName = process.env.OPENAI_MODEL || "gpt-4o-mini";
  // ChatOpenAI reads OPENAI_API_KEY; the OpenAI client it wraps reads OPENAI_BASE_URL.
  const app = createLlmApp(new ChatOpenAI({ model: modelName, maxRetries: 2 }), modelName, contextKeyFromEnv(), samplerFromEnv(contextKeyFromEnv()));
  // serve()'s flush also waits for LangChain's background callbacks, which hand the ChatOpenAI runs to the SDK.
  await serve(app, "llm");
}
