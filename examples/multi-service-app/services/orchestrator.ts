// Plans the answer, then calls retrieval and the LLM service. Only the gateway
// may call it (the caller token, internal.ts), and it continues a trace only
// from context the gateway signed (trust { signedBy }).
import { fileURLToPath } from "node:url";
import express from "express";
import { jsonErrors, langsmithTracing, traced, type Sampler } from "@tracing-patterns/kit";
import { GenerateResponseSchema, SearchResponseSchema, type RetrievedDocument } from "./contracts.js";
import { isDownstreamError, postJson } from "./downstream.js";
import { urlOf } from "./env.js";
import { contextKeyFromEnv, requireInternalCaller } from "./internal.js";
import { samplerFromEnv } from "./sampling.js";
import { serve } from "./serve.js";

export interface OrchestratorOptions {
  retrievalUrl: URL;
  llmUrl: URL;
  /** Documents to ask retrieval for. */
  topK: number;
  /** Shared with the other services (internal.ts). */
  contextKey: string;
  /** Follows the gateway's sampling decision (sampling.ts). Default: every request traced. */
  sampling?: Sampler;
}

export interface Plan {
  steps: Array<"retrieve" | "generate">;
  query: string;
  k: number;
}

const STOPWORDS = new Set(
  "a an and are as at be but by can do does for from has have how i in is it its me my of on or so that the this to was what when where which who why will with you your".split(" "),
);

/** Deterministic: the question's content words become the search query; none means nothing to look up. */
export function planFor(message: string, k: number): Plan {
  const terms = [...new Set(message.toLowerCase().match(/[a-z0-9][a-z0-9-]*/g) ?? [])].filter((t) => t.length > 1 && !STOPWORDS.has(t));
  return { steps: terms.length > 0 ? ["retrieve", "generate"] : ["generate"], query: terms.join(" "), k };
}

export function createOrchestratorApp(options: OrchestratorOptions): express.Express {
  const plan = traced(async (input: { message: string }) => planFor(input.message, options.topK), { name: "plan" });

  // Each answer is checked on arrival: documents retrieval got wrong fail this call, naming the
  // field, instead of failing somewhere in the llm service.
  const callRetrieval = traced(
    (input: { query: string; k: number }) => postJson("retrieval", new URL("/search", options.retrievalUrl), input, SearchResponseSchema, options.contextKey),
    { name: "call_retrieval" },
  );

  const callLlm = traced(
    (input: { message: string; documents: RetrievedDocument[] }) => postJson("llm", new URL("/generate", options.llmUrl), input, GenerateResponseSchema, options.contextKey),
    // The documents are already in the retrieval run; here they would only double the trace's size.
    { name: "call_llm", processInputs: (inputs) => ({ message: inputs.message, document_ids: inputs.documents.map((d) => d.metadata.id) }) },
  );

  const app = express();
  // Tracing first: a refused caller is traced too, as a new root (its context is not signed).
  app.use(langsmithTracing({ trust: { signedBy: options.contextKey }, sampling: options.sampling }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "orchestrator" });
  });
  app.use(requireInternalCaller(options.contextKey));
  app.use(express.json({ limit: "64kb" }));
  app.post("/answer", async (req, res) => {
    const message: unknown = req.body?.message;
    if (typeof message !== "string" || message.length === 0) {
      res.status(400).json({ error: 'expected {"message": "<string>"}' });
      return;
    }
    const steps = await plan({ message });
    const { documents } = steps.steps.includes("retrieve") ? await callRetrieval({ query: steps.query, k: steps.k }) : { documents: [] };
    const { answer, model } = await callLlm({ message, documents });
    res.json({ answer, sources: documents.map((d) => ({ id: d.metadata.id, title: d.metadata.title })), model });
  });
  // A DownstreamError becomes a 502 naming the service and what it answered, and the error of this request's run.
  app.use(jsonErrors({ service: "orchestrator", exposeFailures: true, upstreamFailure: isDownstreamError }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "orchestrator";
  const app = createOrchestratorApp({ retrievalUrl: urlOf("retrieval"), llmUrl: urlOf("llm"), topK: 3, contextKey: contextKeyFromEnv(), sampling: samplerFromEnv(contextKeyFromEnv()) });
  await serve(app, "orchestrator");
}
