/**
 * Continuing a LangSmith trace inside the LangGraph Agent Server (JS:
 * @langchain/langgraph-api 1.5, `npx @langchain/langgraph-cli dev` or a
 * deployment). Copy this file into your langgraph.json project, then:
 *
 *   // http-app.ts; langgraph.json: "http": { "app": "./http-app.ts:app" }
 *   export const app = new Hono().use(forwardTraceHeaders({ trust: "mesh" }));
 *
 *   // your graph file; langgraph.json: "graphs": { "my_agent": "./agent.ts:graph" }
 *   export const graph = continueTrace(() => builder.compile({ name: "my_agent" }));
 *
 * and send `langsmith-trace` and `baggage` with every call (the SDK client's
 * `onRequest` hook, see services/writing-client.ts).
 *
 * Why it is needed: the server copies only `x-*` request headers (except
 * x-api-key, x-tenant-id, x-service-key) and user-agent into
 * `config.configurable` (langgraph-api dist/utils/run-auth.mjs), so
 * `langsmith-trace` and `baggage` never reach the graph and the server's run
 * is always a new root. forwardTraceHeaders copies them to `x-langsmith-trace`
 * and `x-baggage`; continueTrace, a per-run graph factory, rebuilds the
 * caller's run from them and binds a LangChain tracer to it, with the caller's
 * metadata and tags, so every run of the graph (LLM and tool runs included)
 * nests under the caller and carries its thread and user ids.
 *
 * The server also saves `x-*` headers in the thread's config and merges them
 * into every later run on that thread: a run without trace headers would be
 * parented under an earlier request. So both headers are always set, empty
 * when the request has none, which overwrites the stale values.
 *
 * Headers are validated with the express middleware's parsers (the same
 * limits and trust rules as the other services); a bad header means a new root,
 * never a failed run.
 */
import type { MiddlewareHandler } from "hono";
import type { RunnableConfig } from "@langchain/core/runnables";
import { CallbackManager } from "@langchain/core/callbacks/manager";
import { LangChainTracer } from "@langchain/core/tracers/tracer_langchain";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { asyncExitHook } from "exit-hook";
import { RunTree } from "langsmith/run_trees";
import {
  DEFAULT_LIMITS,
  parentFromValidatedContext,
  parseTraceHeader,
  sanitizeBaggage,
  type HeaderLimits,
} from "@tracing-patterns/kit";

/** The configurable keys the server gives the graph (it lower-cases header names). */
export const TRACE_KEY = "x-langsmith-trace";
export const BAGGAGE_KEY = "x-baggage";

/**
 * Whose trace headers reach the graph: "mesh" (your own services) or
 * "edge" (none: every run is a new root), or a function of the request.
 */
export type AgentServerTrust = "mesh" | "edge" | ((request: Request) => boolean);

/** Hono middleware for the server's custom HTTP app: copies the trace headers to names the server passes on. */
export function forwardTraceHeaders(options: { trust: AgentServerTrust }): MiddlewareHandler {
  return async (c, next) => {
    const request = c.req.raw;
    let trusted = false;
    try {
      trusted = options.trust === "mesh" || (typeof options.trust === "function" && options.trust(request));
    } catch {
      // A trust check that throws means untrusted, as in the express middleware.
    }
    // Set even when absent or untrusted: a caller-sent x-langsmith-trace must not bypass
    // the trust check, and an empty value overwrites the one the thread saved.
    request.headers.set(TRACE_KEY, trusted ? (request.headers.get("langsmith-trace") ?? "") : "");
    request.headers.set(BAGGAGE_KEY, trusted ? (request.headers.get("baggage") ?? "") : "");
    await next();
  };
}

export interface ContinueTraceOptions {
  /** Let the caller's baggage pick this server's project. Default false. */
  allowProjectOverride?: boolean;
  /** Let the caller's baggage add `langsmith-replicas`. Default false. */
  allowReplicas?: boolean;
  limits?: Partial<HeaderLimits>;
}

