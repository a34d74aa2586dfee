// One service of notebook 05 (and tests/production-sampling.test.ts), run as a child process, once
// per service of a request's path: express, the kit's middleware, a traced step, and, with
// NEXT_URL, a traced call to the next service.
//   LANGSMITH_SERVICE=front NEXT_URL=http://127.0.0.1:<port> LANGSMITH_TRACING_SAMPLING_RATE=0.3 \
//     node --conditions=source --import tsx notebooks/services/production-service.ts
// Prints "<service> listening on <url>". POST /work answers { service, downstream } after WORK_MS
// (default 20) of traced work; GET /stats answers this process's CPU time and memory.
//   TRUST=edge|mesh          the middleware's trust (default mesh; the first service is the edge)
//   SHUTDOWN=kit|none        kit: installShutdown drains requests and flushes on SIGTERM (default);
//                            none: Node's default, the process dies at once
//   SHUTDOWN_TIMEOUT_MS=<ms> the shutdown budget (default 10000)
//   TRACE_MAX_RETRIES=<n>    the SDK client's retries per batch (the SDK's default otherwise)
//   LOG_REQUESTS=true        prints "started <request_id>" when a request's work starts
//   LANGSMITH_FAILED_TRACES_DIR, LANGSMITH_TRACING_SAMPLING_RATE, LANGSMITH_ENDPOINT, ...: read by
//                            the SDK's Client as usual
import express from "express";
import { Client } from "langsmith";
import { traceable } from "langsmith/traceable";
import { installShutdown, jsonErrors, langsmithTracing, tracedFetch } from "@tracing-patterns/kit";

const service = process.env.LANGSMITH_SERVICE ?? "service";
const next = process.env.NEXT_URL;
const workMs = Number(process.env.WORK_MS ?? 20);
const retries = process.env.TRACE_MAX_RETRIES;
const client = new Client(retries === undefined ? {} : { callerOptions: { maxRetries: Number(retries) } });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const work = traceable(
  async (input: { request_id: string }) => {
    await sleep(workMs);
    return { request_id: input.request_id, service };
  },
  { name: `${service}_work` },
);

const callNext = traceable(
  async (input: { request_id: string }) => {
    const response = await tracedFetch(`${next}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
    if (!response.ok) throw new Error(`${next} answered ${response.status}`);
    return response.json();
  },
  { name: "call_next", run_type: "tool" },
);

const app = express();
app.get("/stats", (_req, res) => {
  const cpu = process.cpuUsage();
  res.json({ cpu_ms: (cpu.user + cpu.system) / 1000, rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20) });
});
app.use(langsmithTracing({ client, service, trust: process.env.TRUST === "edge" ? "edge" : "mesh" }));
app.use(express.json());
app.post("/work", async (req, res) => {
  const input = { request_id: String(req.body?.request_id ?? "") };
  if (process.env.LOG_REQUESTS === "true") console.log(`started ${input.request_id}`);
  await work(input);
  res.json({ service, downstream: next ? await callNext(input) : null });
});
app.use(jsonErrors({ service }));

const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(`${service} listening on http://127.0.0.1:${port}`);
});
if (process.env.SHUTDOWN !== "none") installShutdown({ timeoutMs: Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000), drain: [server], client });
