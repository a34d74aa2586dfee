// Shared plumbing for this example's tests: a local trace server and model
// endpoint on ephemeral ports, the environment the SDK and ChatOpenAI read,
// and reading a whole project back through the SDK in one query.
import { Client, type Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { runFromV2, startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";

/**
 * Removes the developer's LANGSMITH_* / LANGCHAIN_* / OPENAI_* settings:
 * a real key or LANGSMITH_RUNS_ENDPOINTS would send test runs elsewhere.
 */
export function isolateEnv(): void {
  for (const key of Object.keys(process.env)) {
    if (/^(LANGSMITH_|LANGCHAIN_|OPENAI_)/.test(key)) delete process.env[key];
  }
}

export interface LocalStack {
  traces: TraceServerHandle;
  model: ModelServerHandle;
  /** Environment for a process of `service` writing to `project`. */
  env(service: string, project: string, extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export async function startLocalStack(): Promise<LocalStack> {
  const traces = await startTraceServer({ port: 0 });
  const model = await startModelServer({ port: 0 });
  return {
    traces,
    model,
    env: (service, project, extra = {}) => ({
      LANGSMITH_TRACING: "true",
      LANGSMITH_ENDPOINT: traces.url,
      LANGSMITH_API_KEY: "local",
      LANGSMITH_PROJECT: project,
      LANGSMITH_SERVICE: service,
      OPENAI_BASE_URL: model.url,
      OPENAI_API_KEY: "local",
      ...extra,
    }),
    close: async () => {
      await Promise.all([traces.close(), model.close()]);
    },
  };
}

/** Sets this process's environment (the SDK's shared client reads it once, at its first use). */
export function useEnv(env: Record<string, string>): void {
  Object.assign(process.env, env);
}

const SELECTS: RunSelectField[] = [
  "ID", "NAME", "RUN_TYPE", "STATUS", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA",
  "EVENTS", "PARENT_RUN_IDS", "TRACE_ID", "DOTTED_ORDER", "TAGS",
];

/**
 * Every run of a project, grouped by trace id: one paged query instead of one
 * read per trace, which is what reading back hundreds of traces needs. Call it
 * after every writer has flushed (processes stopped, clients awaited).
 */
export async function readProjectTraces(client: Client, projectName: string): Promise<Map<string, Run[]>> {
  const byTrace = new Map<string, Run[]>();
  // A project exists once its first run has arrived: none means nothing arrived.
  if (!(await client.hasProject({ projectName }))) return byTrace;
  const project = await client.readProject({ projectName });
  for await (const item of client.runs.query({ project_ids: [project.id], selects: SELECTS, min_start_time: new Date(Date.now() - 3_600_000).toISOString() })) {
    const run = runFromV2(item);
    const traceId = run.trace_id ?? run.id;
    byTrace.set(traceId, [...(byTrace.get(traceId) ?? []), run]);
  }
  return byTrace;
}

export function byName(runs: readonly Run[], name: string): Run {
  const found = runs.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected one run named ${name}, found ${found.length} in ${runs.map((r) => r.name).join(", ")}`);
  return found[0] as Run;
}

export function metadataOf(run: Run): Record<string, unknown> {
  return (run.extra?.metadata ?? {}) as Record<string, unknown>;
}
