// The configurations the overhead benchmark compares, and how each one's
// processes are started: the four services of examples/multi-service-app,
// or the two of examples/opentelemetry's LangSmith OTel mode, each as real
// child processes (`node --import tsx <service>`, as their launchers start
// them) with the environment of its configuration, plus the bench's loader
// hooks where the configuration needs them.
//
//   const app = await startApp(config, { traceUrl, modelUrl });
//   ... load app.url with app.request ..., read cpuTicks(app.pids.gateway) ...
//   await app.stop();
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PORT_ENV, URL_ENV, serviceEntry, type ServiceName } from "@tracing-patterns/example-multi-service-app";
import { captureOutput } from "@tracing-patterns/setup";
import { OTEL_MODE_SERVICE_SCRIPT } from "../../examples/opentelemetry/harness/processes.js";
import { childEnv } from "../procs.js";

export type AppName = "multi-service" | "otel";

export interface AppConfig {
  /** Short id, used in the results file and the project name. */
  id: string;
  app: AppName;
  /** What the table calls it. */
  label: string;
  /** Other configurations of the same app are reported as ratios to this one. */
  baseline?: boolean;
  /** Application code's `traceable` replaced by a plain call (bench/untraced). */
  untraced?: boolean;
  /** The kit's pass-through sampler (no tail) in place of the app's (bench/pass-through). */
  passThrough?: boolean;
  env: Record<string, string>;
  /** Only measured when the kit has it: edge sampling (kit/sampling.ts) or the tail decision (kit/tail.ts). */
  needs?: KitFeature;
}

export type KitFeature = "edge" | "tail";

/** Slow threshold of the tail configuration: well above the app's unloaded latency, so only stragglers are kept. */
export const TAIL_SLOW_MS = 1000;

export const CONFIGS: readonly AppConfig[] = [
  { id: "untraced", app: "multi-service", label: "untraced (baseline)", baseline: true, untraced: true, env: { LANGSMITH_TRACING: "false" } },
  { id: "off", app: "multi-service", label: "tracing off (LANGSMITH_TRACING=false)", env: { LANGSMITH_TRACING: "false" } },
  { id: "full", app: "multi-service", label: "100%", env: { LANGSMITH_TRACING: "true" } },
  { id: "sdk10", app: "multi-service", label: "SDK sampling 10%", env: { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_SAMPLING_RATE: "0.1" } },
  { id: "sdk0", app: "multi-service", label: "SDK sampling 0% (all sampled out)", env: { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_SAMPLING_RATE: "0" } },
  {
    id: "edge10",
    app: "multi-service",
    label: "edge sampling 10%, pass-through",
    passThrough: true,
    needs: "edge",
    env: { LANGSMITH_TRACING: "true", TRACE_SAMPLE_RATE: "0.1" },
  },
  {
    id: "edge0",
    app: "multi-service",
    label: "edge sampling 0%, pass-through (all dropped)",
    passThrough: true,
    needs: "edge",
    env: { LANGSMITH_TRACING: "true", TRACE_SAMPLE_RATE: "0" },
  },
  {
    id: "edge10tail",
    app: "multi-service",
    label: `edge sampling 10% + tail (errors, slow > ${TAIL_SLOW_MS} ms)`,
    needs: "tail",
    env: { LANGSMITH_TRACING: "true", TRACE_SAMPLE_RATE: "0.1", TRACE_SLOW_MS: String(TAIL_SLOW_MS) },
  },
  { id: "otel-untraced", app: "otel", label: "OTel example: untraced (baseline)", baseline: true, untraced: true, env: { LANGSMITH_TRACING: "false" } },
  { id: "otel-mode", app: "otel", label: "OTel example: LangSmith OTel mode 100%", env: { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_MODE: "otel", LINK_REMOTE_PARENT: "1" } },
];

/** The micro-benchmark: one call of a trivial async function, each way of tracing it (micro.ts). */
export interface MicroVariant {
  id: string;
  label: string;
  env: Record<string, string>;
  needs?: KitFeature;
}

