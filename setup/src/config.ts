import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import dotenv from "dotenv";
import { ChatOpenAI, type ChatOpenAIFields } from "@langchain/openai";

/** The package.json name that marks the repository root. */
export const REPO_PACKAGE_NAME = "langsmith-distributed-tracing-patterns";
/** API key sent to the local trace server and the local model endpoint; neither checks it unless configured to. */
export const LOCAL_API_KEY = "local";
export const DEFAULT_TRACE_SERVER_PORT = 1984;
export const DEFAULT_MODEL_SERVER_PORT = 1985;
export const DEFAULT_PROJECT = "default";
export const DEFAULT_MODEL = "gpt-4o-mini";
/** The SDK's own default when LANGSMITH_ENDPOINT is unset (langsmith/lib/utils/profiles.js). */
export const LANGSMITH_CLOUD_ENDPOINT = "https://api.smith.langchain.com";

export type TracingMode = "local" | "cloud";
export type ModelProvider = "local" | "openai" | "custom";

/** One entry of the SDK's LANGSMITH_RUNS_ENDPOINTS (array form, see langsmith/lib/run_trees.js _getWriteReplicasFromEnv). */
export interface RunsEndpoint {
  api_url: string;
  /** "" sends the writing Client's own key (LANGSMITH_API_KEY): see MIRROR_TO_LOCAL in loadConfig. */
  api_key: string;
  project_name?: string;
}

export interface TracingPatternsConfig {
  /** "local": the in-repo trace server; "cloud": LangSmith. */
  mode: TracingMode;
  /** Why this mode was chosen, for describeConfig. */
  modeReason: string;
  rootDir: string | undefined;
  /** The .env file that was read, if one exists. */
  envFile: string | undefined;
  project: string;
  /** LANGSMITH_SERVICE of this process, if set. */
  service: string | undefined;
  tracing: boolean;
  langsmith: {
    endpoint: string;
    apiKey: string;
    /** Write replicas; set only when mirroring cloud runs to the local trace server. */
    runsEndpoints: RunsEndpoint[] | undefined;
  };
  mirrorToLocal: boolean;
  traceServer: {
    url: string;
    host: string;
    port: number;
    /** TRACE_SERVER_DB resolved against the repository root; undefined means in memory when started in-process. */
    db: string | undefined;
    apiKey: string | undefined;
  };
  model: {
    provider: ModelProvider;
    /** Undefined means the OpenAI default. */
    baseURL: string | undefined;
    apiKey: string;
    name: string;
  };
  modelServer: {
    url: string;
    host: string;
    port: number;
    latencyMs: number;
    tokenDelayMs: number;
  };
  /** Base URL of the local trace viewer (served by the local trace server). */
  viewerUrl: string;
  /** Things the user should know about this configuration (never containing secrets). */
  warnings: string[];
}

export interface LoadConfigOptions {
  /** Environment to read (and to fill from .env). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Repository root; default: TRACING_PATTERNS_ROOT, else found by walking up from cwd. */
  rootDir?: string;
  /** A .env file to read instead of <root>/.env; false reads none. */
  envFile?: string | false;
}

