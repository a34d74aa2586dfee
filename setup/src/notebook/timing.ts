/**
 * Small measuring helpers for the cost sections of notebooks. The figures are whatever the run
 * produced on that machine; none of this is a benchmark (see bench/ for those).
 *
 *   console.table([timePerCall("run.toHeaders()", 20_000, () => run.toHeaders())]);
 *   const cmp = await compareLatency({ bare: () => get(a), traced: () => get(b) }, { requests: 300 });
 *   console.table(cmp.table);
 *   percentile(values, 95); median(values); durationMs(run);
 */
import { toMs } from "../traces/tree.js";

/** The value at percentile p (0-100) of values, nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** x rounded to `digits` decimals (default 2). */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A run's duration in ms from its start and end times; NaN when either is missing. */
export function durationMs(run: { start_time?: number | string; end_time?: number | string | null } | undefined): number {
  const start = toMs(run?.start_time);
  const end = toMs(run?.end_time);
  return start === undefined || end === undefined ? NaN : end - start;
}

/** Microseconds per call of a synchronous fn, after 1000 warm-up calls: one row for console.table. */
export function timePerCall(label: string, iterations: number, fn: () => unknown): { operation: string; "µs per call": number } {
  for (let i = 0; i < 1000; i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  return { operation: label, "µs per call": round(ns / 1000) };
}

export interface LatencyComparison<K extends string> {
  /** Milliseconds per call, per variant, in call order. */
  samples: Record<K, number[]>;
  /** requests, median and p95 per variant, for console.table. */
  table: Record<K, { requests: number; "median ms": number; "p95 ms": number }>;
}

/**
 * Times async calls of each variant in turn (a, b, a, b, ...), so that machine noise hits all of
 * them alike: `warmup` rounds first (default 50, not recorded), then `requests` rounds.
 */
export async function compareLatency<K extends string>(variants: Record<K, () => Promise<unknown>>, options: { requests: number; warmup?: number }): Promise<LatencyComparison<K>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  const rounds = (options.warmup ?? 50) + options.requests;
  for (let i = 0; i < rounds; i++) {
    for (const name of names) {
      const start = performance.now();
      await variants[name]();
      if (i >= rounds - options.requests) samples[name].push(performance.now() - start);
    }
  }
  const table = Object.fromEntries(
    names.map((k) => [k, { requests: samples[k].length, "median ms": round(median(samples[k])), "p95 ms": round(percentile(samples[k], 95)) }]),
  ) as LatencyComparison<K>["table"];
  return { samples, table };
}
