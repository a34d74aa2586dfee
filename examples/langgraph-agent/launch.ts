// Starts the example's three processes, the way they would run in production:
// the research service and the LangGraph Agent Server (writing agent) first,
// then the supervisor with their URLs. Used by start.ts, the tests and
// notebook 04. Each process has its own SDK client and LANGSMITH_SERVICE.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { captureOutput } from "@tracing-patterns/setup";
import { DEFAULT_PORTS, PORT_ENV, URL_ENV, type ServiceName } from "./services/env.js";

export { DEFAULT_PORTS, PORT_ENV, SERVICE_NAMES, URL_ENV, type ServiceName } from "./services/env.js";

// Resolved by package name so it is the same from launch.ts and from dist/launch.js (notebooks).
const packageDir = dirname(fileURLToPath(import.meta.resolve("@tracing-patterns/example-langgraph-agent/package.json")));
/** The langgraph.json project the Agent Server serves. */
export const AGENT_SERVER_DIR = join(packageDir, "agent-server");
const STOP_GRACE_MS = 10_000;

export interface ServiceProcess {
  service: ServiceName;
  url: string;
  child: ChildProcess;
  /** The last 64 KiB it printed, stdout and stderr interleaved. */
  output(): string;
  /** SIGTERM (to the whole process group for the Agent Server), then wait; SIGKILL after 10 s. Resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /** The child's whole environment. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  onOutput?: (service: ServiceName, line: string) => void;
  /** Deadline for the ready line. Default 30 s, 90 s for the Agent Server. */
  timeoutMs?: number;
}

export interface StartAgentsOptions extends Omit<SpawnOptions, "env"> {
  /** Base environment of every process (LANGSMITH_*, OPENAI_*). Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Ports by service; default each one's variable (SUPERVISOR_PORT, RESEARCH_PORT, AGENT_SERVER_PORT), else 3100, 3101, 3102. 0: any free port. */
  ports?: Partial<Record<ServiceName, number>>;
  /** Extra variables for one process, e.g. the supervisor's WRITING_ATTEMPTS. */
  serviceEnv?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
  /** Run the Agent Server on a throwaway copy of its state (tests, notebooks) instead of agent-server/.langgraph_api. */
  isolatedState?: boolean;
}

export interface RunningAgents {
  urls: Record<ServiceName, string>;
  processes: Record<ServiceName, ServiceProcess>;
  /** Supervisor first, so requests in flight finish, then the agents. Resolves with the exit codes. */
  stop(): Promise<Record<ServiceName, number | null>>;
}

