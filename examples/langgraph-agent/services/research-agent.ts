/**
 * The research agent: a LangGraph graph that searches a small local corpus of
 * notes with its search_notes tool (deterministic keyword search) through a
 * real ChatOpenAI with tool calling, and summarises what it found. The
 * research service (research.ts) runs it behind HTTP.
 */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { ToolNode, toolsCondition } from "@langchain/langgraph/prebuilt";
import { z } from "zod";

export interface Note {
  id: string;
  title: string;
  text: string;
}

export const NOTES: readonly Note[] = [
  { id: "doc-trace-header", title: "The langsmith-trace header", text: "The langsmith-trace header carries the dotted order of the caller's run; the receiver makes its run a child of that run, so one request is one trace across services." },
  { id: "doc-baggage", title: "Baggage", text: "The baggage header carries the caller's metadata, tags and project, so a thread id, user id or tenant set in one service reaches the runs of the next." },
  { id: "doc-metadata", title: "Metadata on every run", text: "LangChain runs started under a run rebuilt from headers get its parent but not its metadata or tags: pass them in the runnable config so LLM and tool runs carry them too." },
  { id: "doc-agent-server", title: "The LangGraph Agent Server", text: "The Agent Server passes only x- headers into the graph's configurable: a custom HTTP app copies langsmith-trace and baggage to x- names and a per-run graph factory continues the trace." },
  { id: "doc-threads", title: "Threads", text: "The Agent Server keeps x- headers in a thread's config, so every call on a thread must send its own trace headers or it is parented under an earlier request." },
  { id: "doc-projects", title: "Per-team projects", text: "Replicas write a run to more projects: the parent project keeps the whole trace while a team project receives a copy of its service's runs." },
];

const STOPWORDS = new Set("a an and are as at be by can do does for from how i in is it of on or the to what when where which who why with search notes find".split(" "));

/** Deterministic keyword search: notes sharing the most words with the query, best first, at most `k`. */
export function searchNotes(query: string, k = 2): Note[] {
  const terms = new Set((query.toLowerCase().match(/[a-z0-9][a-z0-9-]*/g) ?? []).filter((t) => t.length > 2 && !STOPWORDS.has(t)));
  return NOTES.map((note, index) => {
    const words = new Set(`${note.title} ${note.text}`.toLowerCase().match(/[a-z0-9][a-z0-9-]*/g) ?? []);
    return { note, index, score: [...terms].filter((t) => words.has(t)).length };
  })
    .filter((r) => r.score > 0)
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k)
    .map((r) => r.note);
}

const searchNotesTool = tool(
  async ({ query }: { query: string }): Promise<[string, string[]]> => {
    const found = searchNotes(query);
    const content = found.length > 0 ? found.map((n) => `[${n.id}] ${n.title}: ${n.text}`).join("\n") : "No notes match.";
    return [content, found.map((n) => n.id)];
  },
  {
    name: "search_notes",
    description: "Search the team's notes on distributed tracing; returns the matching notes with their ids.",
    schema: z.object({ query: z.string().describe("What to look for") }),
    responseFormat: "content_and_artifact",
  },
);

const SYSTEM = "You are a research agent. Use search_notes to find the facts the question needs, then summarise them, citing note ids.";

export function buildResearchAgent(model: BaseChatModel) {
  const tools = [searchNotesTool];
  if (model.bindTools === undefined) throw new Error("the research agent needs a chat model with tool calling");
  const bound = model.bindTools(tools);
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", async (state) => ({ messages: [await bound.invoke([new SystemMessage(SYSTEM), ...state.messages])] }))
    .addNode("tools", new ToolNode(tools))
    .addEdge(START, "agent")
    .addConditionalEdges("agent", toolsCondition, ["tools", END])
    .addEdge("tools", "agent")
    .compile({ name: "research_agent" });
}

export interface ResearchResult {
  notes: string;
  sources: string[];
}

/** The answer in a finished state: the last message's text and the ids of every note a search returned. */
export function researchResult(messages: readonly BaseMessage[]): ResearchResult {
  const sources = messages.flatMap((m) => (m instanceof ToolMessage && Array.isArray(m.artifact) ? (m.artifact as string[]) : []));
  const last = messages.at(-1);
  return { notes: last?.text ?? "", sources: [...new Set(sources)] };
}
