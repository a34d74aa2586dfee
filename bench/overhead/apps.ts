// The configurations the overhead benchmark compares, and how each one's
// processes are started: the four services of examples/multi-service-app,
// or the two of examples/opentelemetry's LangSmith OTel mode, each as real
// child processes with the environment of its configuration.
//
//   const app = await startApp(config, { traceUrl, modelUrl });
//   ... load app.url with app.request ..., read cpuTicks(app.pids.gateway) ...
//   await app.stop();
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServices, SERVICE_NAMES } from "@tracing-patterns/example-multi-service-app";
import { startService } from "../../examples/opentelemetry/harness/processes.js";
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

/** Every configuration writes to a project of its own, so its runs are counted apart from the others'. */
export function projectOf(config: AppConfig): string {
  return `bench-overhead-${config.id}`;
}

const QUESTION = "How does the baggage header carry the tenant?";
const UNTRACED_HOOK = fileURLToPath(new URL("../untraced/register.mjs", import.meta.url));
const PASS_THROUGH_HOOK = fileURLToPath(new URL("../pass-through/register.mjs", import.meta.url));

export async function startApp(config: AppConfig, options: StartOptions): Promise<RunningApp> {
  const nodeOptions: string[] = [];
  if (config.untraced) nodeOptions.push(`--import=${UNTRACED_HOOK}`);
  if (config.passThrough) nodeOptions.push(`--import=${PASS_THROUGH_HOOK}`);
  if (options.cpuProfileDir) nodeOptions.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=${config.id}-\${pid}.cpuprofile`);
  const project = projectOf(config);
  const base = childEnv({
    ...(nodeOptions.length > 0 ? { NODE_OPTIONS: nodeOptions.join(" ") } : {}),
    LANGSMITH_ENDPOINT: options.traceUrl,
    LANGSMITH_API_KEY: "local",
    LANGSMITH_PROJECT: project,
    OPENAI_BASE_URL: options.modelUrl,
    OPENAI_API_KEY: "local",
    ...config.env,
  });
  return config.app === "multi-service" ? startMultiService(config, base, options) : startOtel(config, base, options);
}

async function startMultiService(config: AppConfig, base: NodeJS.ProcessEnv, options: StartOptions): Promise<RunningApp> {
  const lines: string[] = [];
  const services = await startServices({
    env: {
      ...base,
      // launch.ts turns the repository's configuration into each service's environment: keep it local and on our servers.
      TRACING_PATTERNS_OFFLINE: "true",
      TRACE_SERVER_URL: options.traceUrl,
      MODEL_SERVER_URL: options.modelUrl,
      // The gateway's per-tenant token bucket would turn the load into 429s.
      RATE_LIMIT_BURST: "1000000000",
      RATE_LIMIT_PER_SECOND: "1000000000",
    },
    ports: { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 },
    onOutput: (service, line) => keepLast(lines, `[${service}] ${line}`),
    timeoutMs: 120_000,
  });
  const pids: Record<string, number> = {};
  for (const name of SERVICE_NAMES) pids[name] = services.processes[name].child.pid ?? -1;
  return {
    config,
    url: `${services.urls.gateway}/chat`,
    request: { method: "POST", headers: { "content-type": "application/json", "x-api-key": "demo-key-alice" }, body: JSON.stringify({ message: QUESTION }) },
    pids,
    output: () => lines.join("\n"),
    stop: async () => {
      const codes = await services.stop();
      const failed = Object.entries(codes).filter(([, code]) => code !== 0);
      if (failed.length > 0) throw new Error(`${config.id}: services exited with ${JSON.stringify(codes)}:\n${lines.join("\n")}`);
    },
  };
}

async function startOtel(config: AppConfig, base: NodeJS.ProcessEnv, options: StartOptions): Promise<RunningApp> {
  const env: NodeJS.ProcessEnv = {
    ...base,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${options.traceUrl}/otel/v1/traces`,
    OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=local,Langsmith-Project=${base.LANGSMITH_PROJECT ?? ""}`,
    MODEL: "gpt-4o-mini",
    // Spans leave within 0.1 s (default 5 s), so one configuration's spans are not stored during the next one's measurement.
    OTEL_BSP_SCHEDULE_DELAY: "100",
  };
  const llm = await startService({ name: "llm-service", role: "llm", tracing: "langsmith-otel", env, timeoutMs: 120_000 });
  let frontend: Awaited<ReturnType<typeof startService>>;
  try {
    frontend = await startService({ name: "frontend", role: "frontend", tracing: "langsmith-otel", downstream: llm.url, env, timeoutMs: 120_000 });
  } catch (err) {
    await llm.stop();
    throw err;
  }
  return {
    config,
    url: `${frontend.url}/ask`,
    request: { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question: QUESTION }) },
    pids: { frontend: frontend.child.pid ?? -1, "llm-service": llm.child.pid ?? -1 },
    output: () => `[frontend] ${frontend.output()}\n[llm-service] ${llm.output()}`,
    stop: async () => {
      const codes = { frontend: await frontend.stop(), llm: await llm.stop() };
      if (codes.frontend !== 0 || codes.llm !== 0) throw new Error(`${config.id}: services exited with ${JSON.stringify(codes)}`);
    },
  };
}

function keepLast(lines: string[], line: string): void {
  lines.push(line);
  if (lines.length > 40) lines.shift();
}
