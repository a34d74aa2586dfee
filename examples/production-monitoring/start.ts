// `npm run example:production-monitoring`: the local stack (reused if running,
// else started here), the accounts and assistant services, a Prometheus
// scraping both with this example's rules, and load so the graphs move. Prints
// where everything is; Ctrl-C stops it all, services first so they flush.
//
//   -- --load 60     load for 60 s after start (default 30; --load 0: none)
//   -- --once        20 s of load (or --load's), the PromQL figures, then stop
//   -- --screenshot docs/images/production-monitoring-prometheus.png   after the load, the graphs as PNG
//
// Sampling for the demo: TRACE_SAMPLE_RATE=0.25 and TRACE_SLOW_MS=1500 unless set.
import { join } from "node:path";
import { ensureLocalStack, findRepoRoot } from "@tracing-patterns/setup";
import { graphUrl, startPrometheus } from "./harness/prometheus.js";
import { screenshotGraphs } from "./harness/screenshot.js";
import { SERVICE_NAMES, startServices } from "./launch.js";
import { runLoad } from "./load.js";

const args = process.argv.slice(2);
const once = args.includes("--once");
const loadIndex = args.indexOf("--load");
const loadSeconds = loadIndex >= 0 ? Number(args[loadIndex + 1] ?? 30) : once ? 20 : 30;
const screenshotIndex = args.indexOf("--screenshot");
const screenshotPath = screenshotIndex >= 0 ? args[screenshotIndex + 1] : undefined;
if (!Number.isFinite(loadSeconds) || loadSeconds < 0 || (screenshotIndex >= 0 && !screenshotPath)) {
  console.error("usage: start.ts [--load <seconds>] [--once] [--screenshot <file.png>]");
  process.exit(2);
}

const root = findRepoRoot();
const stack = await ensureLocalStack({ dbPath: process.env.TRACE_SERVER_DB ?? (root ? join(root, ".data", "traces.sqlite") : undefined) });
const services = await startServices({
  env: {
    ...process.env,
    DEMO_FAULTS: "true",
    LANGSMITH_FAILED_TRACES_DIR: process.env.LANGSMITH_FAILED_TRACES_DIR ?? join(root ?? ".", ".data", "failed-traces"),
    TRACE_REPLAY_INTERVAL_MS: process.env.TRACE_REPLAY_INTERVAL_MS ?? "10000",
    // A quarter sampled in; of the rest, the failing and the slow ones kept by the tail decision.
    TRACE_SAMPLE_RATE: process.env.TRACE_SAMPLE_RATE ?? "0.25",
    TRACE_SLOW_MS: process.env.TRACE_SLOW_MS ?? "1500",
  },
  ports: { assistant: Number(process.env.ASSISTANT_PORT ?? 4100), accounts: Number(process.env.ACCOUNTS_PORT ?? 4101) },
  onOutput: (service, line) => {
    if (line.length > 0 && !line.startsWith(`${service} listening on`)) console.log(`[${service}] ${line}`);
  },
}).catch(async (error: unknown) => {
  await stack.stop();
  throw error;
});
const prom = await startPrometheus({ targets: { services: [services.urls.assistant, services.urls.accounts] } }).catch(async (error: unknown) => {
  await services.stop();
  await stack.stop();
  throw error;
});

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const codes = await services.stop();
  await prom.stop();
  await stack.stop();
  const failed = Object.values(codes).some((c) => c !== 0);
  if (failed) console.error(`exit codes: ${JSON.stringify(codes)}`);
  process.exit(failed ? 1 : code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
for (const service of SERVICE_NAMES) {
  services.processes[service].child.once("exit", (code, signal) => {
    if (stopping) return;
    console.error(`${service} exited unexpectedly (${code ?? signal}); stopping the rest`);
    void shutdown(1);
  });
}

const GRAPHS = [
  'sum by (service, status) (rate(http_requests_total{route!="unmatched"}[30s]))',
  'sum by (decision) (rate(langsmith_sampling_decisions_total{service="assistant"}[30s]))',
  "sum by (service, reason) (rate(langsmith_tail_kept_total[30s]))",
  "sum by (service, op) (rate(langsmith_export_runs_total[30s]))",
  "sum by (service, outcome) (rate(langsmith_export_requests_total[30s]))",
];
console.log("");
console.log(`${"assistant".padEnd(11)} ${services.urls.assistant.padEnd(24)} POST /chat, GET /metrics`);
console.log(`${"accounts".padEnd(11)} ${services.urls.accounts.padEnd(24)} GET /accounts/:id, GET /metrics`);
console.log(`${"prometheus".padEnd(11)} ${prom.url.padEnd(24)} rules: prometheus/rules.yml, alerts at ${prom.url}/alerts`);
if (stack.traceServerUrl) console.log(`${"traces".padEnd(11)} ${stack.traceServerUrl.padEnd(24)} viewer at /`);
if (stack.modelUrl) console.log(`${"model".padEnd(11)} ${stack.modelUrl.padEnd(24)}`);
console.log(`\nGraphs: ${graphUrl(prom.url, GRAPHS)}\n`);

let answered = 0;
if (loadSeconds > 0) {
  console.log(`load: ${loadSeconds} s of mixed requests (normal, streamed, slow, failing) ...`);
  const summary = await runLoad({ url: services.urls.assistant, durationSeconds: loadSeconds });
  answered = summary.requests;
  console.log(`load: ${JSON.stringify(summary)}`);
}

if (screenshotPath) {
  // A scrape after the load, so its last seconds are on the graphs.
  const loadEnded = Date.now() / 1000;
  await prom.waitFor('min(timestamp(up{job="services"}))', (v) => v !== undefined && v > loadEnded + 1);
  // Requests by status, what the tail decision kept and why, and the runs each service exported.
  const pictured = [GRAPHS[0]!, GRAPHS[2]!, GRAPHS[3]!];
  await screenshotGraphs(graphUrl(prom.url, pictured, `${Math.max(1, Math.ceil(loadSeconds / 60))}m`), screenshotPath);
  console.log(`screenshot: ${screenshotPath}`);
}

if (once) {
  // Until Prometheus has scraped every answered request (it scrapes every second).
  const served = await prom.waitFor('sum(http_requests_total{service="assistant",route="/chat"})', (v) => v !== undefined && v >= answered);
  const show = async (label: string, promql: string): Promise<void> => {
    const samples = await prom.query(promql);
    const text = samples.map((s) => `${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(",") || "value"} ${s.value}`).join("  ");
    console.log(`${label.padEnd(34)} ${text || "(none)"}`);
  };
  console.log(`\nPromQL after the load (assistant served ${served} chat requests):`);
  await show("requests by status", 'sum by (status) (http_requests_total{service="assistant",route="/chat"})');
  await show("traces started", "sum by (service) (langsmith_traces_started_total)");
  await show("sampling decisions (assistant)", 'sum by (decision) (langsmith_sampling_decisions_total{service="assistant"})');
  await show("tail kept by reason", "sum by (service, reason) (langsmith_tail_kept_total)");
  await show("tail discarded", "sum by (service) (langsmith_tail_discarded_total)");
  await show("runs exported (create/update)", "sum by (service, op) (langsmith_export_runs_total)");
  await show("upload attempts by outcome", "sum by (service, outcome) (langsmith_export_requests_total)");
  await show("saved batches pending replay", "sum by (service) (langsmith_failed_batches_pending)");
  await show("p99 /chat latency (s), last 1m", 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route="/chat"}[1m])))');
  await shutdown(0);
} else {
  console.log("Ctrl-C stops everything.");
}
