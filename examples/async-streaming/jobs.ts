/**
 * The queue-context pattern on BullMQ. A job's data is an envelope,
 * `{ payload, metadata }`, and `metadata` carries the trace context the way a
 * header would: the payload stays exactly what the handler expects.
 *
 *   const queue = new Queue<TracedJobData<Question>>("answers", { connection });
 *   await addTracedJob(queue, "answer", { question });              // producer
 *   new Worker("answers", tracedProcessor(answer), { connection });  // consumer
 */
import type { Job, JobsOptions, Processor, Queue } from "bullmq";
import { continueTrace, injectTraceContext, type ContinueTraceOptions, type TraceCarrier } from "./queue-context.js";

export interface TracedJobData<T> {
  payload: T;
  /** Absent on jobs from producers that do not trace: the consumer then starts a root. */
  metadata?: TraceCarrier;
}

/**
 * `queue.add` with the current run's trace context in the job's metadata. Call
 * it inside the run the job belongs to (a traced request, a traceable step);
 * the consumer's run becomes that run's child.
 */
export function addTracedJob<T, R>(queue: Queue<TracedJobData<T>, R>, name: string, payload: T, opts?: JobsOptions): Promise<Job<TracedJobData<T>, R>> {
  return queue.add(name, { payload, metadata: injectTraceContext() }, opts);
}

export type TracedProcessorOptions = Omit<ContinueTraceOptions, "name" | "inputs" | "metadata"> & {
  /** Default: "process <queue>/<job name>". */
  runName?: (job: Job) => string;
  metadata?: Record<string, unknown>;
};

/**
 * Wraps a job handler as a BullMQ processor whose run continues the producer's
 * trace. The run records the queue, job id, attempt and how long the job waited
 * (`queue.wait_ms`, measured against the producer's clock, so only as good as
 * the two clocks agree). The handler's errors are rethrown, so BullMQ's retries
 * and failed-job handling work as without tracing; each attempt is its own run.
 */
export function tracedProcessor<T, R>(
  handler: (payload: T, job: Job<TracedJobData<T>, R>) => Promise<R>,
  options: TracedProcessorOptions = {},
): Processor<TracedJobData<T>, R> {
  const { runName, metadata, ...rest } = options;
  return (job) => {
    // Data from the queue is untyped at runtime: a job added by other code may not be an envelope.
    const data: unknown = job.data;
    const envelope = typeof data === "object" && data !== null && "payload" in data ? (data as TracedJobData<T>) : undefined;
    return continueTrace(
      envelope?.metadata,
      {
        ...rest,
        name: runName ? runName(job) : `process ${job.queueName}/${job.name}`,
        inputs: { payload: envelope ? envelope.payload : data },
        metadata: {
          ...metadata,
          "messaging.system": "bullmq",
          "messaging.destination": job.queueName,
          "messaging.message_id": job.id,
          "messaging.attempt": job.attemptsMade + 1,
          "queue.wait_ms": Math.max(0, Date.now() - job.timestamp),
        },
      },
      () => handler(envelope ? envelope.payload : (data as T), job),
    );
  };
}
