// The tracing-overhead benchmark (`npm run bench -- overhead`): every
// configuration of apps.ts runs as its own set of service processes, all
// started once, against one trace server and one model endpoint (each a
// process of its own). Each round loads every configuration in turn (the
// order rotates per round), so each ratio compares a configuration with its
// baseline measured minutes apart on the same machine, never across runs.
//
//   const results = await runOverhead({ rounds: 3, seconds: 8, ... }, log);
import { forkBench, childEnv } from "../procs.js";
import type { ModelStats } from "../model-process.js";
import type { ServerStats } from "../server-process.js";
import { CONFIGS, MICRO_VARIANTS, kitHas, projectOf, startApp, type AppConfig, type RunningApp } from "./apps.js";
import { measure, type Measurement } from "./load.js";
import type { MicroRequest, MicroResult } from "./micro.js";

export interface OverheadOptions {
  rounds: number;
  /** Length of each loaded measurement. */
  seconds: number;
  connections: number;
  /**
   * Connections for the OTel example. Its services flush in every request (otel.flush()), which in
   * OTel mode waits about half a second: with few connections its throughput would measure that wait,
   * not the CPU tracing costs.
   */
  otelConnections: number;
  /** Length of each one-connection (unloaded latency) measurement. */
  latencySeconds: number;
  /** Calls per micro-benchmark variant. */
  microCalls: number;
  /** Configuration ids to run (baselines are always added); all when empty. */
  only: readonly string[];
  cpuProfileDir?: string;
}

export interface RoundResult {
  round: number;
  /** The baseline's measurement taken just before this one (configurations other than a baseline). */
  baseline?: RoundResult;
  loaded: Measurement;
  unloaded: Measurement;
  /** Runs of this configuration's project the trace server stored during its measurements, per answered request. */
  runsPerRequest: number;
  traceServerCpuMicrosPerRequest: number;
  modelCpuMicrosPerRequest: number;
}

export interface ConfigResult {
  config: AppConfig;
  rounds: RoundResult[];
  /** Runs in the configuration's project once its services stopped (warm-up included). */
  totalRuns?: number;
}

export interface OverheadResults {
  options: OverheadOptions;
  skipped: Array<{ id: string; reason: string }>;
  configs: ConfigResult[];
  micro: Array<{ variant: string; label: string; rounds: MicroResult[] }>;
  errors: string[];
}

type Log = (line: string) => void;

