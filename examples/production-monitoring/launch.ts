// Starts the two services as child processes (accounts first, then the
// assistant with its URL), each with its own Node process, SDK client and
// LANGSMITH_SERVICE, the way they run in production. Used by start.ts and the
// tests. The services read only their environment; this is where the
// repository's configuration (local or cloud, the local model) becomes it.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyConfig, captureOutput, findRepoRoot, loadConfig } from "@tracing-patterns/setup";

export const SERVICE_NAMES = ["accounts", "assistant"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

const here = dirname(fileURLToPath(import.meta.url));
const STOP_GRACE_MS = 15_000;

export interface ServiceProcess {
  service: ServiceName;
  url: string;
  child: ChildProcess;
  /** The end of what it printed, stdout and stderr interleaved. */
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL after 15 s). Resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface LaunchOptions {
  /** Base environment. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Extra variables per service. */
  serviceEnv?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
  /** 0 (default) picks free ports. */
  ports?: Partial<Record<ServiceName, number>>;
  onOutput?: (service: ServiceName, line: string) => void;
}

export interface RunningServices {
  urls: Record<ServiceName, string>;
  processes: Record<ServiceName, ServiceProcess>;
  /** The assistant first (it calls accounts), then accounts. */
  stop(): Promise<Record<ServiceName, number | null>>;
}

export async function startServices(options: LaunchOptions = {}): Promise<RunningServices> {
  const base = options.env ?? process.env;
  const start = (service: ServiceName, extra: NodeJS.ProcessEnv): Promise<ServiceProcess> =>
    spawnService(service, {
      ...base,
      ...options.serviceEnv?.[service],
      ...extra,
      [`${service.toUpperCase()}_PORT`]: String(options.ports?.[service] ?? 0),
    }, options.onOutput);
  const accounts = await start("accounts", {});
  let assistant: ServiceProcess;
  try {
    assistant = await start("assistant", { ACCOUNTS_URL: accounts.url });
  } catch (error) {
    await accounts.stop();
    throw error;
  }
  return {
    urls: { accounts: accounts.url, assistant: assistant.url },
    processes: { accounts, assistant },
    async stop() {
      const assistantCode = await assistant.stop();
      return { assistant: assistantCode, accounts: await accounts.stop() };
    },
  };
}

/** One service, resolved with the URL from its `<service> listening on <url>` line. */
export async function spawnService(service: ServiceName, baseEnv: NodeJS.ProcessEnv, onOutput?: (service: ServiceName, line: string) => void): Promise<ServiceProcess> {
  const env: NodeJS.ProcessEnv = { ...baseEnv, EXIT_ON_STDIN_END: "1", LANGSMITH_SERVICE: service };
  applyConfig(loadConfig({ env, rootDir: findRepoRoot(here, env) }), env);
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", join(here, `${service}.ts`)], {
    cwd: here,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const listeners: Array<(line: string) => void> = [];
  const output = captureOutput(child, (line) => {
    onOutput?.(service, line);
    for (const listener of listeners) listener(line);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const pattern = new RegExp(`^${service} listening on (http://\\S+)`);
      listeners.push((line) => {
        const match = pattern.exec(line);
        if (match?.[1]) resolve(match[1]);
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`${service} exited (${code ?? signal}) before listening:\n${output()}`)));
      timer = setTimeout(() => reject(new Error(`${service} did not start within 30 s:\n${output()}`)), 30_000);
    });
    return { service, url, child, output, stop: () => stopChild(child) };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}
