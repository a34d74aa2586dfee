// `npm run bench -- hostile`: the larger hostile-input campaign. fast-check generates cases from
// a seed and sends them to real processes on loopback (the kit's middleware in an express app, the
// trace server's native ingest, read queries and OTLP endpoint); this prints, per target, the
// cases tried, the answers by status, the violations (crash, 5xx, a refusal without a message,
// lost valid data, a slow health probe) and the processes' RSS before and after. A benchmark, not
// a test: it exits 0 when no property was violated, 1 otherwise. Settings:
//   HOSTILE_SEED (default 20261208), HOSTILE_CASES (per target, default 2000),
//   HOSTILE_TARGETS (comma-separated subset of kit,native,queries,otlp).
import { HOSTILE_SEED, runHostileCampaign, type TargetName } from "../tests/support/hostile/campaign.js";

const TARGETS: TargetName[] = ["kit", "native", "queries", "otlp"];

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

export async function benchHostile(): Promise<number> {
  const seed = envInt("HOSTILE_SEED", HOSTILE_SEED);
  const perTarget = envInt("HOSTILE_CASES", 2000);
  const chosen = (process.env.HOSTILE_TARGETS ?? TARGETS.join(",")).split(",").map((t) => t.trim());
  const unknown = chosen.filter((t) => !(TARGETS as string[]).includes(t));
  if (unknown.length > 0) {
    console.error(`HOSTILE_TARGETS: unknown target(s) ${unknown.join(", ")}; choose from ${TARGETS.join(", ")}`);
    return 2;
  }
  const cases = Object.fromEntries(chosen.map((t) => [t, perTarget]));
  const result = await runHostileCampaign({ seed, cases, log: (line) => console.error(`[hostile] ${line}`) });
  const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
  console.log("");
  console.log(`Hostile-input campaign, seed ${seed}, fast-check cases per target: ${perTarget}`);
  console.log("  target   cases  crashed  5xx  violations  worst probe  seconds  answers by status");
  let failed = result.exits.length > 0 || result.kitRunsLost.length > 0;
  for (const r of result.reports) {
    const fiveXx = Object.entries(r.statuses).filter(([s]) => /^5\d\d$/.test(s)).reduce((n, [, c]) => n + c, 0);
    const statuses = Object.entries(r.statuses).sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}: ${n}`).join(", ");
    console.log(`  ${r.name.padEnd(8)} ${String(r.cases).padStart(5)}  ${(r.crashed ? "yes" : "no").padStart(7)}  ${String(fiveXx).padStart(3)}  ${String(r.violationCount).padStart(10)}  ${`${r.worstProbeMs.toFixed(0)} ms`.padStart(11)}  ${(r.elapsedMs / 1000).toFixed(1).padStart(7)}  ${statuses}`);
    if (r.verified > 0) console.log(`           ${r.verified} valid runs or spans sent beside bad ones in well-formed requests found stored`);
    if (r.documented > 0) console.log(`           (${r.documented} documented 501: a LangSmith feature the local server does not have)`);
    if (r.violationCount > 0 || r.crashed) failed = true;
    for (const v of r.violations) console.log(`    violation at case ${v.index}: ${v.problem}\n      ${v.case}`);
  }
  console.log(`  kit runs answered 200 and looked up in the trace server after a flush: ${result.kitRunsChecked}, missing: ${result.kitRunsLost.length}${result.kitRunsLost.length ? ` (${result.kitRunsLost.slice(0, 5).join(", ")})` : ""}`);
  for (const m of result.memory) {
    console.log(`  ${m.process} RSS: ${mb(m.rssBeforeBytes)} MiB before, ${mb(m.rssAfterBytes)} MiB after (after GC)${m.maxRssBytes === undefined ? "" : `, peak ${mb(m.maxRssBytes)} MiB`}${m.dbBytesAfter === undefined ? "" : `; its in-memory store holds ${mb(m.dbBytesAfter)} MiB`}`);
  }
  if (result.exits.length > 0) console.log(`  process exits: ${result.exits.join(", ")}`);
  console.log(`  reproduce: HOSTILE_SEED=${seed} HOSTILE_CASES=${perTarget} HOSTILE_TARGETS=${chosen.join(",")} npm run bench -- hostile`);
  return failed ? 1 : 0;
}
