// `npm run patterns`: execute every notebook headless and print one line each.
// `npm run patterns -- 01 03` runs only the notebooks whose path contains "01" or "03".
import { ensureLocalStack, loadConfig, applyConfig } from "@tracing-patterns/setup";
import { listNotebooks, runNotebook } from "./lib/notebooks.js";

const config = loadConfig();
applyConfig(config);
const stack = await ensureLocalStack();
let failed = 0;
try {
  const only = process.argv.slice(2);
  for (const path of listNotebooks().filter((p) => only.length === 0 || only.some((o) => p.includes(o)))) {
    const r = await runNotebook(path, {
      env: { TRACE_SERVER_URL: stack.traceServerUrl, MODEL_SERVER_URL: stack.modelUrl },
    });
    if (!r.ok) failed++;
    console.log(
      `${r.ok ? "pass" : "FAIL"}  ${r.notebook.padEnd(52)} ${r.seconds.toFixed(1).padStart(6)}s  ${r.verified} trace(s) verified`,
    );
    if (!r.ok) console.log(r.log);
  }
} finally {
  await stack.stop();
}
process.exitCode = failed > 0 ? 1 : 0;
