// `npm run bench -- overhead`: the tracing-overhead benchmark's settings from
// the environment, the run, the table on stdout and bench/results/overhead.json.
// Called by setup/cli/bench.ts; returns the errors (something broke, not a
// missed target), which make the bench exit 1.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fmtRange, machine, printSummary, summarize } from "./report.js";
import { runOverhead, type OverheadOptions } from "./run.js";

type EnvInt = (name: string, fallback: number, min: number) => number;

export async function benchOverhead(outDir: string, envInt: EnvInt, log: (line: string) => void): Promise<string[]> {
  const options: OverheadOptions = {
    rounds: envInt("BENCH_OVERHEAD_ROUNDS", 3, 1),
    seconds: envInt("BENCH_OVERHEAD_SECONDS", 4, 1),
    connections: envInt("BENCH_OVERHEAD_CONNECTIONS", 8, 1),
    otelConnections: envInt("BENCH_OVERHEAD_OTEL_CONNECTIONS", 64, 1),
    latencySeconds: envInt("BENCH_OVERHEAD_LATENCY_SECONDS", 1, 1),
    microCalls: envInt("BENCH_MICRO_CALLS", 10_000, 100),
    only: (process.env.BENCH_OVERHEAD_CONFIGS ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0),
    cpuProfileDir: process.env.BENCH_CPU_PROFILE ? resolve(process.env.BENCH_CPU_PROFILE) : undefined,
  };
  const before = machine();
  console.log(`Tracing overhead: machine ${JSON.stringify(before)}`);
  if ((before.loadAverage as number[])[0]! > 0.5) log(`the machine is busy (load average ${JSON.stringify(before.loadAverage)}); figures will be low and noisy`);
  const results = await runOverhead(options, log);
  const summary = summarize(results);
  const after = machine();
  console.log("");
  console.log(`Tracing overhead of examples/multi-service-app (4 services) and examples/opentelemetry (2 services), ${options.rounds} rounds,`);
  console.log(`${options.seconds} s at ${options.connections} connections each (the OTel example at ${options.otelConnections}); ratios are to the app's untraced baseline measured just before:`);
  printSummary(summary, (line) => console.log(line));
  console.log("");
  console.log("  micro-benchmark, one call of a trivial async function (CPU us per call, range over rounds):");
  for (const m of results.micro) {
    console.log(`    ${m.label.padEnd(48)} ${fmtRange({ min: Math.min(...m.rounds.map((r) => r.cpuMicrosPerCall)), max: Math.max(...m.rounds.map((r) => r.cpuMicrosPerCall)) }, 1)}`);
  }
  for (const s of results.skipped) console.log(`  not measured: ${s.id}: ${s.reason}`);
  console.log(`  load average (1, 5, 15 min): ${JSON.stringify(before.loadAverage)} before, ${JSON.stringify(after.loadAverage)} after`);
  const file = {
    date: new Date().toISOString(),
    machine: { ...before, loadAverage: { before: before.loadAverage, after: after.loadAverage } },
    code: codeVersion(),
    sdk: (createRequire(import.meta.url)("langsmith/package.json") as { version: string }).version,
    options,
    summary,
    skipped: results.skipped,
    micro: results.micro,
    rounds: results.configs.map((c) => ({ id: c.config.id, label: c.config.label, env: c.config.env, untraced: c.config.untraced === true, rounds: c.rounds })),
    errors: results.errors,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "overhead.json"), `${JSON.stringify(file, null, 2)}\n`);
  console.log(`\nresults: ${join(outDir, "overhead.json")}`);
  return results.errors;
}

function codeVersion(): { commit: string; modified: boolean } | undefined {
  try {
    const git = (...args: string[]): string => execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return { commit: git("rev-parse", "HEAD"), modified: git("status", "--porcelain", "--", "examples", "bench", ":!bench/results") !== "" };
  } catch {
    return undefined;
  }
}
