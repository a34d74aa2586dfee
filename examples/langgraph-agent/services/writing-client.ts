/**
 * Calling the writing agent on the LangGraph Agent Server with the trace
 * intact. Neither RemoteGraph nor the SDK client has a distributed-tracing
 * option in JS, and RemoteGraph's `headers` are fixed when it is built, so
 * the SDK client's onRequest hook adds `langsmith-trace` and `baggage` for
 * the run current at each request (the supervisor's writing_agent node).
 * The server side (agent-server/trace-context.ts) continues from them.
 *
 *   const writer = writingAgentClient(new URL("http://127.0.0.1:3102"));
 *   const { answer } = await callWritingAgent(writer, { threadId, request });
 */
import { Client } from "@langchain/langgraph-sdk";
import { v5 as uuidv5 } from "@langchain/core/utils/uuid";
import { AgentCallError } from "./http.js";
import { injectTraceHeaders } from "./tracing.js";

export const WRITING_AGENT_ID = "writing_agent";
/** Our thread ids are any string; the server's are UUIDs: each of ours maps to one, always the same. */
const THREAD_NAMESPACE = "0b4c1d9e-6a39-4c43-9f2e-3b2a1f6d7c58";

export function writingAgentClient(url: URL, options: { apiKey?: string; timeoutMs?: number } = {}): Client {
  return new Client({
    apiUrl: url.toString(),
    // null: do not fall back to LANGSMITH_API_KEY, which the SDK would otherwise send to this server.
    apiKey: options.apiKey ?? null,
    timeoutMs: options.timeoutMs ?? 30_000,
    // One retry layer, the supervisor node's retry policy, so that every attempt shows in the trace.
    callerOptions: { maxRetries: 0 },
    // The hook runs in the caller's async context, so the current run is the calling node's.
    onRequest: (_url, init) => ({ ...init, headers: injectTraceHeaders(init.headers) }),
  });
}

export function serverThreadId(threadId: string): string {
  return uuidv5(threadId, THREAD_NAMESPACE);
}

interface Message {
  type?: string;
  role?: string;
  content?: unknown;
}

/**
 * One writing run on the thread `threadId` (created on first use), streamed:
 * the values arrive as the graph runs, the last one holds the answer. Runs on
 * a busy thread wait their turn (multitask "enqueue") instead of failing.
 */
export async function callWritingAgent(client: Client, input: { threadId: string; request: string }): Promise<{ answer: string; steps: number }> {
  let last: { messages?: Message[] } | undefined;
  let steps = 0;
  const stream = client.runs.stream(serverThreadId(input.threadId), WRITING_AGENT_ID, {
    input: { messages: [{ role: "user", content: input.request }] },
    streamMode: "values",
    ifNotExists: "create",
    multitaskStrategy: "enqueue",
  });
  try {
    for await (const part of stream) {
      if (part.event === "error") throw new AgentCallError("writing-agent", `the run failed: ${JSON.stringify(part.data)}`);
      if (part.event === "values") {
        steps += 1;
        last = part.data as { messages?: Message[] };
      }
    }
  } catch (err) {
    if (err instanceof AgentCallError) throw err;
    const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw new AgentCallError("writing-agent", `unreachable or failed mid-stream: ${cause}`);
  }
  const final = last?.messages?.at(-1);
  if (final === undefined || typeof final.content !== "string" || (final.type !== "ai" && final.role !== "assistant")) {
    throw new AgentCallError("writing-agent", `the run ended without an answer (${steps} state update(s))`);
  }
  return { answer: final.content, steps };
}
