// Searches a small in-memory corpus with deterministic keyword scoring. Its
// search run has run_type "retriever" and returns `{ documents }` with
// `page_content` and `metadata`, the shape LangSmith renders as documents.
import { fileURLToPath } from "node:url";
import express from "express";
import { jsonErrors, langsmithTracing, traced, type Sampler } from "@tracing-patterns/kit";
import type { RetrievedDocument } from "./contracts.js";
import { contextKeyFromEnv, requireInternalCaller } from "./internal.js";
import { samplerFromEnv } from "./sampling.js";
import { serve } from "./serve.js";

interface CorpusEntry {
  id: string;
  title: string;
  text: string;
}

export const CORPUS: readonly CorpusEntry[] = [
  {
    id: "doc-trace-header",
    title: "The langsmith-trace header",
    text: "The langsmith-trace header carries the dotted order of the calling run. The receiving service makes its run a child of that run, so both services write into one trace.",
  },
  {
    id: "doc-baggage",
    title: "Baggage",
    text: "The baggage header carries metadata, tags and the project name of the calling run. Metadata such as a tenant travels with the request to every service.",
  },
  {
    id: "doc-edge-trust",
    title: "Trusting headers at the edge",
    text: "A public gateway must not continue a trace from headers sent by the internet. It starts a new trace and records the claimed parent as metadata; internal services continue the gateway's trace.",
  },
  {
    id: "doc-rate-limit",
    title: "Rate limiting with a token bucket",
    text: "A token bucket allows a burst of requests and refills at a steady rate. A request that finds the bucket empty gets 429 with a retry-after header.",
  },
  {
    id: "doc-flush",
    title: "Flushing runs before exit",
    text: "The SDK sends runs in background batches. A service that exits must await pending trace batches first, or the last runs of a trace are lost and the tree has holes.",
  },
  {
    id: "doc-latency",
    title: "Where latency hides",
    text: "Authentication, rate limiting, validation and network hops add latency before the model is called. Tracing the gateway shows that edge latency in the same trace as the LLM call.",
  },
  {
    id: "doc-orphans",
    title: "Orphan runs",
    text: "An orphan is a run whose parent never arrived. Proxies that drop headers split one request into separate traces; a lost parent leaves orphans.",
  },
  {
    id: "doc-projects",
    title: "Projects per service",
    text: "Each service may write to its own project. The runs still share a trace id, so the trace can be read across projects.",
  },
];

function tokens(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9][a-z0-9-]*/g) ?? [];
}

/** Title matches count double; ties go to the lower id so results never depend on timing. */
export function search(query: string, k: number): RetrievedDocument[] {
  const terms = new Set(tokens(query));
  return CORPUS.map((doc) => {
    const title = tokens(doc.title);
    const text = tokens(doc.text);
    let score = 0;
    for (const term of terms) score += 2 * title.filter((t) => t === term).length + text.filter((t) => t === term).length;
    return { doc, score };
  })
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || a.doc.id.localeCompare(b.doc.id))
    .slice(0, k)
    .map(({ doc, score }) => ({ type: "Document", page_content: doc.text, metadata: { id: doc.id, title: doc.title, score } }));
}

/** `contextKey`: shared with the callers (internal.ts). `sampling`: follows the gateway's decision (sampling.ts). */
export function createRetrievalApp(contextKey: string, sampling?: Sampler): express.Express {
  const searchCorpus = traced(async (input: { query: string; k: number }) => ({ documents: search(input.query, input.k) }), {
    name: "search_corpus",
    run_type: "retriever",
  });

  const app = express();
  app.use(langsmithTracing({ trust: { signedBy: contextKey }, sampling }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "retrieval", documents: CORPUS.length });
  });
  app.use(requireInternalCaller(contextKey));
  app.use(express.json({ limit: "16kb" }));
  app.post("/search", async (req, res) => {
    const query: unknown = req.body?.query;
    const k: unknown = req.body?.k ?? 3;
    if (typeof query !== "string" || typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > 20) {
      res.status(400).json({ error: 'expected {"query": "<string>", "k": 1..20}' });
      return;
    }
    res.json(await searchCorpus({ query, k }));
  });
  app.use(jsonErrors({ service: "retrieval", exposeFailures: true }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "retrieval";
  await serve(createRetrievalApp(contextKeyFromEnv(), samplerFromEnv(contextKeyFromEnv())), "retrieval");
}
