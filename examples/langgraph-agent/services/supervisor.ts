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
 * research service's runs in that project (withTeamReplica).
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import express from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { chatModelFromEnv, DEFAULT_PORTS, numberFromEnv, URL_ENV, urlFromEnv } from "./env.js";
import { AgentCallError, InvalidRequest, jsonErrors, serve } from "./http.js";
import { inheritedConfig } from "./run-config.js";
import { buildSupervisor, type SupervisorAgents } from "./supervisor-graph.js";
import { getRequestRun, injectTraceHeaders, langsmithTracing } from "./tracing.js";
import { callWritingAgent, writingAgentClient } from "./writing-client.js";

const ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const MAX_MESSAGE = 2_000;

/**
 * Adds `langsmith-replicas` to outbound baggage, so that the callee (a
 * service with `allowReplicas` for trusted callers) writes its runs to each
 * project named: here this service's own, which keeps the whole trace, and the
 * team's, which gets a copy of the callee's slice. Replicas replace the
 * default destination, so leaving out the own project would take the slice
 * out of the trace.
 */
export function withTeamReplica(headers: Headers, ownProject: string, teamProject: string): Headers {
  const replicas = `langsmith-replicas=${encodeURIComponent(JSON.stringify([{ projectName: ownProject }, { projectName: teamProject }]))}`;
  const rest = (headers.get("baggage") ?? "").split(",").filter((m) => m.trim() !== "" && !m.trim().startsWith("langsmith-replicas="));
  headers.set("baggage", [...rest, replicas].join(","));
  return headers;
}

export interface ResearchOptions {
  timeoutMs?: number;
  /** A project that also receives the research service's runs of each request (see withTeamReplica). */
  teamProject?: string;
}

/** The research service over HTTP, streamed: one JSON line per graph step, then the result. */
export function researchOverHttp(url: URL, options: ResearchOptions = {}): SupervisorAgents["research"] {
  return async (question) => {
    // `langsmith-trace` and `baggage` for the current run: the research_agent node's.
    const headers = injectTraceHeaders({ "content-type": "application/json", accept: "application/x-ndjson" });
    if (options.teamProject) withTeamReplica(headers, process.env.LANGSMITH_PROJECT || "default", options.teamProject);
    let response: Response;
    try {
      response = await fetch(new URL("/research", url), {
        method: "POST",
        headers,
        body: JSON.stringify({ question }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new AgentCallError("research-agent", `unreachable at ${url.origin}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await response.text();
    if (!response.ok) throw new AgentCallError("research-agent", `answered ${response.status}: ${text.slice(0, 300)}`);
    let steps = 0;
    for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
      const event = JSON.parse(line) as { type?: string; notes?: unknown; sources?: unknown; error?: unknown };
      if (event.type === "step") steps += 1;
      if (event.type === "error") throw new AgentCallError("research-agent", `failed: ${String(event.error)}`);
      if (event.type === "result" && typeof event.notes === "string" && Array.isArray(event.sources)) {
        return { notes: event.notes, sources: event.sources.filter((s): s is string => typeof s === "string"), steps };
      }
    }
    throw new AgentCallError("research-agent", "the stream ended without a result");
  };
}

function optionalId(body: Record<string, unknown>, field: "thread_id" | "user_id"): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !ID.test(value)) throw new InvalidRequest(`${field} must be 1-128 characters of A-Z a-z 0-9 . _ : @ -`);
  return value;
}

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
  app.use(jsonErrors("supervisor"));
  return app;
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
