/**
 * Runs service.ts as real child processes with instrument.ts preloaded (or otel-mode-service.ts,
 * in LangSmith's OTel mode), for tests and notebooks: ready when it prints its "listening on" line (never after a fixed sleep), stopped with
 * SIGTERM, which lets instrument.ts send the spans it still holds.
 *
 *   const llm = await startService({ name: "llm-service", role: "llm", env });
 *   const frontend = await startService({ name: "frontend", role: "frontend", downstream: llm.url, env });
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { captureOutput } from "@tracing-patterns/setup";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
/** The example's folder, whether this module runs from its source or from dist/. */
export const EXAMPLE_DIR = basename(here) === "dist" ? dirname(here) : here;
export const INSTRUMENT_SCRIPT = join(EXAMPLE_DIR, "instrument.ts");
export const SERVICE_SCRIPT = join(EXAMPLE_DIR, "service.ts");
export const OTEL_MODE_SERVICE_SCRIPT = join(EXAMPLE_DIR, "otel-mode-service.ts");

export interface ServiceOptions {
  /** OTEL_SERVICE_NAME. */
  name: string;
  role: "frontend" | "llm";
  /** "opentelemetry" (default): service.ts with instrument.ts preloaded; "langsmith-otel": otel-mode-service.ts. */
  tracing?: "opentelemetry" | "langsmith-otel";
  /** The llm service's URL, for a frontend. */
  downstream?: string;
  /** The child's environment before the variables above are added (OTEL_*, OPENAI_*, MODEL). */
  env: NodeJS.ProcessEnv;
  /** Default 20000. */
  timeoutMs?: number;
}

export interface RunningService {
  name: string;
  url: string;
  child: ChildProcess;
  /** The last 64 KiB the process wrote. */
  output(): string;
  /** SIGTERM, then the exit code once the process has sent its spans and exited. */
  stop(): Promise<number | null>;
}

/** `node --import tsx --import instrument.ts service.ts` (or otel-mode-service.ts), resolved once it listens. */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const env: NodeJS.ProcessEnv = { ...options.env, OTEL_SERVICE_NAME: options.name, SERVICE_ROLE: options.role };
  if (options.downstream) env.DOWNSTREAM_URL = options.downstream;
  const script = options.tracing === "langsmith-otel" ? [OTEL_MODE_SERVICE_SCRIPT] : ["--import", INSTRUMENT_SCRIPT, SERVICE_SCRIPT];
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", ...script], {
    cwd: EXAMPLE_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  let onLine: ((line: string) => void) | undefined;
  const output = captureOutput(child, (line, from) => {
    if (from === "stdout") onLine?.(line);
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${options.name} not listening within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
      onLine = (line) => {
        const match = / listening on (\S+)/.exec(line);
        if (!match?.[1]) return;
        clearTimeout(timer);
        onLine = undefined;
        resolve(match[1]);
      };
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited (${signal ?? code}) before listening:\n${output()}`));
      });
    });
    let exited: Promise<number | null> | undefined;
    return {
      name: options.name,
      url,
      child,
      output,
      stop: () => {
        exited ??= (async () => {
          process.off("exit", killOnExit);
          if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
          const done = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
          child.kill("SIGTERM");
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
