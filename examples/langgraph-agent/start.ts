// `npm run example:langgraph-agent`: the local stack (reused if it is already
// running, else started in this process), the research service, the LangGraph
// Agent Server with the writing agent, and the supervisor, then where to find
// them. Ctrl-C stops everything, the supervisor first so requests finish and
// every process flushes its runs.
//
// `npm run example:langgraph-agent -- --once`: one request, its trace as text, then stop.
import { join } from "node:path";
import { assertTrace, ensureLocalStack, findRepoRoot, formatReport, readTrace, renderTraceText, traceUrl } from "@tracing-patterns/setup";
import { SERVICE_NAMES, startAgents } from "./launch.js";

const once = process.argv.includes("--once");
const root = findRepoRoot();
const stack = await ensureLocalStack({
  // Same database as `npm start`, so its viewer shows these traces later too.
  dbPath: process.env.TRACE_SERVER_DB ?? (root ? join(root, ".data", "traces.sqlite") : undefined),
});

const ROUTES: Record<(typeof SERVICE_NAMES)[number], string> = {
  supervisor: 'POST /run {"message", "thread_id"?, "user_id"?}',
  "research-agent": "POST /research (called by the supervisor)",
  "writing-agent": "LangGraph Agent Server, graph writing_agent",
};

let stopping = false;
let skipping = false;
const started = performance.now();
const agents = await startAgents({
  onOutput: (service, line) => {
    if (service === "writing-agent") {
      // The Agent Server logs every request; only its warnings and errors are worth a line here. It warns once
      // that it cannot resolve a LangSmith organization, which the local trace server does not have: harmless.
      if (line.includes("Failed to get organization ID")) skipping = true;
      const skipped = skipping || !/^(warn|error):/.test(line);
      if (skipping && line.includes("\u2517")) skipping = false;
      if (skipped) return;
    }
    if (line.length > 0 && !line.startsWith(`${service} listening on`)) console.log(`[${service}] ${line}`);
  },
}).catch(async (err: unknown) => {
  await stack.stop();
  throw err;
});
const startMs = Math.round(performance.now() - started);

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const codes = await agents.stop();
  await stack.stop();
  // 143: the Agent Server's clean stop on SIGTERM (it exits through its exit hooks).
  const failed = Object.entries(codes).filter(([service, c]) => c !== 0 && !(service === "writing-agent" && c === 143));
  if (failed.length > 0) console.error(`exit codes: ${JSON.stringify(codes)}`);
  process.exit(failed.length > 0 ? 1 : code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
for (const service of SERVICE_NAMES) {
  agents.processes[service].child.once("exit", (code, signal) => {
    if (stopping) return;
    console.error(`${service} exited unexpectedly (${code ?? signal}); stopping the others`);
    void shutdown(1);
  });
}

const here = (yes: boolean): string => (yes ? "started here" : "already running");
console.log(`\nstarted in ${startMs} ms`);
for (const service of SERVICE_NAMES) console.log(`${service.padEnd(15)} ${agents.urls[service].padEnd(24)} ${ROUTES[service]}`);
if (stack.traceServerUrl) console.log(`${"traces".padEnd(15)} ${stack.traceServerUrl.padEnd(24)} viewer at /, ${here(stack.startedHere.traceServer)}`);
if (stack.modelUrl) console.log(`${"model".padEnd(15)} ${stack.modelUrl.padEnd(24)} ${here(stack.startedHere.modelServer)}`);

const body = { message: "Look up in the notes how baggage carries the user id to the next service.", thread_id: "demo-thread", user_id: "alice" };

if (once) {
  const sent = performance.now();
  const response = await fetch(`${agents.urls.supervisor}/run`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const latency = Math.round(performance.now() - sent);
  const traceId = response.headers.get("x-trace-id") ?? "";
  console.log(`\nPOST /run -> ${response.status} in ${latency} ms\n${JSON.stringify(await response.json(), null, 2)}\nx-trace-id: ${traceId}\n`);
  const runs = await readTrace(traceId, { expectRuns: 20 });
  console.log(renderTraceText(runs));
  console.log(`\n${formatReport(assertTrace(runs, { traceId, rootName: "POST /run", services: [...SERVICE_NAMES] }))}`);
  console.log(`\nIn the viewer: ${traceUrl(traceId, stack.viewerUrl)}`);
  await shutdown(0);
} else {
  console.log(`
Try:
  curl -si ${agents.urls.supervisor}/run -H 'content-type: application/json' \\
    -d '${JSON.stringify(body)}'
${stack.viewerUrl ? `Then open ${stack.viewerUrl} for the trace (the x-trace-id header names it).\n` : ""}Ctrl-C stops everything.`);
}
