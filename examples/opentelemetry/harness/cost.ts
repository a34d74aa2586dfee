/**
 * Measures what tracing costs per call in LangSmith's OTel mode and in its native mode (run batches),
 * with the same workload, each in a fresh process (cost-worker.ts), for notebooks and tests:
 *
 *   const sample = await measureTracingCost({ mode: "otel", calls: 200, env: { LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, LANGSMITH_PROJECT } });
 *   sample.cpuMsPerCall, sample.wallMsPerCall, sample.lastTraceId
 *
 * Alternate the modes when comparing, so that whatever else the machine is doing hits both.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { EXAMPLE_DIR } from "./processes.js";

export interface CostSample {
  mode: "native" | "otel";
  calls: number;
  /** calls plus the warm-up calls made first: the traces the process sent in all. */
  tracedCalls: number;
  /** Time the traced calls took, per call (the flush excluded: it runs off the request path). */
  wallMsPerCall: number;
  /** CPU the process spent per call, the final flush included. */
  cpuMsPerCall: number;
  /** How long the final flush took. */
  flushMs: number;
  /** The last call's LangSmith trace id, to read it back. */
  lastTraceId: string;
}

export async function measureTracingCost(options: { mode: "native" | "otel"; calls: number; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CostSample> {
  const worker = join(EXAMPLE_DIR, "harness", "cost-worker.ts");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...options.env,
    LANGSMITH_TRACING: "true",
    TRACING_MODE: options.mode,
    CALLS: String(options.calls),
  };
  const { stdout } = await promisify(execFile)(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", worker], {
    cwd: EXAMPLE_DIR,
    env,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 1 << 20,
  });
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as CostSample;
  } catch {
    throw new Error(`cost worker (${options.mode}) printed no result:\n${stdout.slice(-2000)}`);
  }
}