export const MICRO_VARIANTS: readonly MicroVariant[] = [
  { id: "raw", label: "raw async call", env: {} },
  { id: "traceable-disabled", label: "traceable, LANGSMITH_TRACING=false", env: { LANGSMITH_TRACING: "false" } },
  { id: "traceable-sampled-out", label: "traceable, sampled out (rate 0)", env: { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_SAMPLING_RATE: "0" } },
  { id: "traceable-traced", label: "traceable, traced (sent to the trace server)", env: { LANGSMITH_TRACING: "true" } },
  { id: "traced-off", label: "kit traced, LANGSMITH_TRACING=false", env: { LANGSMITH_TRACING: "false" }, needs: "edge" },
  { id: "traced-drop", label: "kit traced, in a dropped request", env: { LANGSMITH_TRACING: "true" }, needs: "edge" },
  // One whole request through a service (micro.ts runRequests): what a sampled-out request adds per service, without the app's noise.
  { id: "request-untraced", label: "request through a service, untraced", env: { LANGSMITH_TRACING: "false" } },
  { id: "request-drop", label: "request, kit adapter + traced, dropped at the edge", env: { LANGSMITH_TRACING: "true" }, needs: "edge" },
  { id: "request-sdk0", label: "request, kit adapter + traceable, SDK rate 0", env: { LANGSMITH_TRACING: "true", LANGSMITH_TRACING_SAMPLING_RATE: "0" } },
];

/** True when the kit this checkout runs has the feature (both came with the `sampling` branch). */
export function kitHas(feature: KitFeature): boolean {
  return existsSync(fileURLToPath(new URL(`../../examples/kit/${feature === "edge" ? "sampling" : "tail"}.ts`, import.meta.url)));
}

export interface RunningApp {
  config: AppConfig;
  /** The public endpoint the load goes to. */
  url: string;
  request: { method: "POST"; headers: Record<string, string>; body: string };
  /** Process id of each service. */
  pids: Record<string, number>;
  /** The last lines each service printed, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  traceUrl: string;
  /** Base URL with /v1. */
  modelUrl: string;
  /** Directory for V8 CPU profiles of every service, if wanted. */
  cpuProfileDir?: string;
}

const QUESTION = "How does the baggage header carry the tenant?";
const UNTRACED_HOOK = fileURLToPath(new URL("../untraced/register.mjs", import.meta.url));
const PASS_THROUGH_HOOK = fileURLToPath(new URL("../pass-through/register.mjs", import.meta.url));

/** Every configuration writes to a project of its own, so its runs are counted apart from the others'. */
export function projectOf(config: AppConfig): string {
  return `bench-overhead-${config.id}`;
}

