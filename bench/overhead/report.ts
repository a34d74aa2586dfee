// Turns the overhead benchmark's rounds into what it reports: per
// configuration, ratios to the baseline measured just before it (throughput,
// p50/p99 latency), the CPU it adds per request per service, and the range of
// each over the rounds; the targets checked against those ranges; a table on
// stdout. `summarize` is pure, so the results file keeps both raw rounds and
// the summary.
import { cpus, loadavg, totalmem } from "node:os";
import type { OverheadResults, RoundResult } from "./run.js";

export interface Range {
  min: number;
  max: number;
}

export interface ConfigSummary {
  id: string;
  label: string;
  app: string;
  baseline: boolean;
  rps: Range;
  latencyMs: { p50: Range; p99: Range; oneConnectionP50: Range; oneConnectionP99: Range };
  /** Ratios to the baseline measured just before; absent for a baseline. */
  ratio?: { rps: Range; p50: Range; p99: Range; oneConnectionP50: Range };
  cpuMicrosPerRequest: { total: Range; byService: Record<string, Range> };
  /** CPU per request above the baseline's measured just before. */
  addedCpuMicrosPerRequest?: { total: Range; byService: Record<string, Range> };
  runsPerRequest: Range;
  traceServerCpuMicrosPerRequest: Range;
}

export interface Target {
  what: string;
  config: string;
  goal: string;
  measured: Range | undefined;
  met: boolean | undefined;
}

export function summarize(results: OverheadResults): { configs: ConfigSummary[]; targets: Target[] } {
  const byId = new Map(results.configs.map((c) => [c.config.id, c]));
  const configs = results.configs.map((c): ConfigSummary => {
    const paired = c.rounds.map((r) => [r, r.baseline] as const);
    const services = Object.keys(c.rounds[0]?.loaded.cpuMicrosPerRequest ?? {});
    const total = (r: RoundResult): number => Object.values(r.loaded.cpuMicrosPerRequest).reduce((a, b) => a + b, 0);
    const summary: ConfigSummary = {
      id: c.config.id,
      label: c.config.label,
      app: c.config.app,
      baseline: c.config.baseline === true,
      rps: range(c.rounds.map((r) => r.loaded.rps)),
      latencyMs: {
        p50: range(c.rounds.map((r) => r.loaded.latencyMs.p50)),
        p99: range(c.rounds.map((r) => r.loaded.latencyMs.p99)),
        oneConnectionP50: range(c.rounds.map((r) => r.unloaded.latencyMs.p50)),
        oneConnectionP99: range(c.rounds.map((r) => r.unloaded.latencyMs.p99)),
      },
      cpuMicrosPerRequest: { total: range(c.rounds.map(total)), byService: Object.fromEntries(services.map((s) => [s, range(c.rounds.map((r) => r.loaded.cpuMicrosPerRequest[s] ?? 0))])) },
      runsPerRequest: range(c.rounds.map((r) => r.runsPerRequest)),
      traceServerCpuMicrosPerRequest: range(c.rounds.map((r) => r.traceServerCpuMicrosPerRequest)),
    };
    const pairs = paired.filter((p): p is readonly [RoundResult, RoundResult] => p[1] !== undefined);
    if (!c.config.baseline && pairs.length > 0) {
      const ratio = (f: (r: RoundResult) => number): Range => range(pairs.map(([r, b]) => f(r) / Math.max(f(b), 1e-9)));
      summary.ratio = {
        rps: ratio((r) => r.loaded.rps),
        p50: ratio((r) => r.loaded.latencyMs.p50),
        p99: ratio((r) => r.loaded.latencyMs.p99),
        oneConnectionP50: ratio((r) => r.unloaded.latencyMs.p50),
      };
      summary.addedCpuMicrosPerRequest = {
        total: range(pairs.map(([r, b]) => total(r) - total(b))),
        byService: Object.fromEntries(services.map((s) => [s, range(pairs.map(([r, b]) => (r.loaded.cpuMicrosPerRequest[s] ?? 0) - (b.loaded.cpuMicrosPerRequest[s] ?? 0)))])),
      };
    }
    return summary;
  });
  const find = (id: string): ConfigSummary | undefined => (byId.has(id) ? configs.find((c) => c.id === id) : undefined);
  const atLeast = (id: string, goal: number, what: string): Target => {
    const measured = find(id)?.ratio?.rps;
    return { what, config: id, goal: `>= ${goal} of untraced throughput`, measured, met: measured === undefined ? undefined : measured.min >= goal };
  };
  const sampledOut = (id: string, what: string): Target => {
    const added = find(id)?.addedCpuMicrosPerRequest?.byService;
    // Per service: the target is what one sampled-out request adds where it passes, so the worst service counts.
    const measured = added === undefined ? undefined : { min: Math.max(...Object.values(added).map((r) => r.min)), max: Math.max(...Object.values(added).map((r) => r.max)) };
    return { what, config: id, goal: "< 20 µs added CPU per request, per service", measured, met: measured === undefined ? undefined : measured.max < 20 };
  };
  // The same question without the app's noise: one request through one service, minus the same request untraced, per round.
  const microAdded = (variant: string, what: string): Target => {
    const base = results.micro.find((m) => m.variant === "request-untraced")?.rounds ?? [];
    const rounds = results.micro.find((m) => m.variant === variant)?.rounds ?? [];
    const diffs = rounds.flatMap((r, i) => (base[i] ? [r.cpuMicrosPerCall - base[i].cpuMicrosPerCall] : []));
    const measured = diffs.length === 0 ? undefined : range(diffs);
    return { what, config: `micro:${variant}`, goal: "< 20 µs added CPU per request, per service", measured, met: measured === undefined ? undefined : measured.max < 20 };
  };
  const targets: Target[] = [
    atLeast("edge10", 0.9, "edge sampling 10%, pass-through"),
    atLeast("full", 0.5, "100% traced"),
    microAdded("request-drop", "a request dropped at the edge, one service (micro-benchmark)"),
    microAdded("request-sdk0", "a request sampled out by the SDK, one service (micro-benchmark)"),
    sampledOut("edge0", "a sampled-out request, edge pass-through (app)"),
    sampledOut("sdk0", "a sampled-out request, SDK sampling (app)"),
    sampledOut("off", "a request with tracing off (app)"),
  ];
  return { configs, targets };
}

