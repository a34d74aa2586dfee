/**
 * Calling the research service from inside a supervisor node: the request
 * carries `langsmith-trace` and `baggage` for the current run (the node's), so
 * the service's runs nest under the node, and the answer is read as NDJSON,
 * one line per step of the research graph, then the result.
 *
 *   const research = researchOverHttp(new URL("http://127.0.0.1:3101"), { teamProject: "research-team" });
 *   const { notes, sources } = await research("How does baggage carry the user id?");
 */
import type { SupervisorAgents } from "./supervisor-graph.js";
import { AgentCallError } from "./http.js";
import { injectTraceHeaders } from "./tracing.js";

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
