// `npm run bench`: how fast the local trace server ingests real SDK traffic,
// against how fast the SDK can produce it, then what tracing costs the
// multi-service app (bench/overhead). `npm run bench -- ingest` or
// `npm run bench -- overhead` runs one part. A benchmark, not a test: it exits
// 0 whatever the figures, and 1 only when something broke (a request failed,
// a run did not land, a process did not answer).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { benchHostile } from "../../bench/hostile.js";
import { buildCaptureSet, replayRound, type CaptureSet, type ReplayRequest } from "../../bench/payloads.js";
import { benchOverhead } from "../../bench/overhead/cli.js";
import { childEnv, forkBench } from "../../bench/procs.js";
import { replay, type ReplayResult } from "../../bench/replay.js";
import type { EmitRequest, EmitResult } from "../../bench/sdk-emit.js";
import type { ServerStats } from "../../bench/server-process.js";
import { startSink, type CapturedRequest } from "../../bench/sink.js";
import { RUNS_PER_TRACE } from "../../bench/workload.js";
import { repoRoot } from "./lib/notebooks.js";

const TARGET_RATIO = 10;
const PROBE_RUNS = 5_000;

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const config = {
  /** Runs replayed into each store. */
  runs: envInt("BENCH_RUNS", 100_000, 1_000),
  /** Runs the SDK emits per emit-rate measurement. */
  sdkRuns: envInt("BENCH_SDK_RUNS", 16_000, RUNS_PER_TRACE * 10),
  /** Traces captured from the SDK as replay templates. */
  captureTraces: envInt("BENCH_CAPTURE_TRACES", 250, 10),
  connections: envInt("BENCH_CONNECTIONS", 8, 1),
  sdkConcurrency: envInt("BENCH_SDK_CONCURRENCY", 8, 1),
  /** Time cap of each timed phase; a capped phase reports what it did in the time. */
  maxSeconds: envInt("BENCH_MAX_SECONDS", 60, 1),
};