/** The research service and the Agent Server at once, then the supervisor with their URLs; if one fails, the others are stopped. */
export async function startAgents(options: StartAgentsOptions = {}): Promise<RunningAgents> {
  const base = options.env ?? process.env;
  const envFor = (service: ServiceName, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...base, ...options.serviceEnv?.[service], ...extra };
    const port = options.ports?.[service];
    if (port !== undefined) env[PORT_ENV[service]] = String(port);
    return env;
  };
  const portOf = (service: ServiceName, fallback: number): number => {
    const raw = options.ports?.[service] ?? base[PORT_ENV[service]];
    return raw === undefined || raw === "" ? fallback : Number(raw);
  };
  const spawnOptions = { onOutput: options.onOutput, timeoutMs: options.timeoutMs };
  // Settled, not Promise.all: when one fails, the other must still be stopped once it is up.
  const agents = await Promise.allSettled([
    spawnService("research-agent", { ...spawnOptions, env: envFor("research-agent") }),
    spawnAgentServer({ ...spawnOptions, env: envFor("writing-agent"), port: portOf("writing-agent", DEFAULT_PORTS["writing-agent"]), isolatedState: options.isolatedState }),
  ]);
  const started = agents.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
  try {
    const [research, writing] = agents.map((a) => {
      if (a.status === "rejected") throw a.reason;
      return a.value;
    }) as [ServiceProcess, ServiceProcess];
    const supervisor = await spawnService("supervisor", {
      ...spawnOptions,
      env: envFor("supervisor", { [URL_ENV.research]: research.url, [URL_ENV.writing]: writing.url }),
    });
    return {
      urls: { supervisor: supervisor.url, "research-agent": research.url, "writing-agent": writing.url },
      processes: { supervisor, "research-agent": research, "writing-agent": writing },
      async stop() {
        const supervisorCode = await supervisor.stop();
        const [researchCode, writingCode] = await Promise.all([research.stop(), writing.stop()]);
        return { supervisor: supervisorCode, "research-agent": researchCode, "writing-agent": writingCode };
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

/** Starts one express service and resolves once it prints `<service> listening on <url>`. */
export function spawnService(service: Exclude<ServiceName, "writing-agent">, options: SpawnOptions = {}): Promise<ServiceProcess> {
  const entry = join(packageDir, "services", service === "supervisor" ? "supervisor.ts" : "research.ts");
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", entry], {
    cwd: packageDir,
    // The service exits when this pipe closes, so a launcher that dies does not leave it on its port.
    env: { ...(options.env ?? process.env), LANGSMITH_SERVICE: service, EXIT_ON_STDIN_END: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  return awaitReady(service, child, new RegExp(`^${service} listening on (http://\\S+)`), (m) => m, options.timeoutMs ?? 30_000, options.onOutput, false);
}

/**
 * Starts the LangGraph Agent Server (the CLI's dev server, in memory) with the
 * writing agent, and resolves once it logs "Server running at host:port". Its
 * own process group, so stop() reaches the CLI, tsx and the server together.
 */
export interface AgentServerOptions extends SpawnOptions {
  /** Default 0: any free port. */
  port?: number;
  /** A throwaway state directory instead of agent-server/.langgraph_api (see isolatedProject). */
  isolatedState?: boolean;
  /** Serve the graph without the custom HTTP app and continueTrace: the server's default behaviour. Implies isolatedState. */
  withoutTraceFix?: boolean;
}

export async function spawnAgentServer(options: AgentServerOptions = {}): Promise<ServiceProcess> {
  const stateDir = options.isolatedState || options.withoutTraceFix ? isolatedProject(options.withoutTraceFix ?? false) : undefined;
  const { command, args } = agentServerCommand(options.port ?? 0, stateDir);
  const child = spawn(command, args, {
    cwd: stateDir ?? AGENT_SERVER_DIR,
    env: { ...(options.env ?? process.env), LANGSMITH_SERVICE: "writing-agent", LANGGRAPH_CLI_NO_ANALYTICS: "1", BROWSER: "none" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // A launcher that exits normally takes the server with it; one that is SIGKILLed cannot.
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", killGroup);
  child.once("exit", () => process.off("exit", killGroup));
  const port = options.port ?? 0;
  // The CLI stays up when its server fails to start (a port in use, a graph that does not load): an
  // error logged before "Server running" is the failure, not a reason to wait for the deadline.
  const fatal = (line: string): string | undefined =>
    /EADDRINUSE/.test(line)
      ? `port ${port} is in use (set ${PORT_ENV["writing-agent"]}, 0 for any free port)`
      : /^error:/.test(line)
        ? line
        : undefined;
  const removeState = (): void => {
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  };
  child.once("exit", removeState);
  return awaitReady("writing-agent", child, /Server running at (\S+)/, (hostPort) => `http://${hostPort}`, options.timeoutMs ?? 90_000, options.onOutput, true, fatal);
}

/** `npx @langchain/langgraph-cli dev` without npx: the installed CLI, on `port` (0: any free one). */
export function agentServerCommand(port: number, projectDir = AGENT_SERVER_DIR): { command: string; args: string[] } {
  return {
    command: process.execPath,
    args: [langgraphCli(), "dev", "--port", String(port), "--host", "127.0.0.1", "--no-browser", "--no-reload", "--config", join(projectDir, "langgraph.json")],
  };
}

/**
 * A throwaway project directory whose langgraph.json names agent-server's files (without the
 * trace fix: the plain graph and no custom HTTP app).
 * The dev server keeps its threads, runs and checkpoints in `.langgraph_api/` under the project and
 * loads them at start: two servers on one directory (test files running in parallel) would share
 * and overwrite that state, and a test would see threads an earlier run left. Removed when the
 * server exits.
 */
function isolatedProject(withoutTraceFix: boolean): string {
  const config = JSON.parse(readFileSync(join(AGENT_SERVER_DIR, "langgraph.json"), "utf8")) as {
    graphs: Record<string, string>;
    http?: { app?: string };
  };
  if (withoutTraceFix) {
    delete config.http;
    config.graphs = { writing_agent: "./writing-agent.ts:plainGraph" };
  }
  const dir = mkdtempSync(join(tmpdir(), "langgraph-agent-server-"));
  // Relative to the new directory: the server joins (not resolves) some of these paths onto it.
  const moved = (spec: string): string => {
    const [file, symbol] = spec.split(":", 2);
    return `${relative(dir, join(AGENT_SERVER_DIR, file ?? ""))}${symbol ? `:${symbol}` : ""}`;
  };
  config.graphs = Object.fromEntries(Object.entries(config.graphs).map(([id, spec]) => [id, moved(spec)]));
  if (config.http?.app) config.http.app = moved(config.http.app);
  writeFileSync(join(dir, "langgraph.json"), JSON.stringify(config, null, 2));
  return dir;
}

function langgraphCli(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@langchain/langgraph-cli/package.json")), "dist", "cli", "cli.mjs");
}

// eslint-disable-next-line no-control-regex -- the Agent Server colours its log lines
const ANSI = /\u001b\[[0-9;]*m/g;

async function awaitReady(
  service: ServiceName,
  child: ChildProcess & { stdout: NodeJS.ReadableStream | null },
  pattern: RegExp,
  toUrl: (match: string) => string,
  timeoutMs: number,
  onOutput: SpawnOptions["onOutput"],
  group: boolean,
  fatal: (line: string) => string | undefined = () => undefined,
): Promise<ServiceProcess> {
  const listeners: Array<(line: string) => void> = [];
  const captured = captureOutput(child as ChildProcess & { stdout: NonNullable<ChildProcess["stdout"]>; stderr: NonNullable<ChildProcess["stderr"]> }, (raw) => {
    const line = raw.replace(ANSI, "");
    onOutput?.(service, line);
    for (const listener of listeners) listener(line);
  });
  const output = (): string => captured().replace(ANSI, "");
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      listeners.push((line) => {
        const match = pattern.exec(line);
        if (match?.[1]) resolve(toUrl(match[1]));
        const failure = fatal(line);
        if (failure !== undefined) reject(new Error(`${service} failed to start: ${failure}\n${output()}`));
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`${service} exited (${code ?? signal}) before it was ready:\n${output()}`)));
      timer = setTimeout(() => reject(new Error(`${service} was not ready within ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    });
    return { service, url, child, output, stop: () => stopChild(child, group) };
  } catch (err) {
    signal(child, "SIGKILL", group);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function signal(child: ChildProcess, name: NodeJS.Signals, group: boolean): void {
  try {
    if (group && child.pid !== undefined) process.kill(-child.pid, name);
    else child.kill(name);
  } catch {
    // Already gone.
  }
}

async function stopChild(child: ChildProcess, group: boolean): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  signal(child, "SIGTERM", group);
  const timer = setTimeout(() => signal(child, "SIGKILL", group), STOP_GRACE_MS);
  const [code, sig] = await exited;
  clearTimeout(timer);
  // The Agent Server exits 143 (128 + SIGTERM) after its exit hooks, its way of a clean stop.
  return code ?? (sig === "SIGTERM" ? 143 : null);
}
