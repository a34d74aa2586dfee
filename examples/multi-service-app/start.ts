// `npm run example:multi-service`: the local stack (reused if it is already
// running, else started in this process, which then keeps it alive), the
// four services as child processes, and where to find them. Ctrl-C stops
// everything, services first so they flush their runs.
//
// `npm run example:multi-service -- --once`: one request, its trace as text, then stop.
import { join } from "node:path";
import { assertTrace, ensureLocalStack, findRepoRoot, formatReport, readTrace, renderTraceText, traceUrl } from "@tracing-patterns/setup";
import { SERVICE_NAMES, startServices, type ServiceName } from "./launch.js";
import { DEMO_API_KEYS, parseApiKeys } from "./services/edge.js";

const once = process.argv.includes("--once");
const root = findRepoRoot();
const stack = await ensureLocalStack({
  // Same database as `npm start`, so its viewer shows these traces later too.
  dbPath: process.env.TRACE_SERVER_DB ?? (root ? join(root, ".data", "traces.sqlite") : undefined),
});

const ROUTES: Record<ServiceName, string> = {
  gateway: "POST /chat  (public, needs x-api-key)",
  orchestrator: "POST /answer",
  retrieval: "POST /search",
  llm: "POST /generate",
};

let stopping = false;
const services = await startServices({
  onOutput: (service, line) => {
    if (line.length > 0 && !line.startsWith(`${service} listening on`)) console.log(`[${service}] ${line}`);
  },
}).catch(async (err: unknown) => {
  await stack.stop();
  throw err;
});

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const codes = await services.stop();
  await stack.stop();
  const failed = Object.entries(codes).filter(([, c]) => c !== 0);
  if (failed.length > 0) console.error(`exit codes: ${JSON.stringify(codes)}`);
  process.exit(failed.length > 0 ? 1 : code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
for (const service of SERVICE_NAMES) {
  services.processes[service].child.once("exit", (code, signal) => {
    if (stopping) return;
    console.error(`${service} exited unexpectedly (${code ?? signal}); stopping the others`);
    void shutdown(1);
  });
}

const started = (here: boolean): string => (here ? "started here" : "already running");
console.log("");
for (const service of SERVICE_NAMES) console.log(`${service.padEnd(13)} ${services.urls[service].padEnd(26)} ${ROUTES[service]}`);
if (stack.traceServerUrl) console.log(`${"traces".padEnd(13)} ${stack.traceServerUrl.padEnd(26)} viewer at /, ${started(stack.startedHere.traceServer)}`);
if (stack.modelUrl) console.log(`${"model".padEnd(13)} ${stack.modelUrl.padEnd(26)} ${started(stack.startedHere.modelServer)}`);

const apiKey = [...parseApiKeys(process.env.GATEWAY_API_KEYS ?? DEMO_API_KEYS).keys()][0] ?? "<key>";
const message = "How does the baggage header carry the tenant?";

if (once) {
  const response = await fetch(`${services.urls.gateway}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": apiKey },
    body: JSON.stringify({ message }),
  });
  const traceId = response.headers.get("x-trace-id") ?? "";
  console.log(`\nPOST /chat -> ${response.status}\n${JSON.stringify(await response.json(), null, 2)}\nx-trace-id: ${traceId}\n`);
  const runs = await readTrace(traceId, { expectRuns: 14 });
  console.log(renderTraceText(runs));
  console.log(`\n${formatReport(assertTrace(runs, { traceId, rootName: "POST /chat", services: [...SERVICE_NAMES] }))}`);
  console.log(`\nIn the viewer: ${traceUrl(traceId, stack.viewerUrl)}`);
  await shutdown(0);
} else {
  console.log(`
Try:
  curl -si ${services.urls.gateway}/chat -H 'x-api-key: ${apiKey}' -H 'content-type: application/json' \\
    -d '${JSON.stringify({ message })}'
${stack.viewerUrl ? `Then open ${stack.viewerUrl} for the trace (the x-trace-id header names it).\n` : ""}Ctrl-C stops everything.`);
}
