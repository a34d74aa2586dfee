// A private stack per test file: trace server and model endpoint in this
// process, the four services as child processes, everything on ephemeral
// loopback ports, and a Client that reads the traces back.
import { randomBytes } from "node:crypto";
import { Client, type Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { runFromV2, startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { startServices, type RunningServices, type ServiceName } from "../launch.js";
import { INTERNAL_TOKEN_HEADER, callerToken, contextKeyFromEnv } from "../services/internal.js";

export const SERVICES: ServiceName[] = ["gateway", "orchestrator", "retrieval", "llm"];
export const API_KEY = "test-key-alice";

export interface TestStack {
  traceServer: TraceServerHandle;
  modelServer: ModelServerHandle;
  services: RunningServices;
  /** The environment the services were started with, for starting more of them. */
  env: NodeJS.ProcessEnv;
  client: Client;
  project: string;
  close(): Promise<void>;
}

/**
 * The developer's LANGSMITH_* / LANGCHAIN_* / OPENAI_* settings stay out of
 * the children: LANGSMITH_RUNS_ENDPOINTS alone would copy every test run elsewhere.
 */
function isolatedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_|OPENAI_)/.test(k)));
}

/** The environment of a service writing to `project` on these servers. */
export function stackEnv(traceServer: TraceServerHandle, modelServer: ModelServerHandle, project: string): NodeJS.ProcessEnv {
  return {
    ...isolatedEnv(),
    // Offline whatever the repository's .env says.
    TRACING_PATTERNS_OFFLINE: "true",
    TRACE_SERVER_URL: traceServer.url,
    MODEL_SERVER_URL: modelServer.url,
    LANGSMITH_PROJECT: project,
    GATEWAY_API_KEYS: `${API_KEY}=alice,test-key-bob=bob`,
    // The key the services share, as the launcher would make one.
    TRACE_CONTEXT_KEY: randomBytes(32).toString("hex"),
  };
}

/** The header an internal caller (the gateway, the orchestrator) sends, for tests that call an internal service as one. */
export function internalCaller(env: NodeJS.ProcessEnv): Record<string, string> {
  return { [INTERNAL_TOKEN_HEADER]: callerToken(contextKeyFromEnv(env)) };
}

export async function startTestStack(project: string, serviceEnv: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {}): Promise<TestStack> {
  const traceServer = await startTraceServer({ port: 0 });
  const modelServer = await startModelServer({ port: 0 });
  const env = stackEnv(traceServer, modelServer, project);
  let output = "";
  let services: RunningServices;
  try {
    services = await startServices({
      env,
      ports: { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 },
      serviceEnv,
      onOutput: (service, line) => {
        output += `[${service}] ${line}\n`;
      },
    });
  } catch (err) {
    await Promise.all([traceServer.close(), modelServer.close()]);
    throw err;
  }
  const client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  return {
    traceServer,
    modelServer,
    services,
    env,
    client,
    project,
    async close() {
      const codes = await services.stop();
      await Promise.all([traceServer.close(), modelServer.close()]);
      const failed = Object.entries(codes).filter(([, code]) => code !== 0);
      if (failed.length > 0) throw new Error(`services exited abnormally: ${JSON.stringify(codes)}\n${output}`);
    },
  };
}

export async function chat(gatewayUrl: string, message: unknown, headers: Record<string, string> = { "x-api-key": API_KEY }): Promise<{ status: number; traceId: string; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${gatewayUrl}/chat`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof message === "string" ? message : JSON.stringify(message),
  });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body, headers: response.headers };
}

export function serviceOfRun(run: Run): unknown {
  return run.extra?.metadata?.LANGSMITH_SERVICE;
}

/** The names of a trace's runs, grouped under their parent's name: a shape that ignores ids and timing. */
export function shape(runs: readonly Run[]): string[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  return runs
    .map((r) => `${r.parent_run_id ? (byId.get(r.parent_run_id)?.name ?? "?") : "(root)"} > ${r.name} [${String(serviceOfRun(r))}]`)
    .sort();
}

/** What one successful /chat request must produce, parent > child [service]. */
export const EXPECTED_SHAPE = [
  "(root) > POST /chat [gateway]",
  "POST /chat > authenticate [gateway]",
  "POST /chat > rate_limit [gateway]",
  "POST /chat > validate_request [gateway]",
  "POST /chat > call_orchestrator [gateway]",
  "call_orchestrator > POST /answer [orchestrator]",
  "POST /answer > plan [orchestrator]",
  "POST /answer > call_retrieval [orchestrator]",
  "call_retrieval > POST /search [retrieval]",
  "POST /search > search_corpus [retrieval]",
  "POST /answer > call_llm [orchestrator]",
  "call_llm > POST /generate [llm]",
  "POST /generate > generate_answer [llm]",
  "generate_answer > ChatOpenAI [llm]",
].sort();

const SELECTS: RunSelectField[] = ["ID", "NAME", "TRACE_ID", "PARENT_RUN_IDS", "ERROR", "EXTRA", "METADATA"];

/** Every run of the stack's project (none if nothing created it), by trace id. */
export async function runsByTrace(stack: TestStack): Promise<Map<string, Run[]>> {
  const byTrace = new Map<string, Run[]>();
  let projectId: string;
  try {
    projectId = (await stack.client.readProject({ projectName: stack.project })).id;
  } catch (error) {
    if (/not found/i.test(String(error))) return byTrace;
    throw error;
  }
  for await (const item of stack.client.runs.query({ project_ids: [projectId], selects: SELECTS, page_size: 1000 })) {
    const run = runFromV2(item);
    const key = run.trace_id ?? "(none)";
    byTrace.set(key, [...(byTrace.get(key) ?? []), run]);
  }
  return byTrace;
}

/** Runs whose parent is not among the runs of the same trace. */
export function orphans(byTrace: ReadonlyMap<string, readonly Run[]>): Run[] {
  const found: Run[] = [];
  for (const runs of byTrace.values()) {
    const ids = new Set(runs.map((r) => r.id));
    for (const run of runs) if (run.parent_run_id && !ids.has(run.parent_run_id)) found.push(run);
  }
  return found;
}

/** Sends `count` requests, `concurrency` at a time, and returns what each answered. */
export async function drive(gatewayUrl: string, count: number, concurrency: number, message: (i: number) => string): Promise<Array<Awaited<ReturnType<typeof chat>>>> {
  const results: Array<Awaited<ReturnType<typeof chat>>> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await chat(gatewayUrl, { message: message(i) });
      }
    }),
  );
  return results;
}
