// `npm test`: unit, integration, browser and notebook tests in one node:test run,
// so CI reads a single closing summary.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./lib/notebooks.js";

// `npm test -- tests/foo.test.ts` narrows the run to the given files.
const args = process.argv.slice(2);
const patterns = args.length > 0 ? args : ["tests/**/*.test.ts", "examples/*/tests/**/*.test.ts"];
const child = spawn(
  process.execPath,
  [
    "--disable-warning=ExperimentalWarning",
    "--conditions=source",
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    `--test-reporter=${join(repoRoot, "setup", "cli", "lib", "failure-guard-reporter.mjs")}`,
    "--test-reporter-destination=stderr",
    ...patterns,
  ],
  { cwd: repoRoot, stdio: "inherit" },
);
child.on("close", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
