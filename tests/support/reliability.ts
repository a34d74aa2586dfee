// Plumbing shared by the reliability tests: what the SDK prints, unhandled
// rejections, a port nothing listens on, and requests that report their trace id.
import net from "node:net";
import type { TraceStore } from "@tracing-patterns/setup";

/** Removes the developer's LANGSMITH_* / LANGCHAIN_* settings, so nothing goes to a real backend. */
export function isolateFromLangSmithEnv(): void {
  for (const key of Object.keys(process.env)) if (key.startsWith("LANGSMITH_") || key.startsWith("LANGCHAIN_")) delete process.env[key];
}

export interface ConsoleCapture {
  /** First line of each console.warn / console.error call, in order, except Node's process warnings. */
  readonly lines: string[];
  restore(): void;
}

/** The SDK reports send failures on console.warn / console.error; this collects them. */
export function captureConsole(): ConsoleCapture {
  const lines: string[] = [];
  const original = { warn: console.warn, error: console.error };
  const record = (...args: unknown[]): void => {
    const line = args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(" ").split("\n")[0] ?? "";
    // Node's own process warnings (node:sqlite is experimental) are not the SDK's.
    if (!/^\(node:\d+\) \w*Warning/.test(line)) lines.push(line);
  };
  console.warn = record;
  console.error = record;
  return {
    lines,
    restore() {
      console.warn = original.warn;
      console.error = original.error;
    },
  };
}

/** Collects unhandled promise rejections of this process until stopped. */
export function trackUnhandledRejections(): { readonly seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on("unhandledRejection", onRejection);
  return { seen, stop: () => process.off("unhandledRejection", onRejection) };
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

export interface Served {
  status: number;
  traceId: string;
  body: string;
}

export async function get(url: string): Promise<Served> {
  const response = await fetch(url);
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body: await response.text() };
}

/** Traces whose `runs` runs are all stored and ended. */
export function completeTraces(store: TraceStore, traceIds: readonly string[], runs: number): string[] {
  return traceIds.filter((id) => {
    const stored = store.getTraceRuns(id);
    return stored.length === runs && stored.every((r) => r.end_time);
  });
}

/** Traces with no run stored at all. */
export function absentTraces(store: TraceStore, traceIds: readonly string[]): string[] {
  return traceIds.filter((id) => store.getTraceRuns(id).length === 0);
}
