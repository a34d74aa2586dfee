/**
 * The research service: the research agent (research-agent.ts) behind
 * express. The tracing middleware continues the supervisor's trace (trust
 * "mesh": only our supervisor calls it), and inheritedConfig() hands the
 * request run's metadata (thread_id, user_id from the caller's baggage) and
 * tags to every run of the graph.
 *
 *   POST /research {"question": "..."}                  -> {"notes", "sources"}
 *   same with "accept: application/x-ndjson"            -> one JSON line per graph step, then {"type":"result",...}
 */
import { fileURLToPath } from "node:url";
import express from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { buildResearchAgent, researchResult } from "./research-agent.js";
import { chatModelFromEnv } from "./env.js";
import { InvalidRequest, agentErrors, serve } from "./http.js";
import { inheritedConfig } from "./run-config.js";
import { langsmithTracing } from "./tracing.js";

const MAX_QUESTION = 2_000;

export function createResearchApp(model: BaseChatModel): express.Express {
  const agent = buildResearchAgent(model);
  const app = express();
  // Only our supervisor calls it, so its baggage may name extra projects (replicas) for the research team.
  app.use(langsmithTracing({ trust: "mesh", allowReplicas: true }));
  app.use(express.json({ limit: "64kb" }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "research-agent" });
  });
  app.post("/research", async (req, res) => {
    const question: unknown = req.body?.question;
    if (typeof question !== "string" || question.trim() === "" || question.length > MAX_QUESTION) {
      throw new InvalidRequest(`expected {"question": "<non-empty string of at most ${MAX_QUESTION} characters>"}`);
    }
    const input = { messages: [new HumanMessage(`Search the notes for: ${question}`)] };
    const config = inheritedConfig();
    if (!req.accepts("application/json") && req.accepts("application/x-ndjson")) {
      // Each step goes out as it finishes; the request's run, and with it the graph's runs, ends with the response.
      res.type("application/x-ndjson");
      let messages: BaseMessage[] = [];
      try {
        for await (const [mode, chunk] of await agent.stream(input, { ...config, streamMode: ["updates", "values"] })) {
          if (mode === "values") messages = (chunk as { messages: BaseMessage[] }).messages;
          else for (const node of Object.keys(chunk as object)) res.write(`${JSON.stringify({ type: "step", node })}\n`);
        }
        res.end(`${JSON.stringify({ type: "result", ...researchResult(messages) })}\n`);
      } catch (err) {
        // Too late for a status code: the error is the stream's last line (and on the graph's runs).
        res.end(`${JSON.stringify({ type: "error", error: err instanceof Error ? err.message : String(err) })}\n`);
      }
      return;
    }
    const state = await agent.invoke(input, config);
    res.json(researchResult(state.messages));
  });
  app.use(agentErrors("research-agent"));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "research-agent";
  await serve(createResearchApp(chatModelFromEnv()), "research-agent");
}
