// A private stack per test file: trace server (file-backed, so it can go down
// and come back) and model endpoint in this process, the two services as child
// processes on free loopback ports, and ways to call them and read what the
// trace server stored.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { startServices, type RunningServices, type ServiceName } from "../launch.js";

export interface TestStack {
  dir: string;
  traceServer: TraceServerHandle;
  modelServer: ModelServerHandle;
  services: RunningServices;
  project: string;
  /** Everything the services printed, prefixed with their name. */
  output(): string;
  /** Stops the trace server (the store stays on disk) and starts it again on the same port. */
  traceServerDown(): Promise<void>;
  traceServerUp(): Promise<void>;
  close(): Promise<Record<ServiceName, number | null>>;
}

/** The developer's LangSmith and OpenAI settings stay out of the children. */
function isolatedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_|OPENAI_)/.test(k)));
}

export async function startTestStack(project: string, serviceEnv: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = {}, extraEnv: NodeJS.ProcessEnv = {}): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), "production-monitoring-"));
  const dbPath = join(dir, "traces.sqlite");
  let traceServer = await startTraceServer({ port: 0, dbPath, log: () => undefined });
  const modelServer = await startModelServer({ port: 0 });
  const { port } = traceServer;
  let output = "";
  let services: RunningServices;
  try {
    services = await startServices({
      env: {
        ...isolatedEnv(),
        TRACING_PATTERNS_OFFLINE: "true",
        TRACE_SERVER_URL: traceServer.url,
        MODEL_SERVER_URL: modelServer.url,
        LANGSMITH_PROJECT: project,
        LANGSMITH_FAILED_TRACES_DIR: join(dir, "failed-traces"),
        DEMO_FAULTS: "true",
        ...extraEnv,
      },
      serviceEnv,
      onOutput: (service, line) => {
        output += `[${service}] ${line}\n`;
      },
    });
  } catch (error) {
    await Promise.all([traceServer.close(), modelServer.close()]);
    throw error;
  }
  let down = false;
  return {
    dir,
    get traceServer() {
      return traceServer;
    },
    modelServer,
    services,
    project,
    output: () => output,
    async traceServerDown() {
      await traceServer.close();
      down = true;
    },
    async traceServerUp() {
      traceServer = await startTraceServer({ port, dbPath, log: () => undefined });
      down = false;
    },
    async close() {
      const codes = await services.stop();
      if (!down) await traceServer.close();
      await modelServer.close();
      await rm(dir, { recursive: true, force: true });
      return codes;
    },
  };
}

export interface ChatResult {
  status: number;
  traceId: string;
  body: string;
}

/** POST /chat; `stream` asks for Server-Sent Events. The body is read to the end. */
export async function chat(url: string, message: string, options: { fault?: "slow" | "fail"; stream?: boolean } = {}): Promise<ChatResult> {
  const response = await fetch(`${url}/chat`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: options.stream ? "text/event-stream" : "application/json",
      ...(options.fault ? { "x-demo-fault": options.fault } : {}),
    },
    body: JSON.stringify({ message }),
  });
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body: await response.text() };
}

/** One series' value from a Prometheus text exposition, or undefined when absent. */
export function metricValue(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of exposition.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^([^{\s]+)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const seriesLabels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => seriesLabels[k] === v)) total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

/** Polls `condition` every 100 ms until it holds; rejects with `describe()` at the deadline. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How many runs of the trace are stored, and whether every one of them has ended. */
export function traceState(stack: TestStack, traceId: string): { runs: number; ended: boolean } {
  const runs = stack.traceServer.store.getTraceRuns(traceId);
  return { runs: runs.length, ended: runs.every((r) => Boolean(r.end_time)) };
}

/** Every column of every run the trace server stored, one JSON text per run. */
export function storedRunTexts(stack: TestStack): Array<{ name: string; text: string }> {
  const rows = stack.traceServer.store.db.prepare("SELECT * FROM runs").all() as Array<Record<string, unknown>>;
  return rows.map((row) => ({ name: String(row.name), text: JSON.stringify(row) }));
}

/**
 * Waits until each trace has runs, all of them ended, and nothing new has arrived for a second
 * (runs of one request come from two processes, each sending in its own batches).
 */
export async function waitForSettledTraces(stack: TestStack, traceIds: readonly string[], timeoutMs = 60_000): Promise<Array<{ runs: number; ended: boolean }>> {
  let last = "";
  let stableSince = Date.now();
  let states: Array<{ runs: number; ended: boolean }> = [];
  await waitUntil(
    () => {
      states = traceIds.map((id) => traceState(stack, id));
      const now = JSON.stringify(states);
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
      return states.every((s) => s.runs > 0 && s.ended) && Date.now() - stableSince >= 1_000;
    },
    timeoutMs,
    () => last,
  );
  return states;
}
