/**
 * The supervisor service, the entry point:
 *
 *   POST /run {"message": "...", "thread_id"?: "...", "user_id"?: "..."}
 *     -> {"answer", "route", "sources", "thread_id", "user_id", "traceId"} and an x-trace-id header
 *
 * Each request is one trace: the middleware's server run (a new root: trust
 * "edge", this is the public entry) holds the thread and user ids as metadata,
 * inheritedConfig() hands them to the supervisor graph, and from inside its
 * nodes tracedFetch (research) and the Agent Server client (writing) carry
 * them on in `baggage` with the trace in `langsmith-trace`.
 *
 * RESEARCH_TEAM_PROJECT=<project>: the research team also gets a copy of the
 * research service's runs in that project (withTeamReplica in research-client.ts).
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import express from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { chatModelFromEnv, DEFAULT_PORTS, numberFromEnv, URL_ENV, urlFromEnv } from "./env.js";
import { InvalidRequest, agentErrors, serve } from "./http.js";
import { inheritedConfig } from "./run-config.js";
import { researchOverHttp } from "./research-client.js";
import { buildSupervisor, type SupervisorAgents } from "./supervisor-graph.js";
import { getRequestRun, langsmithTracing } from "./tracing.js";
import { callWritingAgent, writingAgentClient } from "./writing-client.js";

const ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const MAX_MESSAGE = 2_000;

export function createSupervisorApp(model: BaseChatModel, agents: SupervisorAgents, options: { writingAttempts?: number } = {}): express.Express {
  const supervisor = buildSupervisor(model, agents, options);
  const app = express();
  app.use(langsmithTracing({ trust: "edge" }));
  app.use(express.json({ limit: "64kb" }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "supervisor" });
  });
  app.post("/run", async (req, res) => {
    const body: Record<string, unknown> = typeof req.body === "object" && req.body !== null ? req.body : {};
    const message = body.message;
    if (typeof message !== "string" || message.trim() === "" || message.length > MAX_MESSAGE) {
      throw new InvalidRequest(`expected {"message": "<non-empty string of at most ${MAX_MESSAGE} characters>", "thread_id"?: "...", "user_id"?: "..."}`);
    }
    const threadId = optionalId(body, "thread_id") ?? randomUUID();
    const userId = optionalId(body, "user_id") ?? "anonymous";
    // On the request's run first: from there inheritedConfig() passes them to the graph, and baggage to the agents.
    const run = getRequestRun(req);
    if (run) run.metadata = { thread_id: threadId, user_id: userId };
    const state = await supervisor.invoke({ message }, { ...inheritedConfig(), configurable: { thread_id: threadId } });
    res.json({ answer: state.answer, route: state.route, sources: state.sources, thread_id: threadId, user_id: userId, traceId: run?.trace_id });
  });
  app.use(agentErrors("supervisor"));
  return app;
}

function optionalId(body: Record<string, unknown>, field: "thread_id" | "user_id"): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !ID.test(value)) throw new InvalidRequest(`${field} must be 1-128 characters of A-Z a-z 0-9 . _ : @ -`);
  return value;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "supervisor";
  const timeoutMs = numberFromEnv("AGENT_TIMEOUT_MS", 30_000);
  const writer = writingAgentClient(urlFromEnv(URL_ENV.writing, DEFAULT_PORTS["writing-agent"]), { apiKey: process.env.AGENT_SERVER_API_KEY, timeoutMs });
  const agents: SupervisorAgents = {
    research: researchOverHttp(urlFromEnv(URL_ENV.research, DEFAULT_PORTS["research-agent"]), { timeoutMs, teamProject: process.env.RESEARCH_TEAM_PROJECT?.trim() || undefined }),
    writing: (input) => callWritingAgent(writer, input),
  };
  const app = createSupervisorApp(chatModelFromEnv(), agents, { writingAttempts: numberFromEnv("WRITING_ATTEMPTS", 2) });
  await serve(app, "supervisor");
}
