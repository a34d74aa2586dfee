/**
 * Runs this example's scripts (server.ts, worker.ts) as real child processes
 * for tests, notebooks and start.ts: ready when the script prints its ready
 * line, never after a fixed sleep; stopped with a signal and awaited.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { captureOutput, CHILD_OUTPUT_LIMIT } from "@tracing-patterns/setup";

// harness/ in the example, or dist/harness/ once built.
const here = dirname(dirname(fileURLToPath(import.meta.url)));
/** The example's folder, whether this module runs from its source or from dist/. */
export const EXAMPLE_DIR = basename(here) === "dist" ? dirname(here) : here;
export const SERVER_SCRIPT = join(EXAMPLE_DIR, "server.ts");
export const WORKER_SCRIPT = join(EXAMPLE_DIR, "worker.ts");

export interface StartedProcess {
  child: ChildProcess;
  /** The first capture group of the ready pattern (a URL, a queue name), else the whole match. */
  ready: string;
  /** The last OUTPUT_LIMIT characters the process wrote to stdout and stderr. */
  output(): string;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartProcessOptions {
  /** Environment of the child. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** A line on stdout that means "ready". */
  ready: RegExp;
  /** Default 20000. */
  timeoutMs?: number;
  /** Each line the process writes, stdout and stderr, as it comes. Default: kept only (see output()). */
  onOutput?: (line: string) => void;
}

/** What output() keeps of a long-running process's output: the end, which is where the error that stopped it is. */
export const OUTPUT_LIMIT = CHILD_OUTPUT_LIMIT;

/** `node --conditions=source --import tsx <script>`: the TypeScript sources, as in the repository's tests. */
export async function startProcess(script: string, options: StartProcessOptions): Promise<StartedProcess> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", script], {
    cwd: EXAMPLE_DIR,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let readyCheck: ((line: string) => void) | undefined;
  const output = captureOutput(child, (line, from) => {
    options.onOutput?.(line);
    if (from === "stdout") readyCheck?.(line);
  });
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${basename(script)} not ready within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
      const check = (line: string): void => {
        const match = options.ready.exec(line);
        if (!match) return;
        clearTimeout(timer);
        readyCheck = undefined;
        resolve(match[1] ?? match[0]);
      };
      readyCheck = check;
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${basename(script)} exited (${signal ?? code}) before it was ready:\n${output()}`));
      });
    });
    let exited: Promise<number | null> | undefined;
    return {
      child,
      ready,
      output,
      stop: (signal: NodeJS.Signals = "SIGTERM") => {
        exited ??= (async () => {
          process.off("exit", killOnExit);
          if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
          const done = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
          child.kill(signal);
          const [code] = await done;
          return code;
        })();
        return exited;
      },
    };
  } catch (error) {
    process.off("exit", killOnExit);
    child.kill("SIGKILL");
    throw error;
  }
}
