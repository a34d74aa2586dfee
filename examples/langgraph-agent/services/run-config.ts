/**
 * The fix for metadata that stops at a service boundary. A LangChain or
 * LangGraph call made under a run rebuilt from headers (the middleware's
 * server run) becomes its child and writes to its project, but does not get
 * its metadata or tags: @langchain/core 1.4's LangChainTracer.updateFromRunTree
 * copies only the client, replicas, project and example id. A runnable
 * config's metadata and tags do reach every nested run, LLM and tool runs
 * included, so pass them explicitly:
 *
 *   await graph.invoke(input, inheritedConfig());
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import { currentRun } from "./tracing.js";

/** The current run's metadata and tags as a runnable config; empty outside a traced context. */
export function inheritedConfig(): RunnableConfig {
  const run = currentRun();
  if (run === undefined) return {};
  return { metadata: { ...run.metadata }, tags: [...(run.tags ?? [])] };
}