export async function runOverhead(options: OverheadOptions, log: Log): Promise<OverheadResults> {
  const errors: string[] = [];
  const skipped: OverheadResults["skipped"] = [];
  const wanted = CONFIGS.filter((c) => options.only.length === 0 || options.only.includes(c.id) || (c.baseline && options.only.some((id) => CONFIGS.find((x) => x.id === id)?.app === c.app)));
  const configs = wanted.filter((c) => {
    if (c.needs && !kitHas(c.needs)) {
      skipped.push({ id: c.id, reason: `the kit on this checkout has no ${c.needs === "edge" ? "edge sampling (examples/kit/sampling.ts)" : "tail decision (examples/kit/tail.ts)"}` });
      return false;
    }
    return true;
  });

  const traceChild = forkBench("./server-process.ts", childEnv());
  const modelChild = forkBench("./model-process.ts", childEnv());
  const traceStats = async (): Promise<ServerStats> => (await traceChild.ask<{ stats: ServerStats }>({ kind: "stats" }, 30_000)).stats;
  const projectRuns = async (config: AppConfig): Promise<number> =>
    (await traceChild.ask<{ runs: Record<string, number> }>({ kind: "projectRuns" }, 30_000)).runs[projectOf(config)] ?? 0;
  const modelStats = async (): Promise<ModelStats> => (await modelChild.ask<{ stats: ModelStats }>({ kind: "stats" }, 30_000)).stats;
  const apps: RunningApp[] = [];
  const connectionsFor = (app: RunningApp): number => (app.config.app === "otel" ? options.otelConnections : options.connections);
  const results = new Map<string, ConfigResult>(configs.map((c) => [c.id, { config: c, rounds: [] }]));
  const micro: OverheadResults["micro"] = [];
  try {
    const { url: traceUrl } = await traceChild.ask<{ url: string }>({ kind: "start", dbPath: ":memory:" }, 30_000);
    const { url: modelUrl } = await modelChild.ask<{ url: string }>({ kind: "start" }, 30_000);

    // Settled: the trace server stored nothing new for a while, so the last configuration's runs are not ingested on the next one's time.
    const settle = async (): Promise<void> => {
      let last = (await traceStats()).runs;
      const deadline = Date.now() + 30_000;
      for (let stable = 0; stable < 3 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 500));
        const now = (await traceStats()).runs;
        stable = now === last ? stable + 1 : 0;
        last = now;
      }
    };

    for (const config of configs) {
      log(`starting ${config.id}: ${config.label}`);
      apps.push(await startApp(config, { traceUrl, modelUrl, cpuProfileDir: options.cpuProfileDir }));
    }
    for (const app of apps) {
      // The first requests of a fresh process compile and load code lazily and can take seconds on a busy machine:
      // a few one at a time, then a short load, all outside the measurements.
      for (let i = 0; i < 5; i++) {
        const res = await fetch(app.url, { method: app.request.method, headers: app.request.headers, body: app.request.body, signal: AbortSignal.timeout(120_000) });
        if (!res.ok) throw new Error(`${app.config.id}: warm-up request answered ${res.status}: ${await res.text()}\n${app.output()}`);
        await res.arrayBuffer();
      }
      const warm = await measure(app, { connections: connectionsFor(app), seconds: 2 });
      if (warm.failed > 0) errors.push(`${app.config.id}: ${warm.failed} warm-up requests failed\n${app.output()}`);
    }
    await settle();

    // One measurement: the load, then (settled) one connection for the unloaded latency.
    const measureConfig = async (app: RunningApp, round: number): Promise<RoundResult> => {
      // A second of unmeasured load first: a configuration idle for minutes (while the others ran) is
      // otherwise measured cold (V8 flushes the bytecode of functions not run for a while) against a hot baseline.
      await measure(app, { connections: connectionsFor(app), seconds: 1 });
      await settle();
      const runs0 = await projectRuns(app.config);
      const server0 = (await traceStats()).cpuSeconds;
      const model0 = await modelStats();
      const loaded = await measure(app, { connections: connectionsFor(app), seconds: options.seconds });
      await settle();
      const server1 = await traceStats();
      const model1 = await modelStats();
      const unloaded = await measure(app, { connections: 1, seconds: options.latencySeconds });
      await settle();
      const runs1 = await projectRuns(app.config);
      for (const [phase, m] of [["loaded", loaded], ["one-connection", unloaded]] as const) {
        if (m.failed > 0) errors.push(`${app.config.id} round ${round} ${phase}: ${m.failed} requests failed`);
      }
      const answered = Math.max(loaded.requests, 1);
      log(`round ${round}/${options.rounds} ${app.config.id}: ${Math.round(loaded.rps)} req/s, p50 ${loaded.latencyMs.p50} ms, p99 ${loaded.latencyMs.p99} ms`);
      return {
        round,
        loaded,
        unloaded,
        runsPerRequest: (runs1 - runs0) / Math.max(loaded.requests + unloaded.requests, 1),
        traceServerCpuMicrosPerRequest: ((server1.cpuSeconds - server0) * 1e6) / answered,
        modelCpuMicrosPerRequest: ((model1.cpuSeconds - model0.cpuSeconds) * 1e6) / answered,
      };
    };

    const measured = apps.filter((a) => !a.config.baseline);
    for (let round = 1; round <= options.rounds; round++) {
      // Each configuration right after a measurement of its baseline (A/B pairs): on a shared machine
      // whose load changes by the minute, only neighbours compare. The order rotates per round.
      const order = measured.map((_, i) => measured[(i + round - 1) % measured.length] as RunningApp);
      for (const app of order) {
        const base = apps.find((a) => a.config.baseline && a.config.app === app.config.app);
        const baseline = base ? await measureConfig(base, round) : undefined;
        if (base && baseline) results.get(base.config.id)?.rounds.push(baseline);
        results.get(app.config.id)?.rounds.push({ ...(await measureConfig(app, round)), ...(baseline ? { baseline } : {}) });
      }
    }

    for (let round = 0; round < options.rounds; round++) {
      for (const variant of MICRO_VARIANTS) {
        if (variant.needs && !kitHas(variant.needs)) continue;
        const child = forkBench("./overhead/micro.ts", childEnv({ LANGSMITH_ENDPOINT: traceUrl, LANGSMITH_API_KEY: "local", LANGSMITH_PROJECT: "bench-micro", ...variant.env }));
        const req: MicroRequest = { variant: variant.id, calls: options.microCalls };
        const { result } = await child.ask<{ result: MicroResult }>(req, 300_000);
        let entry = micro.find((m) => m.variant === variant.id);
        if (!entry) micro.push((entry = { variant: variant.id, label: variant.label, rounds: [] }));
        entry.rounds.push(result);
      }
      log(`micro-benchmark round ${round + 1}/${options.rounds} done`);
    }
    for (const v of MICRO_VARIANTS) if (v.needs && !kitHas(v.needs)) skipped.push({ id: `micro:${v.id}`, reason: "the kit on this checkout has no `traced`" });
  } finally {
    for (const app of apps) await app.stop().catch((e: unknown) => errors.push(`stopping ${app.config.id}: ${(e as Error).message}`));
    // After the services stopped, and so flushed: everything each configuration sent.
    for (const result of results.values()) result.totalRuns = await projectRuns(result.config).catch(() => undefined);
    await traceChild.ask({ kind: "stop" }, 30_000).catch(() => traceChild.process.kill());
    await modelChild.ask({ kind: "stop" }, 30_000).catch(() => modelChild.process.kill());
  }
  checkRuns([...results.values()], errors);
  return { options, skipped, configs: [...results.values()], micro, errors };
}

/** A configuration that must send nothing sent something, or a traced one lost runs: the bench measured the wrong thing. */
function checkRuns(results: readonly ConfigResult[], errors: string[]): void {
  for (const { config, rounds, totalRuns } of results) {
    const least = Math.min(...rounds.map((r) => r.runsPerRequest));
    const tracingOff = config.env.LANGSMITH_TRACING === "false" || config.env.LANGSMITH_TRACING_SAMPLING_RATE === "0" || config.env.TRACE_SAMPLE_RATE === "0";
    if (tracingOff && totalRuns !== 0) errors.push(`${config.id}: the trace server stored ${String(totalRuns)} runs of it although nothing should be traced`);
    if (config.id === "full" && least < 1) errors.push(`${config.id}: only ${least.toFixed(2)} runs per request reached the trace server`);
  }
}
