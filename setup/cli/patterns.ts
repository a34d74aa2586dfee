// `npm run patterns`: execute every notebook headless and print one line each.
// `npm run patterns -- 01 03` runs only the notebooks whose path (from the repository root) contains "01" or "03".
// `--save` (`npm run notebooks:outputs`) also writes each passing notebook's outputs into the
// committed notebook (lib/notebook-outputs.ts). That run is offline (API keys cleared) and uses a
// stack of its own on free ports, in memory, so a running `npm start` is neither used nor filled;
// its URLs are shown in the outputs as the default ones.
import { relative } from "node:path";
import { DEFAULT_MODEL_SERVER_PORT, DEFAULT_TRACE_SERVER_PORT, ensureLocalStack, loadConfig, applyConfig } from "@tracing-patterns/setup";
import { listNotebooks, repoRoot, runNotebook } from "./lib/notebooks.js";
import { machineContext, saveOutputs } from "./lib/notebook-outputs.js";

const args = process.argv.slice(2);
const save = args.includes("--save");
const only = args.filter((a) => a !== "--save");
// The secrets to look for in outputs are the ones this environment holds, read before clearing them.
const seen = { ...process.env };
loadConfig({ env: seen });
const offline = { LANGSMITH_API_KEY: "", OPENAI_API_KEY: "" };
if (save) {
  Object.assign(process.env, offline, { TRACE_SERVER_URL: "", MODEL_SERVER_URL: "", TRACE_SERVER_PORT: "0", MODEL_SERVER_PORT: "0", TRACE_SERVER_DB: "" });
}

const config = loadConfig();
applyConfig(config);
const stack = await ensureLocalStack();
const origins: Record<string, string> = {};
if (stack.traceServerUrl) origins[new URL(stack.traceServerUrl).origin] = `http://127.0.0.1:${DEFAULT_TRACE_SERVER_PORT}`;
if (stack.modelUrl) origins[new URL(stack.modelUrl).origin] = `http://127.0.0.1:${DEFAULT_MODEL_SERVER_PORT}`;
const context = machineContext(repoRoot, seen, origins);
let failed = 0;
try {
  for (const path of listNotebooks().filter((p) => only.length === 0 || only.some((o) => relative(repoRoot, p).includes(o)))) {
    const r = await runNotebook(path, {
      env: { TRACE_SERVER_URL: stack.traceServerUrl, MODEL_SERVER_URL: stack.modelUrl, ...(save ? offline : {}) },
    });
    if (!r.ok) failed++;
    console.log(
      `${r.ok ? "pass" : "FAIL"}  ${r.notebook.padEnd(52)} ${r.seconds.toFixed(1).padStart(6)}s  ${r.verified} trace(s) verified, ${r.doctored} examined by the doctor (${r.doctorSeconds.toFixed(1)}s)`,
    );
    if (!r.ok) console.log(r.log);
    if (save && r.ok) {
      const saved = saveOutputs(path, r.executedPath, context);
      if (saved.saved) console.log(`      outputs saved to ${r.notebook} (${Math.round(saved.bytes / 1024)} KiB)`);
      else {
        failed++;
        console.log(`      outputs NOT saved to ${r.notebook}:\n${saved.findings.map((f) => `        - ${f}`).join("\n")}`);
      }
    }
  }
} finally {
  await stack.stop();
}
process.exitCode = failed > 0 ? 1 : 0;
