import { applyConfig, loadConfig, type TracingPatternsConfig } from "./config.js";
import { waitForHttp } from "./http.js";
import { startModelServer, type ModelServerHandle } from "./model-server/index.js";
import { startTraceServer, type TraceServerHandle } from "./trace-server/index.js";

export interface EnsureLocalStackOptions {
  /** Default: loadConfig(). */
  config?: TracingPatternsConfig;
  /** Write the stack's actual URLs into process.env with applyConfig. Default true. */
  apply?: boolean;
  /** Trace database when the trace server is started here; overrides TRACE_SERVER_DB. Default: in memory. */
  dbPath?: string;
  /** Deadline for probing and health checks, per server. Default 10000. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface LocalStack {
  /** The configuration, with the URLs of the servers actually in use. */
  config: TracingPatternsConfig;
  /** Undefined when traces go only to LangSmith. */
  traceServerUrl: string | undefined;
  /** Undefined when the model is OpenAI's (or another OPENAI_BASE_URL). */
  modelUrl: string | undefined;
  viewerUrl: string | undefined;
  /** What this process started (in this or an earlier call) rather than found running. */
  startedHere: { traceServer: boolean; modelServer: boolean };
  /** Same as stopLocalStack(). */
  stop(): Promise<void>;
}

interface Started {
  traceServer?: TraceServerHandle;
  modelServer?: ModelServerHandle;
}

let started: Started = {};
// Serialises ensure/stop so concurrent notebook cells cannot start a server twice.
let queue: Promise<unknown> = Promise.resolve();

function serialised<T>(task: () => Promise<T>): Promise<T> {
  const next = queue.then(task, task);
  queue = next.catch(() => undefined);
  return next;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function sameTarget(a: string, b: string): boolean {
  const ua = new URL(a);
  const ub = new URL(b);
  const host = (h: string): string => (LOOPBACK.has(h) ? "loopback" : h);
  return host(ua.hostname) === host(ub.hostname) && ua.port === ub.port;
}

/** Port 0 in the configured URL means "any free port": start one, there is nothing to probe. */
function isEphemeral(url: string): boolean {
  return new URL(url).port === "0";
}

type Probe = { kind: "free" } | { kind: "answered"; response: Response; body: string };

/** One GET: "free" when nothing listens there; any other failure is an error naming the URL. */
async function probe(url: string, timeoutMs: number): Promise<Probe> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(Math.min(timeoutMs, 3_000)) });
    return { kind: "answered", response, body: await response.text() };
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === "ECONNREFUSED") return { kind: "free" };
    throw new Error(`Could not probe ${url}: ${code ?? (error instanceof Error ? error.message : String(error))}`, { cause: error });
  }
}

