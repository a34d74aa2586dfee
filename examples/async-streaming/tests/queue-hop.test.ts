// A queue hop between processes through a real broker: this test process is
// the producer, worker.ts a BullMQ worker in another process, Debian's
// redis-server (started here on a free port) the broker. Every scenario runs
// first; then the worker is stopped (which flushes its runs) and everything is
// read back through the SDK once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Queue, QueueEvents } from "bullmq";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { formatReport, verifyTrace } from "@tracing-patterns/setup";
import {
  addTracedJob,
  currentRun,
  pingRedis,
  startProcess,
  startRedisServer,
  WORKER_SCRIPT,
  type RedisServer,
  type StartedProcess,
  type TracedJobData,
} from "../index.js";
import type { AnswerJob, AnswerResult } from "../worker.js";
import { byName, isolateEnv, metadataOf, readProjectTraces, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

const PROJECT = "queue-hop";
const QUEUE = "answers";

let stack: LocalStack;
let redis: RedisServer;
let worker: StartedProcess;
let queue: Queue<TracedJobData<AnswerJob>, AnswerResult>;
let events: QueueEvents;
let traces: Map<string, Run[]>;

// What the scenarios produced, checked by the tests below.
const connected: Array<{ traceId: string; question: string; answer: string }> = [];
const fireAndForget = { traceId: "", jobId: "", question: "Fire and forget: who waits for this job?" };
const untraced: Array<{ question: string; answer: string }> = [];
const malformed: Array<{ question: string; reason: string; answer: string }> = [];

const handleRequest = traceable(
  async (input: { question: string }) => {
    const job = await addTracedJob(queue, "answer", { question: input.question });
    const result = await job.waitUntilFinished(events, 30_000);
    connected.push({ traceId: currentRun()?.trace_id ?? "", question: input.question, answer: result.answer });
    return result;
  },
  { name: "handle_request" },
);

const acceptUpload = traceable(
  async (input: { question: string }) => {
    fireAndForget.traceId = currentRun()?.trace_id ?? "";
    // A delayed job: the request returns now, the worker runs the job 300 ms later.
    const job = await addTracedJob(queue, "answer", { question: input.question }, { delay: 300 });
    fireAndForget.jobId = job.id ?? "";
    return { job_id: job.id };
  },
  { name: "accept_upload" },
);

/** Adds raw job data (no envelope discipline) and waits for the worker's answer. */
async function addRaw(data: unknown): Promise<AnswerResult> {
  const job = await queue.add("answer", data as TracedJobData<AnswerJob>);
  return job.waitUntilFinished(events, 30_000);
}

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("producer", PROJECT));
  redis = await startRedisServer();
  worker = await startProcess(WORKER_SCRIPT, {
    env: { ...process.env, ...stack.env("queue-worker", PROJECT), REDIS_URL: redis.url, QUEUE_NAME: QUEUE, WORKER_CONCURRENCY: "8" },
    ready: /worker ready on (\S+)/,
  });
  const connection = { url: redis.url };
  queue = new Queue(QUEUE, { connection });
  events = new QueueEvents(QUEUE, { connection });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  // Every job waiting in waitUntilFinished listens for the queue closing.
  queue.setMaxListeners(64);

  // 40 traced requests at once, each waiting for its own job: the worker runs 8 at a time.
  await Promise.all(Array.from({ length: 40 }, (_, i) => handleRequest({ question: `Request ${i}: which queue carried me?` })));
  await acceptUpload({ question: fireAndForget.question });
  await new Promise<void>((resolve) => {
    const done = ({ jobId }: { jobId: string }): void => {
      if (jobId === fireAndForget.jobId) {
        events.off("completed", done);
        resolve();
      }
    };
    events.on("completed", done);
  });

  const withoutContext: Array<[string, unknown]> = [
    ["An envelope without metadata.", { payload: { question: "An envelope without metadata." } }],
    ["Not an envelope at all.", { question: "Not an envelope at all." }],
  ];
  for (const [question, data] of withoutContext) untraced.push({ question, answer: (await addRaw(data)).answer });
  const bad: Array<[string, unknown]> = [
    ["trace-header-malformed", { "langsmith-trace": "not-a-dotted-order" }],
    ["metadata-not-an-object", "langsmith-trace=20250101T000000000000Z0193f1e2-7a6b-7c3d-8e9f-0123456789ab"],
    ["trace-context-not-a-string", { "langsmith-trace": 42 }],
    ["baggage-bad-encoding", { "langsmith-trace": "20250101T000000000000Z0193f1e2-7a6b-7c3d-8e9f-0123456789ab", baggage: "langsmith-metadata=%E0%A4%A" }],
  ];
  for (const [reason, metadata] of bad) {
    const question = `Malformed context (${reason}).`;
    const result = await addRaw({ payload: { question }, metadata });
    malformed.push({ question, reason, answer: result.answer });
  }

  await Promise.all([queue.close(), events.close()]);
  assert.equal(await worker.stop(), 0, worker.output());
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  traces = await readProjectTraces(new Client({ apiUrl: stack.traces.url, apiKey: "local" }), PROJECT);
});

