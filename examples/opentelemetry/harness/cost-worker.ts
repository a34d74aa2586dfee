// One side of the OTel-mode-against-native cost measurement, in a process of its own so that each
// mode has a clean SDK and OpenTelemetry global state. Started by cost.ts (measureTracingCost):
//
//   TRACING_MODE=native|otel CALLS=200 LANGSMITH_ENDPOINT=... LANGSMITH_API_KEY=... LANGSMITH_PROJECT=...
//   node --import tsx cost-worker.ts     -> prints one JSON line (CostSample) and exits
//
// The workload is the same in both modes and does no I/O of its own: a traceable request with a
// retriever child and an llm child (fixed documents, a fixed answer with token usage), so what is
// measured is tracing: building runs, serialising and sending them. Calls run one after another;
// wall time is the loop's, CPU time the loop's plus the final flush's (serialisation and upload
// happen in the background, so most of it lands there).
import { performance } from "node:perf_hooks";
import { initializeOTEL } from "langsmith/experimental/otel/setup";
import { Client } from "langsmith";
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { currentOtelRunId } from "../langsmith-otel.js";

const mode = process.env.TRACING_MODE === "otel" ? "otel" : "native";
const calls = Math.max(1, Number(process.env.CALLS ?? 200) || 200);
const endpoint = (process.env.LANGSMITH_ENDPOINT ?? "http://127.0.0.1:1984").replace(/\/$/, "");
const processor =
  mode === "otel"
    ? initializeOTEL({
        exporterConfig: {
          url: `${endpoint}/otel/v1/traces`,
          headers: { "x-api-key": process.env.LANGSMITH_API_KEY ?? "", "Langsmith-Project": process.env.LANGSMITH_PROJECT ?? "default" },
        },
      }).DEFAULT_LANGSMITH_SPAN_PROCESSOR
    : undefined;
// The SDK calls its native mode "langsmith".
const client = new Client({ tracingMode: mode === "otel" ? "otel" : "langsmith" });

const documents = Array.from({ length: 3 }, (_, i) => ({ id: `doc-${i}`, text: `Document ${i}: ${"tracing costs what it sends. ".repeat(6)}` }));
const retrieve = traceable(async (query: string) => documents.map((d) => ({ ...d, query })), { name: "retrieve", run_type: "retriever", client });
const callModel = traceable(
  async (messages: Array<{ role: string; content: string }>) => ({
    content: `An answer to: ${messages.at(-1)?.content ?? ""}`,
    usage_metadata: { input_tokens: 120, output_tokens: 40, total_tokens: 160 },
  }),
  { name: "call_model", run_type: "llm", client },
);
let lastTraceId = "";
const handle = traceable(
  async (question: string) => {
    lastTraceId = (mode === "otel" ? currentOtelRunId() : getCurrentRunTree().trace_id) ?? "";
    const docs = await retrieve(question);
    return callModel([{ role: "system", content: docs.map((d) => d.text).join("\n") }, { role: "user", content: question }]);
  },
  { name: "handle_request", client },
);

async function flush(): Promise<void> {
  await client.awaitPendingTraceBatches();
  await processor?.forceFlush();
}

const WARM_UP = 10;
for (let i = 0; i < WARM_UP; i++) await handle(`warm-up ${i}`);
await flush();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < calls; i++) await handle(`question ${i}`);
const t1 = performance.now();
await flush();
const t2 = performance.now();
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    mode,
    calls,
    tracedCalls: calls + WARM_UP,
    wallMsPerCall: (t1 - t0) / calls,
    cpuMsPerCall: (cpu.user + cpu.system) / 1000 / calls,
    flushMs: t2 - t1,
    lastTraceId,
  }),
);
await processor?.shutdown();
process.exit(0);
