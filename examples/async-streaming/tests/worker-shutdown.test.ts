// worker.ts as a real process, Debian's redis-server as the broker, and a job
// whose model call never answers. A plain worker.close() waits for that job
// forever; SIGTERM must still end the worker at its shutdown deadline, and the
// job must not be lost: the worker is closed with force, the job's lock
// expires, and the next worker's stalled-job check puts it back in wait and
// finishes it, still in the producer's trace (the cut-off attempt's run stays
// there too, started and never ended).
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { Queue, QueueEvents } from "bullmq";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import {
  addTracedJob,
  currentRun,
  startProcess,
  startRedisServer,
  WORKER_SCRIPT,
  type RedisServer,
  type StartedProcess,
  type TracedJobData,
} from "../index.js";
import type { AnswerJob, AnswerResult } from "../worker.js";
import { isolateEnv, readProjectTraces, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

const PROJECT = "worker-shutdown";
const QUEUE = "answers-shutdown";

let stack: LocalStack;
let redis: RedisServer;
let queue: Queue<TracedJobData<AnswerJob>, AnswerResult>;
let events: QueueEvents;
const workers: StartedProcess[] = [];

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("producer", PROJECT));
  redis = await startRedisServer();
  const connection = { url: redis.url };
  queue = new Queue(QUEUE, { connection });
  events = new QueueEvents(QUEUE, { connection });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
});

after(async () => {
  // Killed here, not with stop(): stop() returns the first stop's promise, which a worker that
  // never exits on SIGTERM (the failure under test) never settles.
  for (const { child } of workers) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }
  await Promise.all([queue?.close(), events?.close()]);
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  await redis?.stop();
  await stack?.close();
});

/** A worker process; short lock and stalled-check intervals so a cut-off job is picked up again within seconds, not 30-60 s. */
async function startWorker(model: string): Promise<StartedProcess> {
  const worker = await startProcess(WORKER_SCRIPT, {
    env: {
      ...process.env,
      ...stack.env("queue-worker", PROJECT, {
        OPENAI_MODEL: model,
        REDIS_URL: redis.url,
        QUEUE_NAME: QUEUE,
        SHUTDOWN_TIMEOUT_MS: "2000",
        WORKER_LOCK_DURATION_MS: "1000",
        WORKER_STALLED_INTERVAL_MS: "500",
      }),
    },
    ready: /worker ready on (\S+)/,
  });
  workers.push(worker);
  return worker;
}

function nextActive(): Promise<string> {
  return new Promise((resolve) => {
    events.once("active", ({ jobId }) => resolve(jobId));
  });
}

const enqueue = traceable(
  async (question: string) => {
    const job = await addTracedJob(queue, "answer", { question });
    return { jobId: job.id ?? "", traceId: currentRun()?.trace_id ?? "" };
  },
  { name: "enqueue" },
);

// The guard turns "waits for the hung job forever" into a failure; the deadline under test is 2 s.
test("a worker with a hung job exits 0 on SIGTERM at its deadline, and the job is finished by the next worker in the producer's trace", { timeout: 60_000 }, async () => {
  // "+hang": the local model endpoint never answers this worker's model calls.
  const hung = await startWorker("gpt-4o-mini+hang");
  const active = nextActive();
  const { jobId, traceId } = await enqueue("Will this job survive the shutdown?");
  assert.equal(await active, jobId);

  const code = await hung.stop("SIGTERM");
  assert.equal(code, 0, hung.output());
  assert.match(hung.output(), /\[shutdown\] SIGTERM: not taking new jobs; finishing \d job\(s\) in progress within 1500 ms, then flushing traces \(budget 2000 ms, at least 500 ms for the flush\)/);
  assert.match(hung.output(), new RegExp(`\\[shutdown\\] job\\(s\\) ${jobId} still running at the deadline: worker closed with force`));
  assert.match(hung.output(), /\[shutdown\] jobs in progress cut off at the deadline; traces flushed in \d+ ms/);
  const cutOff = await queue.getJob(jobId);
  assert.ok(cutOff, "the job is still in the queue");
  assert.equal(await cutOff.getState(), "active", "left active, holding its lock until it expires");

  const next = await startWorker("gpt-4o-mini");
  const result = await cutOff.waitUntilFinished(events, 30_000);
  assert.match(result.answer, /\S/);
  assert.equal(result.trace_id, traceId, "the retried job continues the producer's trace");
  const finished = await queue.getJob(jobId);
  assert.equal(finished?.stalledCounter, 1, "it came back through the stalled-job check");
  assert.equal(await next.stop("SIGTERM"), 0, next.output());
  assert.match(next.output(), /finishing 0 job\(s\) in progress/);
  assert.doesNotMatch(next.output(), /closed with force/);

  // Both attempts are in the producer's trace, as siblings: the cut-off one started and never ended.
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  const runs = (await readProjectTraces(new Client({ apiUrl: stack.traces.url, apiKey: "local" }), PROJECT)).get(traceId) ?? [];
  const enqueueRun = runs.find((run) => run.name === "enqueue");
  const attempts = runs.filter((run) => run.name === `process ${QUEUE}/answer`);
  assert.deepEqual(attempts.map((run) => run.parent_run_id), [enqueueRun?.id, enqueueRun?.id]);
  assert.deepEqual(attempts.map((run) => Boolean(run.end_time)).sort(), [false, true]);
});
