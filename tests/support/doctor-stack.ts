// Test harness of the trace doctor: a trace server in this process, instances of
// tests/support/doctor-service.ts as child processes writing to it, and the doctor run on what
// they trace, read back through the SDK like the CLI reads it.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Client, type Run } from "langsmith";
import {
  captureOutput,
  diagnoseTrace,
  queryTraceRuns,
  readDoctorInput,
  readTrace,
  startTraceServer,
  type DoctorOptions,
  type TraceDiagnosis,
  type TraceServerHandle,
} from "@tracing-patterns/setup";

const ENTRY = fileURLToPath(new URL("./doctor-service.ts", import.meta.url));

export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the trace id of the next request this service serves after the call. */
  nextTrace(): Promise<string>;
  stop(): Promise<void>;
}

/** The children's environment: the developer's LANGSMITH_* settings must not send test runs elsewhere. */
export function serviceEnv(traceServer: TraceServerHandle, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_|OPENAI_)/.test(k)));
  return { ...base, LANGSMITH_ENDPOINT: traceServer.url, LANGSMITH_API_KEY: "local", LANGSMITH_TRACING: "true", ...extra };
}

export async function spawnService(traceServer: TraceServerHandle, env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", ENTRY], {
    env: serviceEnv(traceServer, env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const waiters: Array<(id: string) => void> = [];
  let listening: ((url: string) => void) | undefined;
  const output = captureOutput(child, (line) => {
    const url = /^listening on (\S+)/.exec(line)?.[1];
    if (url) listening?.(url);
    const trace = /^trace \S+ (\S+)/.exec(line)?.[1];
    if (trace) waiters.shift()?.(trace);
  });
  const exited = once(child, "exit");
  const url = await new Promise<string>((resolve, reject) => {
    listening = resolve;
    void exited.then(() => reject(new Error(`service exited before listening:\n${output()}`)));
  });
  return {
    url,
    child,
    output,
    nextTrace: () => new Promise((resolve) => waiters.push(resolve)),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; traceId: string | null }> {
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    await response.arrayBuffer();
    return { status: response.status, traceId: response.headers.get("x-trace-id") };
  } catch {
    // The service died mid-request, which some scenarios are about.
    return { status: 0, traceId: null };
  }
}

export interface DoctorStack {
  traceServer: TraceServerHandle;
  client: Client;
  /**
   * Waits until the trace has at least `expectRuns` runs and they have ended and settled (with
   * `open`, until that many are visible, ended or not), then diagnoses it as the CLI would.
   */
  diagnose(traceId: string, expectRuns: number, options?: DoctorOptions, wait?: { open?: boolean }): Promise<TraceDiagnosis>;
  /** Resolves once `expectRuns` runs of the trace are visible, ended or not, among them runs with each of `names`. */
  visible(traceId: string, expectRuns: number, names?: string[]): Promise<Run[]>;
  /** The trace's runs, once at least `expectRuns` are visible and they have settled. */
  settle(traceId: string, expectRuns: number): Promise<Run[]>;
  close(): Promise<void>;
}

export async function startDoctorStack(): Promise<DoctorStack> {
  const traceServer = await startTraceServer({ port: 0 });
  const client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  const settle = (traceId: string, expectRuns: number): Promise<Run[]> => readTrace(traceId, { client, expectRuns, timeoutMs: 15_000 });
  const visible = async (traceId: string, expectRuns: number, names: string[] = []): Promise<Run[]> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const projects: string[] = [];
      for await (const p of client.listProjects()) projects.push(p.id);
      const runs = await queryTraceRuns(client, projects, traceId);
      if (runs.length >= expectRuns && names.every((n) => runs.some((r) => r.name === n))) return runs;
      if (Date.now() > deadline) throw new Error(`only ${runs.length} of ${expectRuns} runs of ${traceId} arrived`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return {
    traceServer,
    client,
    settle,
    visible,
    async diagnose(traceId, expectRuns, options = {}, wait = {}) {
      await (wait.open ? visible(traceId, expectRuns) : settle(traceId, expectRuns));
      const input = await readDoctorInput(traceId, { apiUrl: traceServer.url, apiKey: "local", client, waitMs: 1000 });
      return diagnoseTrace(input, options);
    },
    close: () => traceServer.close(),
  };
}

/** The kinds of a diagnosis's findings with their severity, e.g. "orphan:problem", for assertion messages. */
export function kinds(d: TraceDiagnosis): string[] {
  return d.findings.map((f) => `${f.kind}:${f.severity}`);
}
