/**
 * The writing agent, deployed on the LangGraph Agent Server: it turns research
 * notes into an answer with numbered references, calling its format_citations
 * tool through a real ChatOpenAI with tool calling. langgraph.json names the
 * export `graph`, a per-run factory (continueTrace) so each run is parented
 * under the caller's run.
 *
 * Input: { messages: [{ role: "user", content: "Format the citations for ..." }] }.
 * The model comes from OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL.
 */
import { ChatOpenAI } from "@langchain/openai";
import { SystemMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { ToolNode, toolsCondition } from "@langchain/langgraph/prebuilt";
import { z } from "zod";
import { continueTrace } from "./trace-context.js";

/** Titles of the documents the research agent cites; a real agent would look them up. */
const TITLES: Readonly<Record<string, string>> = {
  "doc-trace-header": "The langsmith-trace header",
  "doc-baggage": "Baggage",
  "doc-metadata": "Metadata on every run",
  "doc-agent-server": "The LangGraph Agent Server",
  "doc-threads": "Threads",
  "doc-projects": "Per-team projects",
};

/** Deterministic: every document id in the text, in order of first mention, as a numbered reference list. */
export function formatCitations(text: string): string {
  const ids = [...new Set(text.match(/doc-[a-z0-9-]+/g) ?? [])].filter((id) => id in TITLES);
  if (ids.length === 0) return "No sources to cite.";
  return `References: ${ids.map((id, i) => `[${i + 1}] ${TITLES[id]} (${id})`).join("; ")}`;
}

const formatCitationsTool = tool(async ({ text }: { text: string }) => formatCitations(text), {
  name: "format_citations",
  description: "Format the citations of a text: turns the document ids it mentions into numbered references.",
  schema: z.object({ text: z.string().describe("The text whose citations to format") }),
});

const SYSTEM = "You are a writing agent. Call format_citations on the notes you are given, then write the answer with its references.";

export function buildWritingAgent(model = chatModel()) {
  const tools = [formatCitationsTool];
  const bound = model.bindTools(tools);
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", async (state) => ({ messages: [await bound.invoke([new SystemMessage(SYSTEM), ...state.messages])] }))
    .addNode("tools", new ToolNode(tools))
    .addEdge(START, "agent")
    .addConditionalEdges("agent", toolsCondition, ["tools", END])
    .addEdge("tools", "agent")
    .compile({ name: "writing_agent" });
}

function chatModel(): ChatOpenAI {
  const baseURL = process.env.OPENAI_BASE_URL?.trim();
  return new ChatOpenAI({
    model: process.env.OPENAI_MODEL?.trim() || "gpt-4o-mini",
    temperature: 0,
    maxRetries: 2,
    ...(baseURL ? { configuration: { baseURL } } : {}),
  });
}

// Built on first use, not at import: importing this file (notebook 04 does) must not read the
// model's environment before the caller has set it.
let agent: ReturnType<typeof buildWritingAgent> | undefined;
const writingAgent = (): ReturnType<typeof buildWritingAgent> => (agent ??= buildWritingAgent());

/** The graph with the caller's trace continued: what langgraph.json serves. */
export const graph = continueTrace(writingAgent);
/** The graph alone, the server's default (each run a new root): notebook 04 serves it to show that. */
export const plainGraph = writingAgent;
