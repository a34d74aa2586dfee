// `npm run example:async-streaming`: everything this example needs, as real
// processes (the local trace server and model endpoint, redis-server, the chat
// service, the queue worker), then one streamed answer over SSE and one answer
// through the queue, and the two traces they made. `--once` exits after
// printing them; otherwise the services stay up until Ctrl-C. What the chat
// service and the worker print (warnings, their shutdown reports) is shown
// with a [chat] or [worker] prefix.
import { Queue, QueueEvents } from "bullmq";
import { traceable } from "langsmith/traceable";
import { ensureLocalStack, flushTraces, readTrace, renderTraceText, setServiceName, traceUrl } from "@tracing-patterns/setup";
import { addTracedJob, chatStreamClient, SERVER_SCRIPT, startProcess, startRedisServer, WORKER_SCRIPT, type TracedJobData } from "./index.js";
import type { AnswerJob, AnswerResult } from "./worker.js";

setServiceName("client");
const stack = await ensureLocalStack();
const redis = await startRedisServer();
// The local model pauses between tokens so the stream is visible as one; a real model needs no help.
const model = stack.config.model.provider === "local" ? { OPENAI_MODEL: `${stack.config.model.name}+token-delay-30` } : {};
const CHAT_READY = /chat listening on (\S+)/;
const WORKER_READY = /worker ready on (\S+)/;
// Their warnings, errors and shutdown reports, prefixed; the ready lines are summed up below instead.
const echo =
  (name: string, ready: RegExp) =>
  (line: string): void => {
    if (line !== "" && !ready.test(line)) console.log(`[${name}] ${line}`);
  };
const chat = await startProcess(SERVER_SCRIPT, {
  env: { ...process.env, ...model, LANGSMITH_SERVICE: "chat" },
  ready: CHAT_READY,
  onOutput: echo("chat", CHAT_READY),
});
const worker = await startProcess(WORKER_SCRIPT, {
  env: { ...process.env, LANGSMITH_SERVICE: "queue-worker", REDIS_URL: redis.url, QUEUE_NAME: "answers" },
  ready: WORKER_READY,
  onOutput: echo("worker", WORKER_READY),
});
const queue = new Queue<TracedJobData<AnswerJob>, AnswerResult>("answers", { connection: { url: redis.url } });
const events = new QueueEvents("answers", { connection: { url: redis.url } });
await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
console.log(`chat service ${chat.ready} · queue worker on "${worker.ready}" · redis ${redis.url} · traces ${stack.viewerUrl ?? "(LangSmith)"}\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  // Ctrl-C under npm arrives twice (the terminal's and npm's forward): one stop is enough.
  if (stopping) return;
  stopping = true;
  await Promise.all([queue.close(), events.close()]);
  // Both children flush their runs on SIGTERM before exiting; after a terminal's Ctrl-C they are
  // already stopping (it reached them too), and this second signal changes nothing.
  await Promise.all([chat.stop(), worker.stop()]);
  await redis.stop();
  await flushTraces({ timeoutMs: 10_000 });
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

const readChat = chatStreamClient(`${chat.ready}/chat/stream`);
const traceIds: string[] = [];

const askStreaming = traceable(
  async (question: string) => {
    let text = "";
    for await (const token of readChat({ question })) {
      process.stdout.write(token);
      text += token;
    }
    process.stdout.write("\n");
    return { text };
  },
  { name: "ask_streaming", on_start: (run) => run && traceIds.push(run.trace_id) },
);

const askViaQueue = traceable(
  async (question: string) => {
    const job = await addTracedJob(queue, "answer", { question });
    const result = await job.waitUntilFinished(events, 30_000);
    console.log(result.answer);
    return result;
  },
  { name: "ask_via_queue", on_start: (run) => run && traceIds.push(run.trace_id) },
);

try {
  await askStreaming("Why does a token stream need tracing on both sides?");
  await askViaQueue("Which process answered this question?");
  for (const [traceId, expectRuns] of [[traceIds[0], 5], [traceIds[1], 4]] as const) {
    if (!traceId) continue;
    console.log(`\n${renderTraceText(await readTrace(traceId, { expectRuns }))}`);
    if (stack.viewerUrl) console.log(`viewer: ${traceUrl(traceId, stack.viewerUrl)}`);
  }
} catch (error) {
  // Ctrl-C during the demo stops the services under it; stop() then ends this process.
  if (!stopping) throw error;
}

if (!stopping) {
  if (process.argv.includes("--once")) {
    await stop();
  } else {
    console.log(`\nTry: curl -N -X POST ${chat.ready}/chat/stream -H 'content-type: application/json' -d '{"question":"what is SSE?"}'`);
    console.log("Ctrl-C to stop.");
  }
}
