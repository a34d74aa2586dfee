// The Prometheus rules are valid (`promtool check rules`), their unit tests
// pass (`promtool test rules`), and a broken rule is caught, so the check can fail.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { RULES_FILE } from "../harness/prometheus.js";

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync("promtool", args, { cwd: dirname(RULES_FILE), encoding: "utf8" });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test("promtool check rules accepts rules.yml and counts every rule", () => {
  const { status, output } = promtool("check", "rules", RULES_FILE);
  assert.equal(status, 0, output);
  assert.match(output, /SUCCESS: 10 rules found/);
});

test("promtool test rules: each alert fires on the series that should trip it and not before; the recording rules compute their ratios", () => {
  const { status, output } = promtool("test", "rules", "rules.test.yml");
  assert.equal(status, 0, output);
  assert.match(output, /SUCCESS/);
});

test("a rule with a broken expression is refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rules-"));
  try {
    const broken = (await readFile(RULES_FILE, "utf8")).replace("rate(http_requests_total[1m])", "rate(http_requests_total[1m]");
    await writeFile(join(dir, "rules.yml"), broken);
    const { status, output } = promtool("check", "rules", join(dir, "rules.yml"));
    assert.notEqual(status, 0);
    assert.match(output, /FAILED/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
