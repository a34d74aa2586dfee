// One service of notebook 05 (and tests/production-sampling.test.ts), run as a child process, once
// per service of a request's path: express, the kit's middleware, a traced step, and, with
// NEXT_URL, a traced call to the next service.
//   LANGSMITH_SERVICE=front NEXT_URL=http://127.0.0.1:<port> LANGSMITH_TRACING_SAMPLING_RATE=0.3 \
//     node --conditions=source --import tsx notebooks/services/production-service.ts
// Prints "<service> listening on <url>". POST /work answers { service, downstream } after WORK_MS
// (default 20) of traced work; GET /stats answers this process's CPU time, memory and, with a
// sampler, its stats(), which it also prints at exit as "sampling stats <json>" (final: notices and
// releases are settled by then). A request body can ask for trouble: { request_id, fail_in: "<service>" }
// makes that service's step throw (500), { slow_in: "<service>" } makes it take SLOW_WORK_MS (600).
//   TRUST=edge|mesh          the middleware's trust (default mesh; the first service is the edge)
//   SHUTDOWN=kit|none        kit: installShutdown drains requests and flushes on SIGTERM (default);
//                            none: Node's default, the process dies at once
//   SHUTDOWN_TIMEOUT_MS=<ms> the shutdown budget (default 10000)
//   TRACE_MAX_RETRIES=<n>    the SDK client's retries per batch (the SDK's default otherwise)
//   LOG_REQUESTS=true        prints "started <request_id>" when a request's work starts
//   SAMPLE_RATE=<0..1>       the kit's sampler (createSampler) instead of the SDK's rate: the edge
//                            decides, the others follow the decision they receive; steps use `traced`
//   TAIL_SLOW_MS=<ms>        with SAMPLE_RATE: requests not sampled in are held, and kept when they
//                            fail or take longer than this, on every service they crossed
//   LANGSMITH_FAILED_TRACES_DIR, LANGSMITH_TRACING_SAMPLING_RATE, LANGSMITH_ENDPOINT, ...: read by
//                            the SDK's Client as usual
import express from "express";
import { Client } from "langsmith";
import { traceable } from "langsmith/traceable";
import { createSampler, installShutdown, jsonErrors, langsmithTracing, traced, tracedFetch } from "@tracing-patterns/kit";

const service = process.env.LANGSMITH_SERVICE ?? "service";
const next = process.env.NEXT_URL;
const workMs = Number(process.env.WORK_MS ?? 20);
const retries = process.env.TRACE_MAX_RETRIES;
const clientConfig = retries === undefined ? {} : { callerOptions: { maxRetries: Number(retries) } };
const tailSlowMs = process.env.TAIL_SLOW_MS;
const sampler =
  process.env.SAMPLE_RATE === undefined
    ? undefined
    : createSampler({ rate: Number(process.env.SAMPLE_RATE), tail: tailSlowMs === undefined ? undefined : { slowMs: Number(tailSlowMs) }, clientConfig });
const client = sampler?.client ?? new Client(clientConfig);
// traced skips traceable's per-call cost on a request the sampler dropped.
const wrap = sampler === undefined ? traceable : traced;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Work {
  request_id: string;
  fail_in?: string;
  slow_in?: string;
}

const work = wrap(
  async (input: Work) => {
    await sleep(input.slow_in === service ? Number(process.env.SLOW_WORK_MS ?? 600) : workMs);
    if (input.fail_in === service) throw new Error(`${service} failed on purpose (fail_in)`);
    return { request_id: input.request_id, service };
  },
  { name: `${service}_work` },
);

const callNext = wrap(
  async (input: Work) => {
    const response = await tracedFetch(`${next}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
    if (!response.ok) throw new Error(`${next} answered ${response.status}`);
    return response.json();
  },
  { name: "call_next", run_type: "tool" },
);

const app = express();
app.get("/stats", (_req, res) => {
  const cpu = process.cpuUsage();
  res.json({ cpu_ms: (cpu.user + cpu.system) / 1000, rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), sampling: sampler?.stats() });
});
const trust = process.env.TRUST === "edge" ? "edge" : "mesh";
app.use(langsmithTracing(sampler === undefined ? { client, service, trust } : { sampling: sampler, service, trust }));
app.use(express.json());
app.post("/work", async (req, res) => {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const input: Work = { request_id: String(body.request_id ?? "") };
  if (typeof body.fail_in === "string") input.fail_in = body.fail_in;
  if (typeof body.slow_in === "string") input.slow_in = body.slow_in;
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
// After the shutdown's flush, which waits for the keep notices and releases still in flight.
if (sampler !== undefined) process.once("exit", () => console.log(`sampling stats ${JSON.stringify(sampler.stats())}`));
