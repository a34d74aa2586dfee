// The generated hostile-input campaign (tests/support/hostile/), a few cases per target with a
// fixed seed: fast-check mutates valid headers, native ingest bodies, read queries and OTLP
// exports, and sends them to real processes on loopback (the kit's middleware in an express app,
// the trace server). Required: no process exits, no 5xx but the documented 501, every refusal a
// 4xx with a message, the valid runs or spans sent beside bad ones stored, every run the kit
// answered for stored once the app has flushed, a health probe answered within 5 s after every 25
// cases, RSS within a generous bound. `npm run bench -- hostile` runs the same with many more
// cases (docs/reliability.md#hostile-input).
import assert from "node:assert/strict";
import { test } from "node:test";
import { HOSTILE_SEED, runHostileCampaign, type TargetName } from "./support/hostile/campaign.js";

const CASES_PER_TARGET = 150;
const MIB = 2 ** 20;

test(`hostile-input campaign, seed ${HOSTILE_SEED}, ${CASES_PER_TARGET} cases per target: no crash, no 5xx, clear refusals, nothing valid lost`, async () => {
  const targets: TargetName[] = ["kit", "native", "queries", "otlp"];
  const result = await runHostileCampaign({ seed: HOSTILE_SEED, cases: Object.fromEntries(targets.map((t) => [t, CASES_PER_TARGET])) });
  for (const r of result.reports) {
    console.log(`${r.name}: ${r.cases} cases, ${JSON.stringify(r.statuses)}, ${r.verified} valid runs or spans checked, worst probe ${r.worstProbeMs.toFixed(0)} ms`);
  }
  for (const m of result.memory) console.log(`${m.process} RSS ${(m.rssBeforeBytes / MIB).toFixed(1)} -> ${(m.rssAfterBytes / MIB).toFixed(1)} MiB`);

  assert.deepEqual(result.exits, [], "a target process exited");
  assert.deepEqual(result.reports.map((r) => r.name), targets);
  for (const r of result.reports) {
    assert.equal(r.crashed, false, r.name);
    assert.equal(r.cases, CASES_PER_TARGET, `${r.name}: every case ran`);
    assert.deepEqual(r.violations, [], `${r.name}: ${r.violationCount} violation(s)`);
    // The cases reach both sides of the target: some are taken, some refused with a 4xx of the target's own.
    const statuses = Object.keys(r.statuses);
    assert.ok(statuses.some((s) => /^2\d\d$/.test(s)), `${r.name}: nothing accepted: ${statuses.join(", ")}`);
    assert.ok(statuses.some((s) => /^4\d\d$/.test(s)), `${r.name}: nothing refused by the target itself: ${statuses.join(", ")}`);
  }
  // The per-operation promise was put to the test: valid runs and spans went out beside bad ones and were found.
  for (const name of ["native", "otlp"]) assert.ok((result.reports.find((r) => r.name === name)?.verified ?? 0) > 20, `${name}: few valid runs checked`);
  assert.ok(result.kitRunsChecked > CASES_PER_TARGET / 3, `only ${result.kitRunsChecked} kit requests were answered 200`);
  assert.deepEqual(result.kitRunsLost, [], "runs the middleware answered for, missing from the trace server after a flush");

  // Generous: the store is in memory and keeps what it accepted; the bench reports the real figures.
  for (const m of result.memory) {
    assert.ok(m.rssAfterBytes < 1024 * MIB, `${m.process}: ${(m.rssAfterBytes / MIB).toFixed(0)} MiB after the campaign`);
    assert.ok(m.rssAfterBytes - m.rssBeforeBytes < 512 * MIB, `${m.process}: grew by ${((m.rssAfterBytes - m.rssBeforeBytes) / MIB).toFixed(0)} MiB`);
  }
});
