// The chat service of the async and streaming patterns, as its own process:
//
//   POST /chat/stream   {"question"}  -> SSE tokens (sse.ts), traced as one tree with the caller
//   POST /chat          {"question"}  -> JSON answer; then, after the response,
//                                        remember_conversation runs in the background
//   GET  /health                      -> {"ok", "backgroundTasks", "remembered"}
//
// `node --import tsx server.ts` serves on PORT (default: any free port) and
// prints "chat listening on <url>". The model is ChatOpenAI configured from the
// environment (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL); SUMMARY_MODEL
// names the background summary's model (default: the same); MEMORY_CAPACITY how
// many summaries the service keeps (default 100, oldest dropped first).
//
// On SIGTERM/SIGINT it stops accepting requests, lets in-flight requests and
// background work finish, sends every pending run and exits 0, all within
// SHUTDOWN_TIMEOUT_MS (default 10000): a hung trace backend costs the runs still
// pending, never a process that outlives its orchestrator's SIGKILL deadline.
// SHUTDOWN=immediate leaves Node's default
// in place (a signal kills the process at once), which is what most servers do
// and what loses the last runs: the notebook uses it to show that.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import express from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import { traceable } from "langsmith/traceable";
import { BackgroundTasks, installShutdown, jsonErrors, langsmithTracing } from "@tracing-patterns/kit";
import { sseChatHandler } from "./sse.js";

export interface ChatAppOptions {
  model: BaseChatModel;
  /** Model for the background summary. Default: `model`. */
  summaryModel?: BaseChatModel;
  background: BackgroundTasks;
  /** Where remember_conversation keeps its summaries. Default: a new ConversationMemory per app. */
  memory?: ConversationMemory;
}

export function createChatApp(options: ChatAppOptions): express.Express {
  const { model, background } = options;
  const summaryModel = options.summaryModel ?? model;
  const memory = options.memory ?? new ConversationMemory();

  const answerQuestion = traceable(
    async (question: string) => {
      const reply = await model.invoke([
        { role: "system", content: "You answer in a few sentences." },
        { role: "user", content: question },
      ]);
      return { answer: reply.text };
    },
    { name: "answer_question" },
  );

  const rememberConversation = traceable(
    async (question: string, answer: string) => {
      const reply = await summaryModel.invoke([{ role: "user", content: `Summarize this exchange. ${question} ${answer}` }]);
      const evicted = memory.remember({ question, summary: reply.text });
      return { summary: reply.text, stored: memory.size, evicted };
    },
    { name: "remember_conversation" },
  );

  const app = express();
  // Only our own services call this one, so their trace headers are continued.
  app.use(langsmithTracing({ trust: "mesh" }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, backgroundTasks: background.size, remembered: memory.size });
  });
  app.post("/chat/stream", express.json(), sseChatHandler({ model }));
  app.post("/chat", express.json(), async (req, res) => {
    const question: unknown = (req.body as { question?: unknown } | undefined)?.question;
    if (typeof question !== "string" || question.trim() === "") {
      res.status(400).json({ error: 'expected a JSON body {"question": string}' });
      return;
    }
    const { answer } = await answerQuestion(question);
    res.json({ answer });
    // After the response: the caller does not wait for it, the trace still contains it.
    background.run(() => rememberConversation(question, answer));
  });
  // Errors as JSON: a client error (the body parser's 400 or 413) keeps its status and says what was
  // wrong; anything else, a model's 429 included, is a 500 that does not leak internals.
  app.use(jsonErrors({ service: "chat" }));
  return app;
}

export interface Conversation {
  question: string;
  summary: string;
}

/**
 * A stand-in for a memory store that a long-running process can keep: the
 * newest `capacity` summaries, oldest dropped first. Each summary is also the
 * output of its remember_conversation run, so one dropped here is still in its trace.
 */
export class ConversationMemory {
  readonly #entries: Conversation[] = [];

  constructor(readonly capacity = 100) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`ConversationMemory capacity must be a positive integer, got ${capacity}`);
  }

  /** Keeps `entry` and returns how many of the oldest entries it pushed out. */
  remember(entry: Conversation): number {
    this.#entries.push(entry);
    const evicted = Math.max(0, this.#entries.length - this.capacity);
    this.#entries.splice(0, evicted);
    return evicted;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Oldest first. */
  entries(): readonly Conversation[] {
    return [...this.#entries];
  }
}

const thisFile = fileURLToPath(import.meta.url);

function modelFromEnv(name: string | undefined): ChatOpenAI {
  // ChatOpenAI reads OPENAI_API_KEY; the OpenAI client reads OPENAI_BASE_URL.
  return new ChatOpenAI({ model: name ?? process.env.OPENAI_MODEL ?? "gpt-4o-mini" });
}

async function serve(): Promise<void> {
  const background = new BackgroundTasks();
  const memory = new ConversationMemory(Number(process.env.MEMORY_CAPACITY ?? 100));
  const app = createChatApp({ model: modelFromEnv(undefined), summaryModel: modelFromEnv(process.env.SUMMARY_MODEL), background, memory });
  const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
  // Requests first (they start background tasks), then the tasks, then the flush, which always keeps its reserve.
  if (process.env.SHUTDOWN !== "immediate") installShutdown({ timeoutMs: Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000), drain: [server, background] });
  await once(server, "listening");
  console.log(`chat listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

if (process.argv[1] === thisFile) await serve();