/** The repository root: TRACING_PATTERNS_ROOT, else the nearest ancestor of `from` whose package.json is this project's. */
export function findRepoRoot(from: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.TRACING_PATTERNS_ROOT;
  if (fromEnv) return path.resolve(fromEnv);
  let dir = path.resolve(from);
  for (;;) {
    const pkgPath = path.join(dir, "package.json");
    if (existsSync(pkgPath)) {
      try {
        const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { name?: unknown };
        if (pkg.name === REPO_PACKAGE_NAME) return dir;
      } catch {
        // An unreadable package.json belongs to something else; keep walking.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function flag(value: string | undefined): boolean {
  return value !== undefined && ["1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}

function intFrom(value: string | undefined, name: string, fallback: number): number {
  const raw = nonEmpty(value);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** A URL for a server bound to `host`: wildcard binds are reached through loopback. */
function urlFor(host: string, port: number, suffix = ""): string {
  const reachable = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  const hostPart = reachable.includes(":") ? `[${reachable}]` : reachable;
  return `http://${hostPart}:${port}${suffix}`;
}

/** Relative database paths mean "under the repository root", whatever directory a notebook runs in. */
function resolveDb(db: string | undefined, rootDir: string | undefined): string | undefined {
  if (db === undefined || db === ":memory:") return db;
  return path.resolve(rootDir ?? process.cwd(), db);
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/**
 * Reads `.env` at the repository root into `env` (variables already set win), then resolves
 * where traces and model calls go. Pure apart from that .env read; `applyConfig` makes it effective.
 */
export function loadConfig(options: LoadConfigOptions = {}): TracingPatternsConfig {
  const env = options.env ?? process.env;
  const rootDir = options.rootDir ?? findRepoRoot(process.cwd(), env);
  let envFile: string | undefined;
  if (options.envFile !== false) {
    const candidate = options.envFile ?? (rootDir ? path.join(rootDir, ".env") : undefined);
    if (candidate && existsSync(candidate)) {
      const result = dotenv.config({ path: candidate, quiet: true, processEnv: env as Record<string, string> });
      if (result.error) throw new Error(`Could not read ${candidate}: ${result.error.message}`);
      envFile = candidate;
    }
  }
  const warnings: string[] = [];

  const traceHost = nonEmpty(env.TRACE_SERVER_HOST) ?? "127.0.0.1";
  const tracePort = intFrom(env.TRACE_SERVER_PORT, "TRACE_SERVER_PORT", DEFAULT_TRACE_SERVER_PORT);
  const traceApiKey = nonEmpty(env.TRACE_SERVER_API_KEY);
  const traceUrl = stripSlash(nonEmpty(env.TRACE_SERVER_URL) ?? urlFor(traceHost, tracePort));
  const traceServer = {
    url: traceUrl,
    host: traceHost,
    port: tracePort,
    db: resolveDb(nonEmpty(env.TRACE_SERVER_DB), rootDir),
    apiKey: traceApiKey,
  };
  const localKey = traceApiKey ?? LOCAL_API_KEY;

  const modelHost = nonEmpty(env.MODEL_SERVER_HOST) ?? "127.0.0.1";
  const modelPort = intFrom(env.MODEL_SERVER_PORT, "MODEL_SERVER_PORT", DEFAULT_MODEL_SERVER_PORT);
  const modelServer = {
    url: stripSlash(nonEmpty(env.MODEL_SERVER_URL) ?? urlFor(modelHost, modelPort, "/v1")),
    host: modelHost,
    port: modelPort,
    latencyMs: intFrom(env.MODEL_SERVER_LATENCY_MS, "MODEL_SERVER_LATENCY_MS", 0),
    tokenDelayMs: intFrom(env.MODEL_SERVER_TOKEN_DELAY_MS, "MODEL_SERVER_TOKEN_DELAY_MS", 0),
  };

  const offline = flag(env.TRACING_PATTERNS_OFFLINE);
  // applyConfig writes the local placeholder key into LANGSMITH_API_KEY; reading it back must not flip to cloud.
  const lsKey = nonEmpty(env.LANGSMITH_API_KEY) ?? nonEmpty(env.LANGCHAIN_API_KEY);
  const realLsKey = lsKey !== undefined && lsKey !== localKey && lsKey !== LOCAL_API_KEY ? lsKey : undefined;
  // The SDK traces when LANGSMITH_TRACING_V2 or LANGSMITH_TRACING (each falling back to its
  // LANGCHAIN_ twin) is exactly "true" (langsmith/lib/env.js); read all four the same way, so the
  // config never disagrees with what the SDK will do. None set: tracing on, this project's default.
  const sdkVar = (name: string): string | undefined => nonEmpty(env[`LANGSMITH_${name}`]) ?? nonEmpty(env[`LANGCHAIN_${name}`]);
  const tracingVars = [sdkVar("TRACING_V2"), sdkVar("TRACING")];
  const tracing = tracingVars.every((v) => v === undefined) ? true : tracingVars.some((v) => v === "true");
  const project = nonEmpty(env.LANGSMITH_PROJECT) ?? nonEmpty(env.LANGCHAIN_PROJECT) ?? DEFAULT_PROJECT;

  let mode: TracingMode;
  let modeReason: string;
  if (offline) {
    mode = "local";
    modeReason = "TRACING_PATTERNS_OFFLINE=true";
  } else if (realLsKey) {
    mode = "cloud";
    modeReason = "LANGSMITH_API_KEY is set";
  } else {
    mode = "local";
    modeReason = "no LANGSMITH_API_KEY";
  }
  if (offline && realLsKey) warnings.push("LANGSMITH_API_KEY is set but ignored because TRACING_PATTERNS_OFFLINE=true.");

  const mirrorRequested = flag(env.MIRROR_TO_LOCAL);
  const mirrorToLocal = mode === "cloud" && mirrorRequested;
  if (mirrorRequested && mode === "local") warnings.push("MIRROR_TO_LOCAL=true has no effect in local mode: runs already go to the local trace server.");

  let langsmith: TracingPatternsConfig["langsmith"];
  if (mode === "local") {
    langsmith = { endpoint: traceUrl, apiKey: localKey, runsEndpoints: undefined };
    if (nonEmpty(env.LANGSMITH_RUNS_ENDPOINTS)) {
      warnings.push("LANGSMITH_RUNS_ENDPOINTS is set; applyConfig removes it in local mode so no run leaves this machine.");
    }
  } else {
    const endpoint = stripSlash(nonEmpty(env.LANGSMITH_ENDPOINT) ?? nonEmpty(env.LANGCHAIN_ENDPOINT) ?? LANGSMITH_CLOUD_ENDPOINT);
    const apiKey = realLsKey ?? "";
    let runsEndpoints: RunsEndpoint[] | undefined;
    if (mirrorToLocal) {
      // Array form: the object form throws when LANGSMITH_ENDPOINT is also set. Replicas replace the
      // default destination, so LangSmith itself must be listed too. Neither entry names a project, so
      // both keep the original run ids and the same trace id works in both places.
      // The SDK copies LANGSMITH_RUNS_ENDPOINTS, value and all, into every run's metadata (its secret
      // filter reads variable names only), so LangSmith's entry carries no key: the SDK sends a blank
      // replica key as the writing Client's own, LANGSMITH_API_KEY, which it never copies
      // (langsmith/lib/client.js, applyCurrentAuthHeaders). tests/setup-mirror.test.ts holds the SDK to it.
      runsEndpoints = [
        { api_url: endpoint, api_key: "" },
        { api_url: traceUrl, api_key: localKey },
      ];
      if (traceApiKey) {
        warnings.push(
          "MIRROR_TO_LOCAL with TRACE_SERVER_API_KEY: the SDK copies LANGSMITH_RUNS_ENDPOINTS, the trace server's key " +
            "included, into every run's metadata, in LangSmith too. Mirror to a trace server without a key, or accept that.",
        );
      }
    }
    langsmith = { endpoint, apiKey, runsEndpoints };
  }

  const openaiKey = nonEmpty(env.OPENAI_API_KEY);
  const openaiBase = nonEmpty(env.OPENAI_BASE_URL) ?? nonEmpty(env.OPENAI_API_BASE);
  const modelName = nonEmpty(env.OPENAI_MODEL) ?? DEFAULT_MODEL;
  let model: TracingPatternsConfig["model"];
  if (offline || (!openaiBase && (!openaiKey || openaiKey === LOCAL_API_KEY))) {
    model = { provider: "local", baseURL: modelServer.url, apiKey: LOCAL_API_KEY, name: modelName };
  } else if (openaiBase) {
    const base = stripSlash(openaiBase);
    model = {
      provider: base === modelServer.url ? "local" : "custom",
      baseURL: base,
      apiKey: openaiKey ?? LOCAL_API_KEY,
      name: modelName,
    };
  } else {
    model = { provider: "openai", baseURL: undefined, apiKey: openaiKey ?? "", name: modelName };
  }

  return {
    mode,
    modeReason,
    rootDir,
    envFile,
    project,
    service: nonEmpty(env.LANGSMITH_SERVICE),
    tracing,
    langsmith,
    mirrorToLocal,
    traceServer,
    model,
    modelServer,
    viewerUrl: stripSlash(nonEmpty(env.TRACE_VIEWER_URL) ?? traceUrl),
    warnings,
  };
}

/**
 * Writes the variables the langsmith SDK, LangChain and the OpenAI client read, so that code which
 * never sees the config object (child processes, library defaults) behaves the same. Idempotent:
 * loadConfig after applyConfig yields the same config.
 *
 * Clients cache LANGSMITH_* variables when constructed, so call this before the first traced call.
 */
export function applyConfig(cfg: TracingPatternsConfig, env: NodeJS.ProcessEnv = process.env): TracingPatternsConfig {
  env.LANGSMITH_TRACING = cfg.tracing ? "true" : "false";
  env.LANGSMITH_ENDPOINT = cfg.langsmith.endpoint;
  env.LANGSMITH_API_KEY = cfg.langsmith.apiKey;
  env.LANGSMITH_PROJECT = cfg.project;
  // Legacy LANGCHAIN_* names take part in the SDK's lookups; stale values must not contradict ours.
  for (const legacy of ["LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY", "LANGCHAIN_PROJECT"]) {
    delete env[legacy];
  }
  env.TRACE_SERVER_URL = cfg.traceServer.url;
  env.MODEL_SERVER_URL = cfg.modelServer.url;
  if (cfg.langsmith.runsEndpoints) {
    env.LANGSMITH_RUNS_ENDPOINTS = JSON.stringify(cfg.langsmith.runsEndpoints);
  } else if (cfg.mode === "local") {
    delete env.LANGSMITH_RUNS_ENDPOINTS;
  }
  if (cfg.model.provider === "openai") {
    delete env.OPENAI_BASE_URL;
    delete env.OPENAI_API_BASE;
  } else {
    env.OPENAI_BASE_URL = cfg.model.baseURL;
    env.OPENAI_API_KEY = cfg.model.apiKey;
  }
  if (cfg.service) env.LANGSMITH_SERVICE = cfg.service;
  return cfg;
}

/** loadConfig + applyConfig in one call: the first line of every notebook and example. */
export function configure(options: LoadConfigOptions = {}): TracingPatternsConfig {
  return applyConfig(loadConfig(options), options.env ?? process.env);
}

const KNOWN_KEY_PREFIXES = ["lsv2_pt_", "lsv2_sk_", "lsv2_", "sk-proj-", "sk-svcacct-", "sk-"];

/** "(set)" with at most a well-known, non-secret type prefix, e.g. "lsv2_pt_…(set)". */
export function maskSecret(value: string | undefined): string {
  if (!value) return "(not set)";
  if (value === LOCAL_API_KEY) return `"${LOCAL_API_KEY}" (placeholder)`;
  const prefix = KNOWN_KEY_PREFIXES.find((p) => value.startsWith(p) && value.length > p.length + 8);
  return prefix ? `${prefix}…(set)` : "(set)";
}

/** Drops user:password from a URL so it can be printed. */
function printableUrl(url: string | undefined): string {
  if (!url) return "(OpenAI default)";
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = "";
      u.password = "";
      return `${stripSlash(u.toString())} (credentials hidden)`;
    }
    return url;
  } catch {
    return "(unparseable URL)";
  }
}

/** A human-readable summary of where traces and model calls go. Never contains a secret. */
export function describeConfig(cfg: TracingPatternsConfig): string {
  const lines = [
    `mode           ${cfg.mode} (${cfg.modeReason})`,
    `trace endpoint ${printableUrl(cfg.langsmith.endpoint)}  project=${cfg.project}  tracing=${cfg.tracing ? "on" : "off"}`,
    `langsmith key  ${maskSecret(cfg.langsmith.apiKey)}`,
  ];
  if (cfg.langsmith.runsEndpoints) {
    lines.push(`mirrored to    ${cfg.langsmith.runsEndpoints.map((r) => printableUrl(r.api_url)).join(", ")}`);
  }
  lines.push(
    `service        ${cfg.service ?? "(not set; call setServiceName)"}`,
    `model          ${cfg.model.provider}  ${printableUrl(cfg.model.baseURL)}  model=${cfg.model.name}  key ${maskSecret(cfg.model.apiKey)}`,
  );
  if (cfg.mode === "local" || cfg.mirrorToLocal) lines.push(`trace viewer   ${printableUrl(cfg.viewerUrl)}`);
  lines.push(`.env           ${cfg.envFile ?? "(none)"}`);
  for (const w of cfg.warnings) lines.push(`warning        ${w}`);
  return lines.join("\n");
}

export type ChatModelOptions = Omit<ChatOpenAIFields, "apiKey" | "openAIApiKey" | "configuration"> & {
  config?: TracingPatternsConfig;
};

/**
 * The one way notebooks and examples create a chat model: a real ChatOpenAI pointed at the local
 * model endpoint in local mode, at OpenAI (or OPENAI_BASE_URL) otherwise.
 */
export function chatModel(options: ChatModelOptions = {}): ChatOpenAI {
  const { config, ...fields } = options;
  const cfg = config ?? loadConfig();
  return new ChatOpenAI({
    model: cfg.model.name,
    ...fields,
    apiKey: cfg.model.apiKey,
    ...(cfg.model.baseURL ? { configuration: { baseURL: cfg.model.baseURL } } : {}),
  });
}
