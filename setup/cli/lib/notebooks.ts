// Headless notebook execution shared by `npm test` and `npm run patterns`.
// Notebooks run in real Jupyter (nbclient, from Debian's python3) with the
// project-local tslab kernelspec that setup/bin/run registers.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { basename, join, relative } from "node:path";

export interface NotebookResult {
  notebook: string;
  ok: boolean;
  seconds: number;
  cells: number;
  verified: number;
  /** Traces the notebook's helpers had the trace doctor examine, and the seconds it took. */
  doctored: number;
  doctorSeconds: number;
  failedCell: number | null;
  /** The runner's stderr: on failure, the failing cell's source and outputs. */
  log: string;
  executedPath: string;
}

export const repoRoot = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();

/** The environment notebook first, then the numbered lessons in order. */
export function listNotebooks(root = repoRoot): string[] {
  const dir = join(root, "notebooks");
  const lessons = (existsSync(dir) ? readdirSync(dir) : [])
    .filter((f) => f.endsWith(".ipynb"))
    .sort()
    .map((f) => join(root, "notebooks", f));
  return [join(root, "setup", "environment_setup.ipynb"), ...lessons];
}

export function runNotebook(
  path: string,
  opts: { env?: NodeJS.ProcessEnv; outDir?: string; cellTimeoutSeconds?: number } = {},
): Promise<NotebookResult> {
  const outDir = opts.outDir ?? join(repoRoot, "test-artifacts", "notebooks");
  mkdirSync(outDir, { recursive: true });
  const executedPath = join(outDir, basename(path));
  const runner = join(repoRoot, "setup", "cli", "lib", "run_notebook.py");
  // Debian's python3 has nbclient; a pyenv python earlier on PATH does not.
  const child = spawn("/usr/bin/python3", [runner, path, executedPath, String(opts.cellTimeoutSeconds ?? 180)], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").at(-1) ?? "";
      let summary: Partial<NotebookResult> = {};
      try {
        summary = JSON.parse(last) as Partial<NotebookResult>;
      } catch {
        // The runner died before printing its summary; its stderr says why.
      }
      resolve({
        notebook: relative(repoRoot, path),
        ok: code === 0 && summary.ok === true,
        seconds: summary.seconds ?? 0,
        cells: summary.cells ?? 0,
        verified: summary.verified ?? 0,
        doctored: summary.doctored ?? 0,
        doctorSeconds: summary.doctorSeconds ?? 0,
        failedCell: summary.failedCell ?? null,
        log: stderr,
        executedPath,
      });
    });
  });
}
