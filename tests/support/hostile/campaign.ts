// The hostile-input campaign: fast-check cases from one seed against real processes on loopback
// (the kit's middleware in an express app, the trace server's native ingest, its read queries and
// its OTLP endpoint), with the figures the docs report. Used by tests/hostile-campaign.test.ts
// (a few cases, asserted) and by `npm run bench -- hostile` (many, reported). Use:
//   const result = await runHostileCampaign({ seed: 20261208, cases: { kit: 100, native: 100, queries: 100, otlp: 100 } });
//   // result.reports[i]: cases, statuses, violations, worst probe; result.memory: RSS before/after
import type fc from "fast-check";
import { describeKitCase, kitCaseArb, runKitCase, type ServedRun } from "./kit-cases.js";
import { describeNativeCase, nativeCaseArb, runNativeCase } from "./native-cases.js";
import { describeOtlpCase, otlpCaseArb, runOtlpCase } from "./otlp-cases.js";
import { describeQueryCase, queryCaseArb, runQueryCase } from "./query-cases.js";
import { runCampaign, type CampaignReport, type Verdict } from "./runner.js";
import { startTargets, type Target, type Targets } from "./targets.js";
import { exchange } from "./wire.js";

export type TargetName = "kit" | "native" | "queries" | "otlp";

/** The seed of `npm test` and the default of `npm run bench -- hostile`: a failure found with it is found again. */
export const HOSTILE_SEED = 20261208;

export interface CampaignOptions {
  seed: number;
  /** Cases per target; a target left out is not attacked. */
  cases: Partial<Record<TargetName, number>>;
  /** Progress lines (the bench prints them). */
  log?: (line: string) => void;
}

export interface MemoryFigure {
  process: "trace server" | "kit app";
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** Highest RSS the process reached (trace server only: resourceUsage). */
  maxRssBytes?: number;
  /** What the in-memory store holds after the campaign (trace server only): accepted runs are kept, so RSS grows by about this. */
  dbBytesAfter?: number;
}

export interface CampaignResult {
  seed: number;
  reports: CampaignReport[];
  memory: MemoryFigure[];
  /** Kit: runs answered 200 that the trace server does not have once the app has flushed. */
  kitRunsLost: string[];
  kitRunsChecked: number;
  /** Either process's exit, if one exited. */
  exits: string[];
}

export async function runHostileCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const log = options.log ?? ((): void => undefined);
  const targets = await startTargets();
  try {
    // A first request of each kind warms the processes, so "before" is a served, idle process.
    await warm(targets);
    const serverBefore = await targets.traceServer.stats();
    const appBefore = await targets.kitApp.stats();
    const reports: CampaignReport[] = [];
    const served: ServedRun[] = [];
    const serverProbe = probeOf(targets.traceServer, "/info");
    const specs: Array<{ name: TargetName; run: () => Promise<CampaignReport> }> = [
      { name: "kit", run: () => attack("kit", kitCaseArb(), (c) => runKitCase(targets, c, served), describeKitCase, targets.kitApp, probeOf(targets.kitApp, "/health")) },
      { name: "native", run: () => attack("native", nativeCaseArb(), (c) => runNativeCase(targets, c), describeNativeCase, targets.traceServer, serverProbe) },
      { name: "queries", run: () => attack("queries", queryCaseArb(), (c) => runQueryCase(targets, c), describeQueryCase, targets.traceServer, serverProbe) },
      { name: "otlp", run: () => attack("otlp", otlpCaseArb(), (c) => runOtlpCase(targets, c), describeOtlpCase, targets.traceServer, serverProbe) },
    ];
    async function attack<C>(name: TargetName, arbitrary: fc.Arbitrary<C>, run: (c: C) => Promise<Verdict>, describe: (c: C) => string, target: Target, probe: () => Promise<void>): Promise<CampaignReport> {
      return runCampaign({ name, arbitrary, seed: targetSeed(options.seed, name), numRuns: options.cases[name] ?? 0, run, describe, probe, alive: () => target.alive() && targets.traceServer.alive() });
    }
    for (const spec of specs) {
      if (!options.cases[spec.name]) continue;
      log(`${spec.name}: ${options.cases[spec.name]} cases, seed ${options.seed}`);
      const report = await spec.run();
      log(`${spec.name}: ${report.cases} cases in ${(report.elapsedMs / 1000).toFixed(1)} s, statuses ${JSON.stringify(report.statuses)}, ${report.violationCount} violation(s)`);
      reports.push(report);
      if (report.crashed) break;
    }

    const kitRunsLost: string[] = [];
    if (targets.kitApp.alive() && targets.traceServer.alive() && served.length > 0) {
      await targets.kitApp.flush();
      for (const run of served) {
        const stored = await storedRun(targets, run.runId);
        if (stored === undefined || stored.trace_id !== run.traceId || stored.end_time === null) kitRunsLost.push(run.runId);
      }
    }
    const memory: MemoryFigure[] = [];
    if (targets.traceServer.alive()) {
      const after = await targets.traceServer.stats();
      memory.push({ process: "trace server", rssBeforeBytes: serverBefore.rssBytes, rssAfterBytes: after.rssBytes, maxRssBytes: after.maxRssBytes, dbBytesAfter: after.dbBytes });
    }
    if (targets.kitApp.alive()) {
      const after = await targets.kitApp.stats();
      memory.push({ process: "kit app", rssBeforeBytes: appBefore.rssBytes, rssAfterBytes: after.rssBytes });
    }
    const exits = [targets.traceServer.exit(), targets.kitApp.exit()].filter((e): e is string => e !== undefined);
    return { seed: options.seed, reports, memory, kitRunsLost, kitRunsChecked: served.length, exits };
  } finally {
    await targets.stop();
  }
}

/**
 * Each target's own fast-check seed, derived from the campaign's. With one seed for all, case i of
 * every target drew from the same random stream: a native case's "valid" run got the UUID a kit
 * case had just claimed as a parent in another ancestry, and the trace server rightly refused it.
 */
function targetSeed(seed: number, target: TargetName): number {
  const index: Record<TargetName, number> = { kit: 0, native: 1, queries: 2, otlp: 3 };
  return (seed + index[target] * 0x9e3779b9) | 0;
}

function probeOf(target: Target, path: string): () => Promise<void> {
  return async () => {
    const answer = await exchange(target.port, { method: "GET", path, headers: [] }, 10_000);
    if (answer.kind !== "answered" || answer.status !== 200) throw new Error(`${path}: ${answer.kind === "answered" ? answer.status : answer.error}`);
  };
}

async function storedRun(targets: Targets, runId: string): Promise<{ trace_id: string; end_time: string | null } | undefined> {
  const answer = await exchange(targets.traceServer.port, { method: "GET", path: `/runs/${runId}`, headers: [["x-api-key", "local"]] });
  if (answer.kind !== "answered" || answer.status !== 200) return undefined;
  return JSON.parse(answer.body.toString("utf8")) as { trace_id: string; end_time: string | null };
}

async function warm(targets: Targets): Promise<void> {
  await probeOf(targets.kitApp, "/edge/probe")();
  await probeOf(targets.traceServer, "/info")();
  await targets.kitApp.flush();
}
