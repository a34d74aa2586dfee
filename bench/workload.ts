import type { Client } from "langsmith";
import { traceable } from "langsmith/traceable";

/** Runs per trace the workload produces: one root and its steps below. */
export const RUNS_PER_TRACE = 8;

interface Doc {
  id: string;
  text: string;
  score: number;
}

interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
}

const CORPUS = [
  "Distributed tracing links the spans of one request across services through a propagated context.",
  "LangSmith groups runs into traces by trace id and orders them by dotted order.",
  "A retriever run records the query and the documents it returned, with their scores.",
  "Token usage is reported on LLM runs and rolled up to the chains above them.",
];

/**
 * One request through a small retrieval-augmented chat app, traced the way
 * an application would trace it: a root chain and seven steps, each with
 * inputs and outputs of a few hundred bytes, made distinct per request so
 * compression sees realistic (not identical) payloads.
 */
export function makeWorkload(client: Client, projectName: string): (i: number) => Promise<string> {
  const opts = { client, project_name: projectName };
  const rewrite = traceable(async (question: string) => ({ query: question.toLowerCase().replace(/[?!.]/g, ""), expansions: ["tracing", "context propagation"] }), {
    ...opts,
    name: "rewrite_query",
    run_type: "chain",
  });
  const retrieve = traceable(
    async (query: { query: string }): Promise<Doc[]> =>
      CORPUS.map((text, k) => ({ id: `doc-${k}`, text: `${text} (${query.query.length})`, score: 1 - k / 10 })),
    { ...opts, name: "retrieve", run_type: "retriever" },
  );
  const rerank = traceable(async (docs: Doc[]) => docs.slice(0, 3).map((d) => ({ ...d, score: d.score * 0.9 })), { ...opts, name: "rerank", run_type: "chain" });
  const formatPrompt = traceable(
    async (question: string, docs: Doc[]): Promise<ChatMessage[]> => [
      { role: "system", content: `Answer from the context only.\n\n${docs.map((d) => d.text).join("\n")}` },
      { role: "user", content: question },
    ],
    { ...opts, name: "format_prompt", run_type: "prompt" },
  );
  const lookup = traceable(async (topic: string) => ({ topic, definition: `${topic}: the practice of following one request through every service it touches.` }), {
    ...opts,
    name: "glossary_lookup",
    run_type: "tool",
  });
  const chat = traceable(
    async (messages: ChatMessage[]) => ({
      id: `chatcmpl-${messages.length}`,
      model: "local-deterministic",
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant" as const, content: `Per the context: ${messages[1]?.content ?? ""} is answered by propagating trace headers.` } }],
      usage: { prompt_tokens: 182, completion_tokens: 41, total_tokens: 223 },
    }),
    { ...opts, name: "ChatModel", run_type: "llm", metadata: { ls_provider: "openai", ls_model_name: "local-deterministic", ls_temperature: 0 } },
  );
  const parse = traceable(async (completion: { choices: Array<{ message: ChatMessage }> }) => ({ answer: completion.choices[0]?.message.content ?? "", citations: ["doc-0", "doc-1"] }), {
    ...opts,
    name: "parse_answer",
    run_type: "parser",
  });
  return traceable(
    async (i: number) => {
      const question = `Request ${i}: how does a trace follow a request across the API gateway and the worker?`;
      const q = await rewrite(question);
      const docs = await rerank(await retrieve(q));
      const messages = await formatPrompt(question, docs);
      await lookup("distributed tracing");
      const completion = await chat(messages);
      const parsed = await parse(completion);
      return parsed.answer;
    },
    { ...opts, name: "answer_question", run_type: "chain", metadata: { user_id: "bench-user", conversation_turn: 1 } },
  );
}