/** Anything compiled from a StateGraph: withConfig binds the tracing config to every run of it. */
interface Configurable<G> {
  withConfig(config: RunnableConfig): G;
}

/**
 * Wraps a graph builder into the per-run factory the server calls with each
 * run's config. With a valid trace header in that config, the graph it returns
 * is bound to the caller's run; without one, it is the graph as built.
 */
export function continueTrace<G extends Configurable<G>>(
  build: (config: RunnableConfig) => G | Promise<G>,
  options: ContinueTraceOptions = {},
): (config: RunnableConfig) => Promise<G> {
  return async (config) => {
    const graph = await build(config);
    const parent = parentFromConfig(config, options);
    return parent === undefined ? graph : graph.withConfig(tracingConfigFor(parent));
  };
}

/** The caller's run, rebuilt from the headers forwardTraceHeaders copied into `config.configurable`. */
export function parentFromConfig(config: RunnableConfig, options: ContinueTraceOptions = {}): RunTree | undefined {
  const configurable: Record<string, unknown> = config.configurable ?? {};
  const trace = configurable[TRACE_KEY];
  if (typeof trace !== "string" || trace === "") return undefined;
  const limits: HeaderLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const header = parseTraceHeader([trace], limits);
  if (header.kind !== "valid") {
    warnOnce(header.kind === "invalid" ? header.reason : "no trace header");
    return undefined;
  }
  const rawBaggage = configurable[BAGGAGE_KEY];
  const baggage = sanitizeBaggage(typeof rawBaggage === "string" && rawBaggage !== "" ? [rawBaggage] : undefined, {
    allowProjectOverride: options.allowProjectOverride ?? false,
    allowReplicas: options.allowReplicas ?? false,
    limits,
    ownProject: process.env.LANGSMITH_PROJECT,
  });
  if (baggage.kind === "invalid") {
    warnOnce(baggage.reason);
    return undefined;
  }
  const parent = parentFromValidatedContext(header.header.dottedOrder, baggage.baggage);
  if (parent === undefined) warnOnce("sdk-rejected");
  return parent;
}

/**
 * Callbacks, metadata and tags that make a LangChain/LangGraph call a child of
 * `parent`. The tracer takes the parent's client, project and replicas
 * (LangChainTracer.updateFromRunTree) and the callback manager its id; the
 * metadata and tags are passed separately because updateFromRunTree does not
 * copy them (@langchain/core 1.4), and a config's metadata and tags reach
 * every nested run, LLM and tool runs included.
 */
export function tracingConfigFor(parent: RunTree): RunnableConfig {
  const tracer = new LangChainTracer();
  tracer.updateFromRunTree(parent);
  const callbacks = new CallbackManager(parent.id);
  callbacks.addHandler(tracer, true);
  return { callbacks, metadata: { ...parent.metadata }, tags: [...(parent.tags ?? [])] };
}

/**
 * Sends the runs still queued when the server is stopped (SIGTERM/SIGINT).
 * The server stops through exit-hook, which exits once its hooks are done:
 * a plain signal listener would be cut off mid-flush. Call it once, from the
 * custom HTTP app's module.
 */
export function flushTracesOnExit(options: { waitMs: number } = { waitMs: 5_000 }): void {
  asyncExitHook(
    async () => {
      await awaitAllCallbacks();
      // Runs under a rebuilt parent use the SDK's shared client, new roots LangChain's default one.
      const clients = new Set([RunTree.getSharedClient(), new LangChainTracer().client]);
      await Promise.all([...clients].map((client) => ("awaitPendingTraceBatches" in client ? client.awaitPendingTraceBatches() : undefined)));
    },
    { wait: options.waitMs },
  );
}

const warned = new Set<string>();

function warnOnce(cause: string): void {
  if (warned.has(cause)) return;
  warned.add(cause);
  console.warn(`[trace-context] Started a new trace instead of continuing one: ${cause} (reported once)`);
}
