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
// within SHUTDOWN_TIMEOUT_MS (default 10000), with the kit's shutdown: a job
// still running when its share of the budget is spent is left to BullMQ's
// stalled-job check (see trackJobs). Signals after the first are reported and
// ignored: Ctrl-C and a launcher's SIGTERM both arrive.
// WORKER_LOCK_DURATION_MS and WORKER_STALLED_INTERVAL_MS set BullMQ's
// lockDuration and stalledInterval (default 30000 each).
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "bullmq";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { ChatOpenAI } from "@langchain/openai";
import { traceable } from "langsmith/traceable";
import { currentRun, installShutdown, type Drainable } from "@tracing-patterns/kit";
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

export interface TrackedJobs extends Drainable {
  /**
   * Stop taking jobs, let the jobs in progress finish for up to `timeoutMs`, then close the
   * worker: gracefully if they finished, with force if not.
   */
  close(timeoutMs: number): Promise<WorkerCloseResult>;
  /** Ids of the jobs this worker is processing. */
  readonly inProgress: ReadonlySet<string>;
  /** True once close() (or drain(), the kit's shutdown calling it) has begun. */
  readonly closing: boolean;
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
  let closing = false;
  const close = async (timeoutMs: number): Promise<WorkerCloseResult> => {
    closing = true;
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
  };
  return {
    inProgress,
    close,
    get closing() {
      return closing;
    },
    describe: () => `not taking new jobs; finishing ${inProgress.size} job(s) in progress`,
    drain: async (timeoutMs) => {
      const closed = await close(timeoutMs);
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
      return closed.jobsFinished;
    },
    outcome: (drained) => (drained ? "jobs in progress finished" : "jobs in progress cut off at the deadline"),
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
  // While stopping, Redis may be going down too (a terminal's Ctrl-C reaches redis-server as well),
  // and each reconnect attempt then fails the same way: one report of each error is enough.
  const reportedWhileStopping = new Set<string>();
  worker.on("error", (error) => {
    if (jobs.closing) {
      if (reportedWhileStopping.has(error.message)) return;
      reportedWhileStopping.add(error.message);
    }
    console.error("[worker]", error);
  });
  await worker.waitUntilReady();
  console.log(`worker ready on ${queueName}`);
  // The jobs first, then their runs (the cut-off ones' started runs included) are flushed with what is left.
  installShutdown({ timeoutMs: Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000), drain: [jobs] });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