/** BENCH_CPU_PROFILE=<dir>: each child writes a V8 CPU profile there (open it in Chrome DevTools). */
function profileArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROFILE;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${resolve(dir)}`, `--cpu-prof-name=${name}-\${pid}.cpuprofile`] : [];
}

const log = (line: string): void => console.error(`[bench] ${line}`);
const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

interface ServerProcess {
  url: string;
  stats(): Promise<ServerStats>;
  stop(): Promise<void>;
}

async function startServerProcess(dbPath: string): Promise<ServerProcess> {
  // --expose-gc: memory is read after a collection, so it is what the server keeps.
  const child = forkBench("./server-process.ts", childEnv(), ["--expose-gc", ...profileArgs("server")]);
  const { url } = await child.ask<{ url: string }>({ kind: "start", dbPath }, 30_000);
  return {
    url,
    stats: async () => (await child.ask<{ stats: ServerStats }>({ kind: "stats" }, 30_000)).stats,
    stop: async () => {
      await child.ask({ kind: "stop" }, 30_000);
    },
  };
}

async function emit(url: string, traces: number, projectName: string): Promise<EmitResult> {
  // The SDK reads LANGSMITH_* from the environment too; point all of it at the local endpoint.
  const env = childEnv({ LANGSMITH_TRACING: "true", LANGSMITH_ENDPOINT: url, LANGSMITH_API_KEY: "local", LANGSMITH_SERVICE: "bench-sdk" });
  const child = forkBench("./sdk-emit.ts", env, profileArgs("sdk"));
  const req: EmitRequest = { url, traces, concurrency: config.sdkConcurrency, projectName };
  return (await child.ask<{ result: EmitResult }>(req, (config.maxSeconds + 60) * 1000)).result;
}

interface StoreResult {
  store: "memory" | "file";
  replay: ReplayResult;
  unloadedLatencyMs: ReplayResult["latencyMs"];
  runsPerSecond: number;
  stored: { runs: number; rejections: number };
  lost: number;
  serverCpuSeconds: number;
  serverCpuMicrosPerRun: number;
  per100kRuns: { rssMb: number; heapMb: number; dbMb: number };
  peak: { rssMb: number };
  after: { rssMb: number; heapMb: number; dbMb: number };
}

interface Workload {
  warmup: readonly ReplayRequest[];
  load: readonly ReplayRequest[];
  /** Sent one at a time after the load: latency without queueing. */
  probe: readonly ReplayRequest[];
}

async function benchStore(store: "memory" | "file", w: Workload): Promise<StoreResult> {
  const dir = store === "file" ? mkdtempSync(join(tmpdir(), "trace-bench-")) : undefined;
  const server = await startServerProcess(dir ? join(dir, "traces.sqlite") : ":memory:");
  try {
    // Warm-up: JIT, prepared statements and the project row, outside the timing.
    const warm = await replay(w.warmup, { url: server.url, connections: config.connections, maxSeconds: config.maxSeconds });
    if (warm.failed > 0) throw new Error(`warm-up against the ${store} store failed: ${warm.firstError ?? ""}`);
    const before = await server.stats();
    log(`${store} store: replaying ${w.load.length} requests over ${config.connections} connections`);
    const result = await replay(w.load, { url: server.url, connections: config.connections, maxSeconds: config.maxSeconds });
    const after = await server.stats();
    const probe = await replay(w.probe, { url: server.url, connections: 1, maxSeconds: config.maxSeconds });
    if (probe.failed > 0) throw new Error(`latency probe against the ${store} store failed: ${probe.firstError ?? ""}`);
    const storedRuns = after.runs - before.runs;
    const per100k = (delta: number): number => mb((delta / Math.max(storedRuns, 1)) * 100_000);
    return {
      store,
      replay: result,
      unloadedLatencyMs: probe.latencyMs,
      runsPerSecond: result.runs / result.seconds,
      stored: { runs: storedRuns, rejections: after.rejections - before.rejections },
      lost: result.runs - storedRuns,
      serverCpuSeconds: after.cpuSeconds - before.cpuSeconds,
      serverCpuMicrosPerRun: ((after.cpuSeconds - before.cpuSeconds) / Math.max(storedRuns, 1)) * 1e6,
      per100kRuns: {
        rssMb: per100k(after.rssBytes - before.rssBytes),
        heapMb: per100k(after.heapUsedBytes - before.heapUsedBytes),
        dbMb: per100k(after.dbBytes - before.dbBytes),
      },
      peak: { rssMb: mb(after.maxRssBytes) },
      after: { rssMb: mb(after.rssBytes), heapMb: mb(after.heapUsedBytes), dbMb: mb(after.dbBytes) },
    };
  } finally {
    await server.stop().catch((e: unknown) => log(`could not stop the ${store} server: ${(e as Error).message}`));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

function requestsFor(set: CaptureSet, runs: number): ReplayRequest[] {
  const out: ReplayRequest[] = [];
  for (let made = 0; made < runs; made += set.runsPerRound) out.push(...replayRound(set));
  return out;
}

async function main(): Promise<void> {
  const errors: string[] = [];
  const loadBefore = loadavg()[0] ?? 0;
  if (loadBefore > 0.5) log(`the machine is busy (load average ${loadBefore.toFixed(2)} over the last minute); figures will be low and noisy`);

  // 1. Capture: the SDK's own requests, on their way to a trace server that checks them.
  const captureServer = await startServerProcess(":memory:");
  let captured: CapturedRequest[];
  let info: unknown;
  let sdkToServer: EmitResult;
  let sdkToNull: EmitResult;
  try {
    info = await (await fetch(`${captureServer.url}/info`)).json();
    const sink = await startSink({ info, upstream: captureServer.url, capture: true });
    try {
      log(`capturing ${config.captureTraces} traces (${config.captureTraces * RUNS_PER_TRACE} runs) from the langsmith SDK`);
      await emit(sink.url, config.captureTraces, "bench-capture");
      captured = sink.captured;
    } finally {
      await sink.close();
    }
    const check = await captureServer.stats();
    // +1 trace: the emitter's warm-up.
    const expected = (config.captureTraces + 1) * RUNS_PER_TRACE;
    if (check.runs !== expected || check.rejections > 0) {
      errors.push(`capture: the trace server stored ${check.runs} of ${expected} runs with ${check.rejections} rejections`);
    }

    // 2. The SDK's emit rate: into a sink that costs nothing, and into the trace server.
    const traces = Math.ceil(config.sdkRuns / RUNS_PER_TRACE);
    log(`SDK emit rate: ${traces} traces into a null sink`);
    const nullSink = await startSink({ info });
    try {
      sdkToNull = await emit(nullSink.url, traces, "bench-sdk-null");
    } finally {
      await nullSink.close();
    }
    log(`SDK emit rate: ${traces} traces into the trace server (memory store)`);
    const beforeEmit = await captureServer.stats();
    sdkToServer = await emit(captureServer.url, traces, "bench-sdk");
    const afterEmit = await captureServer.stats();
    if (afterEmit.runs - beforeEmit.runs !== (traces + 1) * RUNS_PER_TRACE) {
      errors.push(`SDK emit: the trace server stored ${afterEmit.runs - beforeEmit.runs} of ${(traces + 1) * RUNS_PER_TRACE} runs`);
    }
  } finally {
    await captureServer.stop();
  }

  // 3. Replay payloads, fresh ids per round, compressed as the SDK compressed them.
  const set = buildCaptureSet(captured);
  const t0 = performance.now();
  const warmup = replayRound(set);
  const load = requestsFor(set, config.runs);
  const probe = requestsFor(set, PROBE_RUNS);
  const prepSeconds = (performance.now() - t0) / 1000;
  const loadBytes = load.reduce((sum, r) => sum + r.body.length, 0);
  log(`prepared ${load.length} requests (${mb(loadBytes)} MB ${set.encodings.join("/")}) in ${prepSeconds.toFixed(1)} s`);

  const stores: StoreResult[] = [];
  for (const store of ["memory", "file"] as const) {
    const r = await benchStore(store, { warmup, load, probe });
    stores.push(r);
    if (r.replay.failed > 0) errors.push(`${store}: ${r.replay.failed} requests failed, first: ${r.replay.firstError ?? ""}`);
    if (r.lost !== 0 || r.stored.rejections !== 0) errors.push(`${store}: ${r.replay.runs} runs acknowledged, ${r.stored.runs} stored, ${r.stored.rejections} rejections`);
  }

  // 4. Report.
  const sdkRate = Math.max(sdkToNull.runsPerSecond, sdkToServer.runsPerSecond);
  const ratio = (rate: number): number => round(rate / sdkRate, 2);
  // Per CPU-second, each side's cost per run: steadier than wall-clock rates when other work shares the machine.
  const sdkCpuMicrosPerRun = Math.min(...[sdkToNull, sdkToServer].map((r) => (r.cpuSeconds / r.runs) * 1e6));
  const cpuRatio = (s: StoreResult): number => round(sdkCpuMicrosPerRun / s.serverCpuMicrosPerRun, 2);
  const requestRuns = set.runsPerRound / set.templates.length;
  console.log("");
  console.log(`SDK (langsmith ${sdkVersion()}, 1 process, ${config.sdkConcurrency} traces in flight, ${set.encodings.join("/")} multipart):`);
  console.log(`  into a null sink      ${fmt(sdkToNull.runsPerSecond)} runs/s  (${sdkToNull.runs} runs, ${round(sdkToNull.cpuSeconds / sdkToNull.seconds * 100)}% of a core)`);
  console.log(`  into the trace server ${fmt(sdkToServer.runsPerSecond)} runs/s`);
  console.log("");
  console.log(`Trace server ingest (replayed SDK requests, ~${round(requestRuns)} runs and ${fmt(set.compressedBytes / set.templates.length)} bytes each, ${config.connections} connections):`);
  const rows = [
    ["store", "runs/s", "vs SDK", "p50 ms", "p99 ms", "1-conn p50", "CPU us/run", "RSS MB/100k", "heap MB/100k", "DB MB/100k", "stored/acked"],
    ...stores.map((s) => [
      s.store,
      fmt(s.runsPerSecond),
      `${ratio(s.runsPerSecond)}x`,
      round(s.replay.latencyMs.p50, 1).toString(),
      round(s.replay.latencyMs.p99, 1).toString(),
      round(s.unloadedLatencyMs.p50, 1).toString(),
      fmt(s.serverCpuMicrosPerRun),
      s.per100kRuns.rssMb.toString(),
      s.per100kRuns.heapMb.toString(),
      s.per100kRuns.dbMb.toString(),
      `${s.stored.runs}/${s.replay.runs}`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const r of rows) console.log(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")}`);
  console.log(`  latency: per request under the load above; 1-conn: one request at a time, no queueing`);
  console.log("");
  for (const s of stores) {
    const verdict = s.runsPerSecond >= TARGET_RATIO * sdkRate ? "meets" : "misses";
    console.log(
      `  ${s.store}: ${ratio(s.runsPerSecond)}x the SDK's ${fmt(sdkRate)} runs/s; ${verdict} the ${TARGET_RATIO}x target (${fmt(TARGET_RATIO * sdkRate)} runs/s). ` +
        `Per CPU-second: ${cpuRatio(s)}x (${fmt(s.serverCpuMicrosPerRun)} us to ingest a run, ${fmt(sdkCpuMicrosPerRun)} us to emit one)`,
    );
  }

  const cpu = cpus();
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      memoryGb: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      // Other work on the machine during the run skews every figure; the 1-minute load average before and after says how much there was.
      loadAverage: { before: round(loadBefore, 2), after: round(loadavg()[0] ?? 0, 2) },
    },
    config,
    code: codeVersion(),
    sdk: {
      version: sdkVersion(),
      encoding: set.encodings,
      capture: {
        requests: set.templates.length,
        runs: set.runsPerRound,
        runsWithPostAndPatchInOneRequest: set.postAndPatchTogether,
        compressedBytes: set.compressedBytes,
        uncompressedBytes: set.uncompressedBytes,
      },
      cpuMicrosPerRun: round(sdkCpuMicrosPerRun),
      nullSink: summarizeEmit(sdkToNull),
      traceServer: summarizeEmit(sdkToServer),
    },
    ingest: stores.map((s) => ({
      store: s.store,
      runsPerSecond: round(s.runsPerSecond),
      ratioToSdk: ratio(s.runsPerSecond),
      cpuRatioToSdk: cpuRatio(s),
      requests: s.replay.requests,
      failed: s.replay.failed,
      runsAcknowledged: s.replay.runs,
      runsStored: s.stored.runs,
      rejections: s.stored.rejections,
      seconds: round(s.replay.seconds, 2),
      latencyMs: { p50: round(s.replay.latencyMs.p50, 2), p99: round(s.replay.latencyMs.p99, 2), max: round(s.replay.latencyMs.max, 2) },
      unloadedLatencyMs: { p50: round(s.unloadedLatencyMs.p50, 2), p99: round(s.unloadedLatencyMs.p99, 2), max: round(s.unloadedLatencyMs.max, 2) },
      serverCpuSeconds: round(s.serverCpuSeconds, 2),
      serverCpuMicrosPerRun: round(s.serverCpuMicrosPerRun),
      loadGeneratorCpuSeconds: round(s.replay.clientCpuSeconds, 2),
      per100kRuns: s.per100kRuns,
      after: s.after,
      peak: s.peak,
    })),
    target: { ratio: TARGET_RATIO, sdkRunsPerSecond: round(sdkRate), met: stores.every((s) => s.runsPerSecond >= TARGET_RATIO * sdkRate) },
    errors,
  };
  const outDir = join(repoRoot, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: bench/results/latest.json`);
  if (errors.length > 0) {
    for (const e of errors) console.error(`[bench] ERROR ${e}`);
    process.exitCode = 1;
  }
}

function summarizeEmit(r: EmitResult): { runsPerSecond: number; runs: number; seconds: number; cpuSeconds: number } {
  return { runsPerSecond: round(r.runsPerSecond), runs: r.runs, seconds: round(r.seconds, 2), cpuSeconds: round(r.cpuSeconds, 2) };
}

/** Which trace server code was measured: the commit, and whether its sources had uncommitted changes. */
function codeVersion(): { commit: string; traceServerModified: boolean } | undefined {
  try {
    const git = (...args: string[]): string => execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return { commit: git("rev-parse", "HEAD"), traceServerModified: git("status", "--porcelain", "--", "setup/src/trace-server") !== "" };
  } catch {
    return undefined;
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function sdkVersion(): string {
  return (createRequire(import.meta.url)("langsmith/package.json") as { version: string }).version;
}

const PARTS = ["ingest", "overhead", "hostile"] as const;
const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !(PARTS as readonly string[]).includes(a));
if (unknown.length > 0) {
  console.error(`usage: npm run bench [-- ${PARTS.join(" | ")}] (ingest and overhead when none is named); unknown: ${unknown.join(" ")}`);
  process.exit(2);
}
// The hostile-input campaign (bench/hostile.ts) runs only when named.
const parts: readonly string[] = asked.length === 0 ? ["ingest", "overhead"] : asked;

async function all(): Promise<void> {
  if (parts.includes("ingest")) await main();
  if (parts.includes("overhead")) {
    const errors = await benchOverhead(join(repoRoot, "bench", "results"), envInt, log);
    for (const e of errors) console.error(`[bench] ERROR ${e}`);
    if (errors.length > 0) process.exitCode = 1;
  }
  if (parts.includes("hostile")) {
    const code = await benchHostile();
    if (code !== 0) process.exitCode = code;
  }
}

all().catch((e: unknown) => {
  console.error(`[bench] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