function range(values: readonly number[]): Range {
  return values.length === 0 ? { min: Number.NaN, max: Number.NaN } : { min: Math.min(...values), max: Math.max(...values) };
}

/** "0.42-0.51", or one number when the range is a point at this precision. */
export function fmtRange(r: Range | undefined, digits = 2, suffix = ""): string {
  if (r === undefined || Number.isNaN(r.min)) return "-";
  const a = r.min.toFixed(digits);
  const b = r.max.toFixed(digits);
  return `${a === b ? a : `${a} to ${b}`}${suffix}`;
}

export function machine(): Record<string, unknown> {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function printSummary(summary: { configs: ConfigSummary[]; targets: Target[] }, print: (line: string) => void): void {
  const rows = [
    ["configuration", "req/s", "x req/s", "x p50", "x p99", "1-conn p50 ms", "added CPU us/req", "runs/req"],
    ...summary.configs.map((c) => [
      c.label,
      fmtRange(c.rps, 0),
      c.baseline ? "1 (baseline)" : fmtRange(c.ratio?.rps),
      c.baseline ? `${fmtRange(c.latencyMs.p50, 0)} ms` : fmtRange(c.ratio?.p50),
      c.baseline ? `${fmtRange(c.latencyMs.p99, 0)} ms` : fmtRange(c.ratio?.p99),
      fmtRange(c.latencyMs.oneConnectionP50, 1),
      c.baseline ? `(${fmtRange(c.cpuMicrosPerRequest.total, 0)} in all)` : fmtRange(c.addedCpuMicrosPerRequest?.total, 0),
      fmtRange(c.runsPerRequest, 1),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows) print(`  ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")}`);
  print("");
  print("  added CPU per request, by service (us, range over rounds):");
  for (const c of summary.configs) {
    if (!c.addedCpuMicrosPerRequest) continue;
    print(`    ${c.id.padEnd(14)} ${Object.entries(c.addedCpuMicrosPerRequest.byService).map(([s, r]) => `${s} ${fmtRange(r, 0)}`).join(", ")}`);
  }
  print("");
  for (const t of summary.targets) {
    const verdict = t.met === undefined ? "not measured" : t.met ? "met" : "missed";
    const measured = t.goal.includes("µs") ? fmtRange(t.measured, 0, " µs") : fmtRange(t.measured);
    print(`  target ${t.what} (${t.config}): ${t.goal}; measured ${measured}: ${verdict}`);
  }
}
