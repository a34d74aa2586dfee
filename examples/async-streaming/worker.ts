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
// It prints "worker ready on <queue>" once connected. SIGTERM/SIGINT stop taking
// jobs, let the jobs in progress finish, send every pending run and exit 0, all
// within SHUTDOWN_TIMEOUT_MS (default 10000): a job still running when its share
// of the budget is spent is left to BullMQ's stalled-job check (see trackJobs).
// Signals after the first are ignored: Ctrl-C and a launcher's SIGTERM both arrive.
// WORKER_LOCK_DURATION_MS and WORKER_STALLED_INTERVAL_MS set BullMQ's
// lockDuration and stalledInterval (default 30000 each).
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "bullmq";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import { traceable } from "langsmith/traceable";
import { flushTraces, shutdownBudget } from "@tracing-patterns/setup";
import { currentRun } from "@tracing-patterns/example-express-middleware";
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

/** BullMQ settings that decide how soon a job cut off at shutdown is picked up again. */
export type StallSettings = Pick<WorkerOptions, "lockDuration" | "stalledInterval">;

export function startWorker(
  queueName: string,
  redisUrl: string,
  model: BaseChatModel,
  concurrency = 8,
  stall: StallSettings = {},
): Worker<TracedJobData<AnswerJob>, AnswerResult> {
  const handle = answerHandler(model);
  return new Worker<TracedJobData<AnswerJob>, AnswerResult>(
    queueName,
    tracedProcessor((payload) => handle(payload)),
    { connection: { url: redisUrl }, concurrency, ...stall },
  );
}

export interface WorkerCloseResult {
  /** Every job in progress finished within the deadline (else the worker was closed with force). */
  jobsFinished: boolean;
  /** Ids of the jobs still running when the worker was closed with force. */
  cutOff: string[];
}

export interface TrackedJobs {
  /**
   * Stop taking jobs, let the jobs in progress finish for up to `timeoutMs`, then close the
   * worker: gracefully if they finished, with force if not.
   */
  close(timeoutMs: number): Promise<WorkerCloseResult>;
  /** Ids of the jobs this worker is processing. */
  readonly inProgress: ReadonlySet<string>;
}

/**
 * Tracks a BullMQ worker's jobs so that it can be closed within a deadline. worker.close() waits
 * for the jobs in progress with no limit, so one hung job keeps the process alive until it is
 * killed; and once close() has started, close(true) only returns the same promise. So the wait is
 * pause() (stop fetching, resolve once the jobs in progress are done), given up at the deadline,
 * and close(force) is chosen after it. A forced close stops renewing the jobs' locks and drops the
 * connections; the job stays in the active list until its lock expires (lockDuration), and the
 * stalled-job check of any worker on the queue (every stalledInterval) then moves it back to wait,
 * or, past maxStalledCount stalls (default 1), to failed. It is delayed, never silently dropped.
 * Call it right after creating the worker, so it sees every job.
 */
export function trackJobs(worker: Worker): TrackedJobs {
  const inProgress = new Set<string>();
  worker.on("active", (job) => {
    if (job.id !== undefined) inProgress.add(job.id);
  });
  const done = (job: { id?: string } | undefined): void => {
    if (job?.id !== undefined) inProgress.delete(job.id);
  };
  worker.on("completed", done);
  worker.on("failed", done);
  return {
    inProgress,
    close: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      // A pause that fails (Redis gone) tells nothing about the jobs: close with force.
      const paused = worker.pause().then(
        () => true,
        () => false,
      );
      const jobsFinished = await Promise.race([paused, deadline]);
      clearTimeout(timer);
      const cutOff = jobsFinished ? [] : [...inProgress];
      await worker.close(!jobsFinished);
      return { jobsFinished, cutOff };
    },
  };
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error("worker.ts needs REDIS_URL (for example redis://127.0.0.1:6379)");
  const queueName = process.env.QUEUE_NAME ?? "answers";
  const model = new ChatOpenAI({ model: process.env.OPENAI_MODEL ?? "gpt-4o-mini" });
  const stall: StallSettings = {
    ...(process.env.WORKER_LOCK_DURATION_MS ? { lockDuration: Number(process.env.WORKER_LOCK_DURATION_MS) } : {}),
    ...(process.env.WORKER_STALLED_INTERVAL_MS ? { stalledInterval: Number(process.env.WORKER_STALLED_INTERVAL_MS) } : {}),
  };
  const worker = startWorker(queueName, redisUrl, model, Number(process.env.WORKER_CONCURRENCY ?? 8), stall);
  const jobs = trackJobs(worker);
  let stopping = false;
  // While stopping, Redis may be going down too (a terminal's Ctrl-C reaches redis-server as well),
  // and each reconnect attempt then fails the same way: one report of each error is enough.
  const reportedWhileStopping = new Set<string>();
  worker.on("error", (error) => {
    if (stopping) {
      if (reportedWhileStopping.has(error.message)) return;
      reportedWhileStopping.add(error.message);
    }
    console.error("[worker]", error);
  });
  await worker.waitUntilReady();
  console.log(`worker ready on ${queueName}`);
  const budgetMs = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000);
  // Here, so a budget that is not a number fails at start-up rather than at the first SIGTERM.
  const budget = shutdownBudget(budgetMs);
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    // A repeat is the same request arriving twice, not an order to abandon the jobs: a terminal's
    // Ctrl-C reaches every process of the group, and the launcher (start.ts, npm, a process
    // manager) then signals its children as well. The stop is bounded, so nothing needs forcing.
    if (stopping) {
      console.error(`[shutdown] ${signal} while stopping: ignored, the stop in progress ends within ${budgetMs} ms of the first signal`);
      return;
    }
    stopping = true;
    const started = performance.now();
    console.error(
      `[shutdown] ${signal}: not taking new jobs; finishing ${jobs.inProgress.size} job(s) in progress within ${budget.drainMs} ms, ` +
        `then flushing traces (budget ${budgetMs} ms)`,
    );
    const closed = await jobs.close(budget.drainMs);
    if (!closed.jobsFinished && closed.cutOff.length === 0) {
      // pause() also reconnects the connection that fetches jobs, which never happens with Redis gone.
      console.error(`[shutdown] no job in progress, but the worker could not pause within the deadline (Redis unreachable?): worker closed with force`);
    } else if (!closed.jobsFinished) {
      console.error(
        `[shutdown] job(s) ${closed.cutOff.join(", ")} still running at the deadline: worker closed with force. ` +
          `They stay active until their lock expires (lockDuration ${worker.opts.lockDuration} ms); the stalled-job check of a running worker ` +
          `then moves them back to wait (or to failed past maxStalledCount ${worker.opts.maxStalledCount} stalls)`,
      );
    }
    // The jobs' runs, the cut-off ones' started runs included, sent within what is left.
    const flush = await flushTraces({ timeoutMs: Math.max(0, budgetMs - (performance.now() - started)) });
    console.error(
      flush.flushed
        ? `[shutdown] traces flushed in ${flush.elapsedMs} ms`
        : `[shutdown] traces NOT flushed after ${flush.elapsedMs} ms, what is still pending is lost on exit${flush.errors.length > 0 ? `; errors: ${flush.errors.join("; ")}` : ""}`,
    );
    process.exit(0);
  };
  process.on("SIGTERM", (signal) => void stop(signal));
  process.on("SIGINT", (signal) => void stop(signal));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
