// Starts the services as child processes, each with its own Node process,
// SDK client and LANGSMITH_SERVICE, the way they would run in production.
// Used by start.ts, the tests and notebook 01 (built to dist/ for tslab).
// The services read only their environment; this is where the repository's
// configuration (.env, local or cloud, the local model endpoint) becomes it.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { applyConfig, captureOutput, CHILD_OUTPUT_LIMIT, findRepoRoot, loadConfig } from "@tracing-patterns/setup";
import { PORT_ENV, URL_ENV, type ServiceName } from "./services/ports.js";

export { DEFAULT_PORTS, PORT_ENV, SERVICE_NAMES, URL_ENV, type DownstreamService, type ServiceName } from "./services/ports.js";

// Resolved by package name so it is the same from launch.ts and from dist/launch.js.
const packageDir = dirname(fileURLToPath(import.meta.resolve("@tracing-patterns/example-multi-service-app/package.json")));

/** The file a service runs from: `node --conditions=source --import tsx <file>` starts it alone. */
export function serviceEntry(service: ServiceName): string {
  return join(packageDir, "services", `${service}.ts`);
}

export interface ServiceProcess {
  service: ServiceName;
  url: string;
  child: ChildProcess;
  /** The last OUTPUT_LIMIT characters it printed, stdout and stderr interleaved. */
  output(): string;
  /** SIGTERM, then wait: the service finishes in-flight requests and flushes its runs before it exits. Resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnServiceOptions {
  /** The child's environment before the repository's configuration is applied to it. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Each line the service prints. Default: kept only (see output()). */
  onOutput?: (service: ServiceName, line: string) => void;
  /** Deadline for the "listening on" line. Default 30000 ms. */
  timeoutMs?: number;
}

const STOP_GRACE_MS = 10_000;
/** What output() keeps of a long-running service's output: the end, which is where the error that stopped it is. */
export const OUTPUT_LIMIT = CHILD_OUTPUT_LIMIT;

/** Starts one service and resolves with the URL from its `<service> listening on <url>` line. */
export async function spawnService(service: ServiceName, options: SpawnServiceOptions = {}): Promise<ServiceProcess> {
  // A pipe on stdin that the service watches: if this process dies without stopping it, the service exits too.
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), EXIT_ON_STDIN_END: "1", LANGSMITH_SERVICE: service };
  // LANGSMITH_* (tracing, endpoint, key, project) and OPENAI_* (key, base URL), as configure() would set them in the service.
  applyConfig(loadConfig({ env, rootDir: findRepoRoot(packageDir, env) }), env);
  const child = spawn(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", serviceEntry(service)],
    { cwd: packageDir, env, stdio: ["pipe", "pipe", "pipe"] },
  );
  const listeners: Array<(line: string) => void> = [];
  const output = captureOutput(child, (line) => {
    options.onOutput?.(service, line);
    for (const listener of listeners) listener(line);
  });

  const pattern = new RegExp(`^${service} listening on (http://\\S+)`);
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      listeners.push((line) => {
        const match = pattern.exec(line);
        if (match?.[1]) resolve(match[1]);
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`${service} exited (${code ?? signal}) before listening:\n${output()}`)));
      timer = setTimeout(
        () => reject(new Error(`${service} did not report "listening on" within ${options.timeoutMs ?? 30_000} ms:\n${output()}`)),
        options.timeoutMs ?? 30_000,
      );
    });
    return { service, url, child, output, stop: () => stopChild(child) };
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
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

export interface StartServicesOptions extends Omit<SpawnServiceOptions, "env"> {
  /** Base environment for every service. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Ports by service. Default: each service's *_PORT variable, else 3000-3003. 0 means any free port. */
  ports?: Partial<Record<ServiceName, number>>;
  /** Extra variables for one service, e.g. its own LANGSMITH_PROJECT or the gateway's RATE_LIMIT_BURST. */
  serviceEnv?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
}

export interface RunningServices {
  urls: Record<ServiceName, string>;
  processes: Record<ServiceName, ServiceProcess>;
  /** Stops the gateway first and the leaves last, so requests in flight can finish. Resolves with the exit codes. */
  stop(): Promise<Record<ServiceName, number | null>>;
}

/**
 * Starts retrieval and llm, then the orchestrator with their URLs, then the
 * gateway with the orchestrator's: with ephemeral ports a caller's URL is
 * only known once the callee listens.
 */
export async function startServices(options: StartServicesOptions = {}): Promise<RunningServices> {
  const base = options.env ?? process.env;
  const started: ServiceProcess[] = [];
  const start = async (service: ServiceName, extra: NodeJS.ProcessEnv): Promise<ServiceProcess> => {
    const port = options.ports?.[service];
    const env: NodeJS.ProcessEnv = { ...base, ...options.serviceEnv?.[service], ...extra };
    if (port !== undefined) env[PORT_ENV[service]] = String(port);
    const proc = await spawnService(service, { env, onOutput: options.onOutput, timeoutMs: options.timeoutMs });
    started.push(proc);
    return proc;
  };
  try {
    const [retrieval, llm] = await Promise.all([start("retrieval", {}), start("llm", {})]);
    const orchestrator = await start("orchestrator", { [URL_ENV.retrieval]: retrieval.url, [URL_ENV.llm]: llm.url });
    const gateway = await start("gateway", { [URL_ENV.orchestrator]: orchestrator.url });
    const processes = { gateway, orchestrator, retrieval, llm };
    return {
      urls: { gateway: gateway.url, orchestrator: orchestrator.url, retrieval: retrieval.url, llm: llm.url },
      processes,
      async stop() {
        const codes = { gateway: await gateway.stop(), orchestrator: await orchestrator.stop() };
        const [retrievalCode, llmCode] = await Promise.all([retrieval.stop(), llm.stop()]);
        return { ...codes, retrieval: retrievalCode, llm: llmCode };
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}
