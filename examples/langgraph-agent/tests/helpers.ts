// A private stack per test file: trace server and model endpoint in this
// process, the research service, the LangGraph Agent Server and the supervisor
// as child processes, all on ephemeral loopback ports. The Agent Server is
// slow to start (seconds, ~0.5 GB): one per file, shared by its tests.
import assert from "node:assert/strict";
import { Client, type Run } from "langsmith";
import { startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { startAgents, type RunningAgents, type ServiceName } from "../launch.js";

export const SERVICES: ServiceName[] = ["supervisor", "research-agent", "writing-agent"];

export interface TestStack {
  traceServer: TraceServerHandle;
  modelServer: ModelServerHandle;
  agents: RunningAgents;
  /** The environment the processes were started with, for starting more of them. */
  env: NodeJS.ProcessEnv;
  client: Client;
  project: string;
  /** Everything the processes printed, for failure messages. */
  output(): string;
  close(): Promise<void>;
}

/** What the services read, pointing at these servers; the developer's LANGSMITH_*, LANGCHAIN_* and OPENAI_* stay out. */
export function stackEnv(traceServer: TraceServerHandle, modelServer: ModelServerHandle, project: string): NodeJS.ProcessEnv {
  const own = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_|OPENAI_|LANGGRAPH_)/.test(k)));
  return {
    ...own,
    LANGSMITH_TRACING: "true",
    LANGSMITH_ENDPOINT: traceServer.url,
    LANGSMITH_API_KEY: "local",
    LANGSMITH_PROJECT: project,
    OPENAI_BASE_URL: modelServer.url,
    OPENAI_API_KEY: "local",
  };
}

export async function startTestStack(project: string, serviceEnv: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {}): Promise<TestStack> {
  const traceServer = await startTraceServer({ port: 0 });
  const modelServer = await startModelServer({ port: 0 });
  const env = stackEnv(traceServer, modelServer, project);
  let output = "";
  let agents: RunningAgents;
  try {
    agents = await startAgents({
      env,
      ports: { supervisor: 0, "research-agent": 0, "writing-agent": 0 },
      serviceEnv,
      isolatedState: true,
      onOutput: (service, line) => {
        output = `${output}[${service}] ${line}\n`.slice(-200_000);
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
    agents,
    env,
    client,
    project,
    output: () => output,
    async close() {
      const codes = await agents.stop();
      await Promise.all([traceServer.close(), modelServer.close()]);
      // 143 is the Agent Server's clean stop: it exits through its exit hooks with 128 + SIGTERM.
      assert.deepEqual(codes, { supervisor: 0, "research-agent": 0, "writing-agent": 143 }, output.slice(-5_000));
    },
  };
}

export interface RunResponse {
  status: number;
  traceId: string;
  body: Record<string, unknown>;
}

export async function postRun(supervisorUrl: string, body: unknown): Promise<RunResponse> {
  const response = await fetch(`${supervisorUrl}/run`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body: (await response.json()) as Record<string, unknown> };
}

export function serviceOfRun(run: Run): unknown {
  return run.extra?.metadata?.LANGSMITH_SERVICE;
}

/** The runs as "parent > child [service]", sorted: parentage and services without ids or timing. */
export function shape(runs: readonly Run[]): string[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  return runs.map((r) => `${r.parent_run_id ? (byId.get(r.parent_run_id)?.name ?? "?") : "(root)"} > ${r.name} [${String(serviceOfRun(r))}]`).sort();
}

/** An agent graph as it runs on the local model: the model asks for the tool, then answers with its result. */
function agentShape(graph: string, tool: string, service: string): string[] {
  return [
    `${graph} > __start__ [${service}]`,
    `${graph} > agent [${service}]`,
    `${graph} > agent [${service}]`,
    `agent > ChatOpenAI [${service}]`,
    `agent > ChatOpenAI [${service}]`,
    // toolsCondition, the edge after each agent step.
    `agent > RunnableLambda [${service}]`,
    `agent > RunnableLambda [${service}]`,
    `${graph} > tools [${service}]`,
    `tools > ${tool} [${service}]`,
  ];
}

const SUPERVISOR_TOP = [
  "(root) > POST /run [supervisor]",
  "POST /run > supervisor [supervisor]",
  "supervisor > __start__ [supervisor]",
  "supervisor > choose_agent [supervisor]",
  "choose_agent > ChatOpenAI [supervisor]",
  "choose_agent > RunnableLambda [supervisor]",
  "supervisor > writing_agent [supervisor]",
  "writing_agent > writing_agent [writing-agent]",
  ...agentShape("writing_agent", "format_citations", "writing-agent"),
];

/** What a request routed to research makes, parent > child [service]. */
export const RESEARCH_ROUTE_SHAPE = [
  ...SUPERVISOR_TOP,
  "supervisor > research_agent [supervisor]",
  "research_agent > POST /research [research-agent]",
  "POST /research > research_agent [research-agent]",
  ...agentShape("research_agent", "search_notes", "research-agent"),
].sort();

/** What a request routed straight to writing makes. */
export const WRITING_ROUTE_SHAPE = [...SUPERVISOR_TOP].sort();

export function byName(runs: readonly Run[], name: string, service?: string): Run {
  const run = runs.find((r) => r.name === name && (service === undefined || serviceOfRun(r) === service));
  assert.ok(run, `no run named ${name}${service ? ` [${service}]` : ""} in ${runs.map((r) => r.name).join(", ")}`);
  return run;
}
