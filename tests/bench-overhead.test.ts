// The tracing-overhead benchmark (bench/overhead) end to end in its smallest
// configuration: the untraced baseline and "tracing off" of the multi-service
// app, one round of one second each, and the micro-benchmark. It checks that
// the result is well formed and consistent (every request answered, nothing
// traced when tracing is off, CPU read for every service), never the figures.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { MICRO_VARIANTS, kitHas } from "../bench/overhead/apps.js";
import { summarize } from "../bench/overhead/report.js";
import { runOverhead } from "../bench/overhead/run.js";

const HOOK = fileURLToPath(new URL("../bench/untraced/register.mjs", import.meta.url));

test("the untraced hook turns application code's traceable into a plain call, and only there", () => {
  const script = "import { traceable, isTraceableFunction } from 'langsmith/traceable'; console.log(isTraceableFunction(traceable(async () => 1)))";
  const run = (nodeOptions: string): string =>
    execFileSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: "utf8" }).trim();
  assert.equal(run(""), "true");
  assert.equal(run(`--import=${HOOK}`), "false");
});

test("npm run bench -- overhead, tiny: the baseline and tracing off, one round, a well-formed result", async () => {
  const lines: string[] = [];
  const results = await runOverhead(
    { rounds: 1, seconds: 1, connections: 2, otelConnections: 2, latencySeconds: 1, microCalls: 200, only: ["off"] },
    (line) => lines.push(line),
  );
  assert.deepEqual(results.errors, [], lines.join("\n"));
  assert.deepEqual(
    results.configs.map((c) => c.config.id),
    ["untraced", "off"],
  );
  for (const { config, rounds } of results.configs) {
    assert.equal(rounds.length, 1);
    const [round] = rounds;
    assert.ok(round && round.loaded.requests > 0, `${config.id}: no request answered`);
    assert.equal(round.loaded.failed + round.unloaded.failed, 0);
    assert.equal(round.runsPerRequest, 0, `${config.id} sent runs with tracing off`);
    assert.deepEqual(Object.keys(round.loaded.cpuMicrosPerRequest).sort(), ["gateway", "llm", "orchestrator", "retrieval"]);
    for (const [service, micros] of Object.entries(round.loaded.cpuMicrosPerRequest)) assert.ok(micros > 0, `${config.id}: no CPU read for ${service}`);
  }
  assert.deepEqual(
    results.micro.map((m) => m.variant),
    MICRO_VARIANTS.filter((v) => !v.needs || kitHas(v.needs)).map((v) => v.id),
  );
  for (const m of results.micro) assert.ok(m.rounds[0] && m.rounds[0].cpuMicrosPerCall > 0);

  const summary = summarize(results);
  const off = summary.configs.find((c) => c.id === "off");
  assert.ok(off?.ratio && Number.isFinite(off.ratio.rps.min) && off.ratio.rps.min > 0);
  assert.ok(off.addedCpuMicrosPerRequest && Object.keys(off.addedCpuMicrosPerRequest.byService).length === 4);
  assert.equal(summary.targets.find((t) => t.config === "off")?.met !== undefined, true);
});
