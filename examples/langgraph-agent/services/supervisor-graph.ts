/**
 * The supervisor: a LangGraph graph that asks a real ChatOpenAI which agent
 * starts on a request, then delegates to the research agent (its own express
 * service) and the writing agent (on the LangGraph Agent Server). The agents
 * are reached through the functions in `SupervisorAgents`, called from inside
 * the nodes: the node's run is the current run there, so the agents' runs
 * nest under the node that called them.
 *
 *   choose_agent -> research_agent -> writing_agent      (a question)
 *   choose_agent -> writing_agent                        (a text to format)
 */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { RunnableConfig } from "@langchain/core/runnables";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";

export type Route = "research" | "writing";

export interface SupervisorAgents {
  research(question: string): Promise<{ notes: string; sources: string[]; steps: number }>;
  writing(input: { threadId: string; request: string }): Promise<{ answer: string; steps: number }>;
}

const SupervisorState = Annotation.Root({
  message: Annotation<string>(),
  route: Annotation<Route>(),
  notes: Annotation<string>(),
  sources: Annotation<string[]>({ reducer: (_, next) => next, default: () => [] }),
  answer: Annotation<string>(),
});
export type SupervisorState = typeof SupervisorState.State;

const ROUTER = `You are the supervisor of two agents. Choose the agent that starts on the user's request; respond with only one of:
- research: look up facts and sources in the notes to answer a question or explain how something works
- writing: format or rewrite a draft that is already written, with its citations`;

/** The model's choice, read leniently: anything that is not clearly "writing" goes to research first. */
export function parseRoute(reply: string): Route {
  return /^\W*writing\b/i.test(reply.trim()) ? "writing" : "research";
}

export function writingRequest(state: SupervisorState): string {
  return state.route === "writing"
    ? `Format the citations for this text: ${state.message}`
    : `Format the citations for this answer to "${state.message}": ${state.notes}`;
}

export function buildSupervisor(model: BaseChatModel, agents: SupervisorAgents, options: { writingAttempts?: number } = {}) {
  return new StateGraph(SupervisorState)
    .addNode("choose_agent", async (state) => {
      const reply = await model.invoke([new SystemMessage(ROUTER), new HumanMessage(state.message)]);
      return { route: parseRoute(reply.text) };
    })
    .addNode("research_agent", async (state) => {
      const { notes, sources } = await agents.research(state.message);
      return { notes, sources };
    })
    .addNode(
      "writing_agent",
      async (state: SupervisorState, config: RunnableConfig) => {
        const threadId = config.configurable?.thread_id;
        if (typeof threadId !== "string") throw new Error("the supervisor runs with configurable.thread_id");
        const { answer } = await agents.writing({ threadId, request: writingRequest(state) });
        return { answer };
      },
      // Each attempt is its own writing_agent run in the trace; a failed one keeps its error.
      { retryPolicy: { maxAttempts: options.writingAttempts ?? 2, initialInterval: 200, jitter: false } },
    )
    .addEdge(START, "choose_agent")
    .addConditionalEdges("choose_agent", (state) => (state.route === "writing" ? "writing_agent" : "research_agent"), ["research_agent", "writing_agent"])
    .addEdge("research_agent", "writing_agent")
    .addEdge("writing_agent", END)
    .compile({ name: "supervisor" });
}