after(async () => {
  await worker?.stop("SIGKILL");
  await redis?.stop();
  await stack?.close();
});

/** The trace whose root has `question` among its inputs (roots started by the worker record the payload). */
function traceOfRoot(question: string): Run[] {
  for (const runs of traces.values()) {
    const root = runs.find((r) => !r.parent_run_id);
    if (root && JSON.stringify(root.inputs).includes(question)) return runs;
  }
  throw new Error(`no trace has a root for ${JSON.stringify(question)}`);
}

describe("a job carrying the producer's trace context", () => {
  test("makes one connected trace across the producer and the worker process, for each of 40 concurrent requests", () => {
    assert.equal(connected.length, 40);
    const failures: string[] = [];
    for (const { traceId, question, answer } of connected) {
      const runs = traces.get(traceId) ?? [];
      const report = verifyTrace(runs, {
        traceId,
        rootName: "handle_request",
        runNames: ["handle_request", `process ${QUEUE}/answer`, "answer_job", "ChatOpenAI"],
        services: ["producer", "queue-worker"],
      });
      if (!report.ok || runs.length !== 4) failures.push(formatReport(report));
      const processRun = runs.find((r) => r.name === `process ${QUEUE}/answer`);
      if (!processRun) continue;
      // Isolation: the worker's run in this trace handled this request's job and nothing else.
      if ((processRun.inputs as { payload?: AnswerJob }).payload?.question !== question) failures.push(`${traceId}: the worker run handled another job`);
      if (!answer.includes(question)) failures.push(`${traceId}: the answer is not for this question`);
      const md = metadataOf(processRun);
      if (md["trace.inbound"] !== "continued" || typeof md["queue.wait_ms"] !== "number" || md["messaging.system"] !== "bullmq") {
        failures.push(`${traceId}: process run metadata ${JSON.stringify(md)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test("fire-and-forget: still one connected trace, and the worker's run outlives the producer's", () => {
    const runs = traces.get(fireAndForget.traceId) ?? [];
    const expectations = { traceId: fireAndForget.traceId, rootName: "accept_upload", services: ["producer", "queue-worker"], minRuns: 4 };
    const strict = verifyTrace(runs, expectations);
    // The only finding is the time window: the job finished after the request had returned.
    assert.ok(strict.problems.length > 0, formatReport(strict));
    for (const problem of strict.problems) assert.match(problem, /ends .* after its parent "accept_upload"/);
    const relaxed = verifyTrace(runs, { ...expectations, skewMs: Number.POSITIVE_INFINITY });
    assert.ok(relaxed.ok, formatReport(relaxed));
    assert.equal(relaxed.completeness, 100);
    assert.ok(Number(metadataOf(byName(runs, `process ${QUEUE}/answer`))["queue.wait_ms"]) >= 300);
  });
});

describe("a job without usable trace context", () => {
  test("without any context: the worker starts a new root and completes the job, with no warning", () => {
    assert.equal(untraced.length, 2);
    for (const { question, answer } of untraced) {
      assert.ok(answer.includes(question));
      const runs = traceOfRoot(question);
      const root = byName(runs, `process ${QUEUE}/answer`);
      assert.equal(root.parent_run_id ?? undefined, undefined);
      assert.equal(metadataOf(root)["trace.inbound"], "none");
      const report = verifyTrace(runs, { rootName: `process ${QUEUE}/answer`, services: ["queue-worker"], minRuns: 3 });
      assert.ok(report.ok, formatReport(report));
    }
    assert.doesNotMatch(worker.output(), /unusable \(none\)/);
  });

  test("with malformed context: a new root, the reason recorded, a warning logged, and the job still succeeds", () => {
    assert.equal(malformed.length, 4);
    for (const { question, reason, answer } of malformed) {
      assert.ok(answer.includes(question));
      const runs = traceOfRoot(question);
      const root = byName(runs, `process ${QUEUE}/answer`);
      assert.equal(root.parent_run_id ?? undefined, undefined);
      assert.equal(root.error ?? undefined, undefined);
      assert.equal(metadataOf(root)["trace.inbound"], "restarted");
      assert.equal(metadataOf(root)["trace.inbound_reason"], reason);
      assert.match(worker.output(), new RegExp(`\\[langsmith-queue\\] Started a new trace .*\\(${reason}\\)`));
      // The forged parent id in the message was not followed.
      assert.ok(!runs.some((r) => r.trace_id === "0193f1e2-7a6b-7c3d-8e9f-0123456789ab"));
    }
  });
});

describe("the redis-server helper", () => {
  test("answers PING on a loopback port and is gone after stop()", async () => {
    const extra = await startRedisServer();
    assert.match(extra.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(extra.port, redis.port);
    await pingRedis(extra.url);
    await extra.stop();
    await assert.rejects(pingRedis(extra.url));
  });
});
