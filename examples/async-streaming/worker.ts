// A BullMQ worker process that continues the producer's trace for every job.
//
//   REDIS_URL=redis://127.0.0.1:6379 QUEUE_NAME=answers node --import tsx worker.ts
//
// Each job's data is { payload: { question }, metadata: { langsmith-trace, baggage } }
// (jobs.ts). Its run, "process <queue>/<job name>", becomes the child of the
// producer's run; a job without metadata starts a new root, and one with
// malformed metadata starts a new root and logs a warning, never a failed job.
// The handler answers with ChatOpenAI (configured from the environment, like
// server.ts), so the LLM call nests under the job's run.
//
// It prints "worker ready on <queue>" once connected. SIGTERM/SIGINT close the
// worker (active jobs finish first), send every pending run within
// SHUTDOWN_TIMEOUT_MS (default 10000) and exit 0.
import { fileURLToPath } from "node:url";
import { Worker } from "bullmq";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import { traceable } from "langsmith/traceable";
import { currentRun } from "@tracing-patterns/example-express-middleware";
import { describeFlush, flushTracing } from "./background.js";
import { tracedProcessor, type TracedJobData } from "./jobs.js";

export interface AnswerJob {
  question: string;
}

export interface AnswerResult {
  answer: string;
  /** The trace this job's run belongs to, so the producer can find it (what x-trace-id is for HTTP). */
  trace_id?: string;
}

/** The job handler: plain business logic, traced like any other code. */
export function answerHandler(model: BaseChatModel): (payload: AnswerJob) => Promise<AnswerResult> {
  return traceable(
    async (payload: AnswerJob): Promise<AnswerResult> => {
      const reply = await model.invoke([
        { role: "system", content: "You answer in a few sentences." },
        { role: "user", content: payload.question },
      ]);
      return { answer: reply.text, trace_id: currentRun()?.trace_id };
    },
    { name: "answer_job" },
  );
}

export function startWorker(queueName: string, redisUrl: string, model: BaseChatModel, concurrency = 8): Worker<TracedJobData<AnswerJob>, AnswerResult> {
  const handle = answerHandler(model);
  return new Worker<TracedJobData<AnswerJob>, AnswerResult>(
    queueName,
    tracedProcessor((payload) => handle(payload)),
    { connection: { url: redisUrl }, concurrency },
  );
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error("worker.ts needs REDIS_URL (for example redis://127.0.0.1:6379)");
  const queueName = process.env.QUEUE_NAME ?? "answers";
  const model = new ChatOpenAI({ model: process.env.OPENAI_MODEL ?? "gpt-4o-mini" });
  const worker = startWorker(queueName, redisUrl, model, Number(process.env.WORKER_CONCURRENCY ?? 8));
  worker.on("error", (error) => console.error("[worker]", error));
  await worker.waitUntilReady();
  console.log(`worker ready on ${queueName}`);
  const budgetMs = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000);
  const stop = async (): Promise<void> => {
    const started = performance.now();
    // close() waits for the jobs in progress; their runs are then flushed, bounded so a hung trace
    // backend cannot hold the exit for the SDK's 90 s upload timeout.
    await worker.close();
    const result = await flushTracing(undefined, { timeoutMs: Math.max(0, budgetMs - (performance.now() - started)) });
    console.error(`[shutdown] ${describeFlush(result)}`);
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
