// Load and CPU accounting for the overhead benchmark: autocannon (its
// programmatic API) against one running app, and each service's CPU time
// read from /proc/<pid>/stat before and after, which is the same utime +
// stime that process.cpuUsage() returns inside the process, read from outside
// so the services need no hook.
//
//   const m = await measure(app, { connections: 8, seconds: 10 });
//   m.rps, m.latencyMs.p99, m.cpuMicrosPerRequest.gateway
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import type { RunningApp } from "./apps.js";

export interface LoadOptions {
  connections: number;
  seconds: number;
}

export interface Measurement {
  requests: number;
  /** Answered 2xx per second. */
  rps: number;
  latencyMs: { p50: number; p99: number };
  /** Anything but a 2xx answer: non-2xx statuses, connection errors, timeouts. */
  failed: number;
  /** CPU time of each service (user + system) per answered request, in µs. */
  cpuMicrosPerRequest: Record<string, number>;
}

/** Runs the load once and reads every service's CPU time around it. */
export async function measure(app: RunningApp, options: LoadOptions): Promise<Measurement> {
  const before = cpuOf(app.pids);
  const result = await autocannon({
    url: app.url,
    method: app.request.method,
    headers: app.request.headers,
    body: app.request.body,
    connections: options.connections,
    duration: options.seconds,
    timeout: 30,
  });
  const after = cpuOf(app.pids);
  const ok = result["2xx"];
  const cpuMicrosPerRequest: Record<string, number> = {};
  for (const [service, micros] of Object.entries(after)) cpuMicrosPerRequest[service] = (micros - (before[service] ?? 0)) / Math.max(ok, 1);
  return {
    requests: ok,
    rps: ok / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    failed: result.non2xx + result.errors,
    cpuMicrosPerRequest,
  };
}

let ticksPerSecond: number | undefined;

/** CPU time (user + system) of a live process, in µs, from /proc (Linux). */
export function processCpuMicros(pid: number): number {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces and parentheses: count fields after its closing ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) / ticksPerSecond) * 1e6;
}

function cpuOf(pids: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [service, pid] of Object.entries(pids)) out[service] = processCpuMicros(pid);
  return out;
}
