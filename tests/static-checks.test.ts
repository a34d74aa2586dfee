// The repository stays strict-typecheck and lint clean: CI runs exactly `npm test`,
// so these checks live here rather than in a separate CI step.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const root = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();

function run(script: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [join(root, script), ...args], { cwd: root, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test("TypeScript: strict typecheck of setup, tests, bench and examples", () => {
  const { status, output } = run("node_modules/typescript/bin/tsc", ["-p", "tsconfig.json"]);
  assert.equal(status, 0, output);
});

test("ESLint: no findings", () => {
  const { status, output } = run("node_modules/eslint/bin/eslint.js", ["."]);
  assert.equal(status, 0, output);
});
