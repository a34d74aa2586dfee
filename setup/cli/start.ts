// `npm start`: the local stack (trace server + model endpoint), then Jupyter
// on the repository with the tslab kernel, and one block saying where things are.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { applyConfig, describeConfig, ensureLocalStack, loadConfig } from "@tracing-patterns/setup";
import { jupyterTreeUrl } from "./lib/jupyter-url.js";
import { repoRoot } from "./lib/notebooks.js";

const config = loadConfig();
applyConfig(config);
const stack = await ensureLocalStack({ dbPath: process.env.TRACE_SERVER_DB ?? join(repoRoot, ".data", "traces.sqlite") });

const jupyter = spawn(
  "jupyter-notebook",
  [
    "--no-browser",
    `--ip=${process.env.JUPYTER_HOST ?? "127.0.0.1"}`,
    `--port=${process.env.JUPYTER_PORT ?? "8888"}`,
    `--notebook-dir=${repoRoot}`,
    "--MultiKernelManager.default_kernel_name=tslab",
    // Containers and CI machines often run as root, which Jupyter refuses without this.
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
  ],
  { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
);

let shuttingDown = false;
async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log("stopping Jupyter and the local stack");
  jupyter.kill("SIGTERM");
  await stack.stop();
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

// Jupyter announces its URL (with the login token) on stderr once it listens.
let announced = false;
let jupyterLog = "";
const onJupyterOutput = (chunk: Buffer): void => {
  const text = chunk.toString("utf8");
  jupyterLog = (jupyterLog + text).slice(-20_000);
  const tree = announced ? null : jupyterTreeUrl(jupyterLog);
  if (tree) {
    announced = true;
    console.log(
      [
        "",
        "LangSmith Distributed Tracing Patterns is running",
        "",
        describeConfig(stack.config)
          .split("\n")
          // This process emits no runs, and the viewer line is printed below.
          .filter((l) => !l.startsWith("service ") && !l.startsWith("trace viewer "))
          .map((l) => `  ${l}`)
          .join("\n"),
        "",
        `  trace viewer   ${stack.viewerUrl}`,
        `  jupyter        ${tree}`,
        "  start with     setup/environment_setup.ipynb, then notebooks/01_*",
        "  stop           Ctrl-C (stops Jupyter and the local stack)",
        "",
      ].join("\n"),
    );
  }
};
jupyter.stdout.on("data", onJupyterOutput);
jupyter.stderr.on("data", onJupyterOutput);
jupyter.on("error", (err) => {
  console.error(`could not start jupyter-notebook: ${err.message}`);
  void shutdown(1);
});
jupyter.on("exit", (code) => {
  if (!shuttingDown) {
    console.error(`jupyter-notebook exited (code ${code}).\n${jupyterLog.slice(-4000)}`);
    void shutdown(code ?? 1);
  }
});