function describeAnswer(p: Extract<Probe, { kind: "answered" }>): string {
  const type = p.response.headers.get("content-type") ?? "no content-type";
  return `HTTP ${p.response.status}, ${type}, body ${JSON.stringify(p.body.slice(0, 80))}`;
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** LangSmith's GET /info carries a version and the batch-ingest limits the SDK reads. */
function looksLikeLangSmithInfo(info: Record<string, unknown> | undefined): boolean {
  return !!info && (typeof info.version === "string" || typeof info.batch_ingest_config === "object");
}

function startableTarget(url: string, kind: string, envHint: string): { port: number } {
  const u = new URL(url);
  if (!LOOPBACK.has(u.hostname)) {
    throw new Error(`Nothing answers at ${url}, and ${u.hostname} is not this machine, so the ${kind} cannot be started there. Check ${envHint}.`);
  }
  return { port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
}

async function ensureTraceServer(
  cfg: TracingPatternsConfig,
  dbPath: string | undefined,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<{ url: string; startedHere: boolean }> {
  const configured = cfg.traceServer.url;
  const ephemeral = isEphemeral(configured);
  const mine = started.traceServer;
  if (mine && (ephemeral || sameTarget(configured, mine.url))) return { url: mine.url, startedHere: true };
  if (!ephemeral) {
    const p = await probe(`${configured}/info`, timeoutMs);
    if (p.kind === "answered") {
      if (p.response.ok && looksLikeLangSmithInfo(jsonObject(p.body))) {
        log(`trace server: reusing ${configured}`);
        return { url: configured, startedHere: false };
      }
      throw new Error(
        `Something that is not a LangSmith-compatible trace server answers at ${configured} (GET /info: ${describeAnswer(p)}). ` +
          `Stop it, or choose another address with TRACE_SERVER_PORT or TRACE_SERVER_URL.`,
      );
    }
  }
  const port = ephemeral ? 0 : startableTarget(configured, "trace server", "TRACE_SERVER_URL").port;
  const handle = await startTraceServer({
    host: cfg.traceServer.host,
    port,
    dbPath: dbPath ?? ":memory:",
    // The viewer opens on the project this configuration's traces go to.
    viewerProject: cfg.project,
    ...(cfg.traceServer.apiKey ? { apiKey: cfg.traceServer.apiKey } : {}),
  });
  started.traceServer = handle;
  await waitForHttp(`${handle.url}/info`, { timeoutMs });
  log(`trace server: started ${handle.url} (${dbPath ? `db ${dbPath}` : "in memory"})`);
  return { url: handle.url, startedHere: true };
}

async function ensureModelServer(cfg: TracingPatternsConfig, timeoutMs: number, log: (l: string) => void): Promise<{ url: string; startedHere: boolean }> {
  const configured = cfg.model.baseURL ?? cfg.modelServer.url;
  const ephemeral = isEphemeral(configured);
  const mine = started.modelServer;
  if (mine && (ephemeral || sameTarget(configured, mine.url))) return { url: mine.url, startedHere: true };
  if (!ephemeral) {
    const health = new URL("/health", configured).toString();
    const p = await probe(health, timeoutMs);
    if (p.kind === "answered") {
      const models = p.response.ok ? await probe(`${configured}/models`, timeoutMs) : undefined;
      if (models?.kind === "answered" && models.response.ok && jsonObject(models.body)?.object === "list") {
        log(`model endpoint: reusing ${configured}`);
        return { url: configured, startedHere: false };
      }
      throw new Error(
        `Something that is not an OpenAI-compatible model endpoint answers at ${configured} ` +
          `(GET /health: ${describeAnswer(p)}${models?.kind === "answered" ? `; GET /v1/models: ${describeAnswer(models)}` : ""}). ` +
          `Stop it, or choose another address with MODEL_SERVER_PORT or MODEL_SERVER_URL.`,
      );
    }
  }
  const port = ephemeral ? 0 : startableTarget(configured, "model endpoint", "MODEL_SERVER_URL / OPENAI_BASE_URL").port;
  const handle = await startModelServer({
    host: cfg.modelServer.host,
    port,
    latencyMs: cfg.modelServer.latencyMs,
    tokenDelayMs: cfg.modelServer.tokenDelayMs,
  });
  started.modelServer = handle;
  await waitForHttp(new URL("/health", handle.url).toString(), { timeoutMs });
  log(`model endpoint: started ${handle.url}`);
  return { url: handle.url, startedHere: true };
}

/**
 * Makes sure the local services the configuration needs are answering: the trace server when traces
 * go to it (local mode, or cloud mode mirroring to it), the model endpoint when the model is local.
 * A server already answering at the configured URL is reused if it is the right kind; otherwise one
 * is started in this process and kept until stopLocalStack(). With LangSmith and OpenAI keys set it
 * starts nothing.
 */
export function ensureLocalStack(options: EnsureLocalStackOptions = {}): Promise<LocalStack> {
  return serialised(async () => {
    const cfg = options.config ?? loadConfig();
    const timeoutMs = options.timeoutMs ?? 10_000;
    const log = options.log ?? (() => undefined);
    const needTraces = cfg.mode === "local" || cfg.mirrorToLocal;
    const needModel = cfg.model.provider === "local";
    const trace = needTraces ? await ensureTraceServer(cfg, options.dbPath ?? cfg.traceServer.db, timeoutMs, log) : undefined;
    const model = needModel ? await ensureModelServer(cfg, timeoutMs, log) : undefined;

    let actual: TracingPatternsConfig = cfg;
    if (trace && trace.url !== cfg.traceServer.url) {
      const viewerFollows = cfg.viewerUrl === cfg.traceServer.url;
      actual = {
        ...actual,
        traceServer: { ...actual.traceServer, url: trace.url, port: Number(new URL(trace.url).port) },
        langsmith:
          actual.mode === "local"
            ? { ...actual.langsmith, endpoint: trace.url }
            : {
                ...actual.langsmith,
                runsEndpoints: actual.langsmith.runsEndpoints?.map((r) => (r.api_url === cfg.traceServer.url ? { ...r, api_url: trace.url } : r)),
              },
        viewerUrl: viewerFollows ? trace.url : actual.viewerUrl,
      };
    }
    if (model && model.url !== (cfg.model.baseURL ?? cfg.modelServer.url)) {
      actual = {
        ...actual,
        modelServer: { ...actual.modelServer, url: model.url, port: Number(new URL(model.url).port) },
        model: { ...actual.model, baseURL: model.url },
      };
    }
    if (options.apply ?? true) applyConfig(actual);
    return {
      config: actual,
      traceServerUrl: trace?.url,
      modelUrl: model?.url,
      viewerUrl: trace ? actual.viewerUrl : undefined,
      startedHere: { traceServer: trace?.startedHere ?? false, modelServer: model?.startedHere ?? false },
      stop: stopLocalStack,
    };
  });
}

/** Closes the servers this process started; servers found already running are left alone. */
export function stopLocalStack(): Promise<void> {
  return serialised(async () => {
    const { traceServer, modelServer } = started;
    started = {};
    await Promise.all([traceServer?.close(), modelServer?.close()]);
  });
}