export async function startApp(config: AppConfig, options: StartOptions): Promise<RunningApp> {
  // After tsx on the command line, so they resolve before it: tsx answers the imports of TypeScript files itself.
  const hooks: string[] = [];
  if (config.untraced) hooks.push(UNTRACED_HOOK);
  if (config.passThrough) hooks.push(PASS_THROUGH_HOOK);
  // Node's default file names: one profile per thread (the loader hooks run in a thread of their own), in a folder per configuration.
  const profile = options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${join(options.cpuProfileDir, config.id)}`] : [];
  const base = childEnv({
    LANGSMITH_ENDPOINT: options.traceUrl,
    LANGSMITH_API_KEY: "local",
    LANGSMITH_PROJECT: projectOf(config),
    OPENAI_BASE_URL: options.modelUrl,
    OPENAI_API_KEY: "local",
    ...config.env,
  });
  const started: Service[] = [];
  const lines: string[] = [];
  const start = async (name: string, script: string, env: NodeJS.ProcessEnv): Promise<Service> => {
    const service = await spawnService(name, [...profile, ...hooks.flatMap((h) => ["--import", h]), script], env, (line) => keepLast(lines, `[${name}] ${line}`));
    started.push(service);
    return service;
  };
  try {
    if (config.app === "multi-service") {
      const env: NodeJS.ProcessEnv = {
        ...base,
        TRACE_CONTEXT_KEY: randomBytes(32).toString("hex"),
        // The gateway's per-tenant token bucket would turn the load into 429s.
        RATE_LIMIT_BURST: "1000000000",
        RATE_LIMIT_PER_SECOND: "1000000000",
      };
      const leaf = (name: ServiceName): Promise<Service> => start(name, serviceEntry(name), { ...env, LANGSMITH_SERVICE: name, [PORT_ENV[name]]: "0" });
      const [retrieval, llm] = await Promise.all([leaf("retrieval"), leaf("llm")]);
      const orchestrator = await start("orchestrator", serviceEntry("orchestrator"), {
        ...env,
        LANGSMITH_SERVICE: "orchestrator",
        [PORT_ENV.orchestrator]: "0",
        [URL_ENV.retrieval]: retrieval.url,
        [URL_ENV.llm]: llm.url,
      });
      const gateway = await start("gateway", serviceEntry("gateway"), { ...env, LANGSMITH_SERVICE: "gateway", [PORT_ENV.gateway]: "0", [URL_ENV.orchestrator]: orchestrator.url });
      return running(config, `${gateway.url}/chat`, { "content-type": "application/json", "x-api-key": "demo-key-alice" }, JSON.stringify({ message: QUESTION }), [gateway, orchestrator, retrieval, llm], lines);
    }
    const env: NodeJS.ProcessEnv = {
      ...base,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${options.traceUrl}/otel/v1/traces`,
      OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=local,Langsmith-Project=${projectOf(config)}`,
      MODEL: "gpt-4o-mini",
      // Spans leave within 0.1 s (default 5 s), so one configuration's spans are not stored during the next one's measurement.
      OTEL_BSP_SCHEDULE_DELAY: "100",
    };
    const llm = await start("llm-service", OTEL_MODE_SERVICE_SCRIPT, { ...env, OTEL_SERVICE_NAME: "llm-service", SERVICE_ROLE: "llm" });
    const frontend = await start("frontend", OTEL_MODE_SERVICE_SCRIPT, { ...env, OTEL_SERVICE_NAME: "frontend", SERVICE_ROLE: "frontend", DOWNSTREAM_URL: llm.url });
    return running(config, `${frontend.url}/ask`, { "content-type": "application/json" }, JSON.stringify({ question: QUESTION }), [frontend, llm], lines);
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    throw err;
  }
}

interface Service {
  name: string;
  url: string;
  pid: number;
  /** SIGTERM (the services flush their runs), then the exit code. */
  stop(): Promise<number | null>;
}

function running(config: AppConfig, url: string, headers: Record<string, string>, body: string, services: Service[], lines: string[]): RunningApp {
  return {
    config,
    url,
    request: { method: "POST", headers, body },
    pids: Object.fromEntries(services.map((s) => [s.name, s.pid])),
    output: () => lines.join("\n"),
    stop: async () => {
      const codes: Record<string, number | null> = {};
      for (const s of services) codes[s.name] = await s.stop();
      if (Object.values(codes).some((c) => c !== 0)) throw new Error(`${config.id}: services exited with ${JSON.stringify(codes)}:\n${lines.join("\n")}`);
    },
  };
}

/** `node --import tsx <args>`, resolved with the URL of its `<name> listening on <url>` line. */
async function spawnService(name: string, args: string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void): Promise<Service> {
  // EXIT_ON_STDIN_END: the multi-service services exit when this process dies and the pipe closes.
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", ...args], {
    env: { ...env, EXIT_ON_STDIN_END: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const killOnExit = (): void => void child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let listening: ((line: string) => void) | undefined;
  const output = captureOutput(child, (line) => {
    onLine(line);
    listening?.(line);
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      listening = (line) => {
        const match = / listening on (http:\/\/\S+)/.exec(line);
        if (match?.[1]) resolve(match[1]);
      };
      void exited.then(([code, signal]) => reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${output()}`)));
      timer = setTimeout(() => reject(new Error(`${name} did not listen within 120 s:\n${output()}`)), 120_000);
    });
    listening = undefined;
    const stop = async (): Promise<number | null> => {
      process.off("exit", killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const [code] = await exited;
      clearTimeout(kill);
      return code;
    };
    return { name, url, pid: child.pid ?? -1, stop };
  } catch (err) {
    process.off("exit", killOnExit);
    child.kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function keepLast(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > 40) lines.shift();
}
