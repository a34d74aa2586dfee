// setup/bin/run as a real subprocess, in a sandbox: a scratch repository root
// whose setup/bin/run is a symlink to the real script (the script finds its root
// from its own path), and a PATH holding only a recording `node` wrapper, an
// `npm` that records and fails, and a few coreutils. No apt-get, jupyter,
// redis-server, chromium or prometheus is on that PATH, so the script reports which Debian
// packages a task needs instead of installing them, and a task that needs none
// stops at `npm` before installing anything. Plus the Jupyter URL matcher of
// `npm start` as a unit.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { jupyterTreeUrl } from "../setup/cli/lib/jupyter-url.js";

const repo = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "setup-run-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function onParentPath(command: string): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`${command} not found on PATH`);
}
const bash = onParentPath("bash");

const bin = join(scratch, "bin");
const callLog = join(scratch, "calls.log");
mkdirSync(bin);
for (const tool of ["cat", "dirname", "find", "id", "mkdir", "sort", "touch"]) symlinkSync(onParentPath(tool), join(bin, tool));
// The test's own Node (22), so the script's Node check passes without provisioning.
writeFileSync(join(bin, "node"), `#!/bin/sh\necho "node $*" >> '${callLog}'\nexec '${process.execPath}' "$@"\n`);
writeFileSync(join(bin, "npm"), `#!/bin/sh\necho "npm $*" >> '${callLog}'\nexit 1\n`);
chmodSync(join(bin, "node"), 0o755);
chmodSync(join(bin, "npm"), 0o755);

/** A scratch root running the real script; with `tasks`, setup/cli is the real one (the task list). */
function sandboxRoot(name: string, tasks: boolean): string {
  const root = join(scratch, name);
  mkdirSync(join(root, "setup", "bin"), { recursive: true });
  symlinkSync(join(repo, "setup", "bin", "run"), join(root, "setup", "bin", "run"));
  if (tasks) symlinkSync(join(repo, "setup", "cli"), join(root, "setup", "cli"));
  return root;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[];
}

function run(root: string, args: string[]): Run {
  rmSync(callLog, { force: true });
  const r = spawnSync(bash, [join(root, "setup", "bin", "run"), ...args], {
    cwd: scratch,
    env: { PATH: bin, HOME: scratch, LANG: "C.UTF-8" },
    encoding: "utf8",
    timeout: 30_000,
  });
  const calls = existsSync(callLog) ? readFileSync(callLog, "utf8").split("\n").filter(Boolean) : [];
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls };
}

const root = sandboxRoot("repo", true);
// Examples as the script recognises them: a start.ts or a server.ts; a folder with neither is not one.
for (const [name, entry] of [["async-streaming", "start.ts"], ["express-middleware", "server.ts"], ["multi-service-app", "start.ts"], ["production-monitoring", "start.ts"], ["shared-notes", "README.md"]] as const) {
  mkdirSync(join(root, "examples", name), { recursive: true });
  writeFileSync(join(root, "examples", name, entry), "");
}

describe("usage errors exit 2 before any provisioning", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["no task", [], /no task given/],
    ["an unknown task", ["nope"], /unknown task 'nope'/],
    ["a path that is not a task", ["lib/notebooks"], /unknown task 'lib\/notebooks'/],
    ["example without a name", ["example"], /example needs a name/],
    ["an unknown example", ["example", "nope"], /unknown example 'nope'/],
    ["an examples folder without a start.ts or server.ts", ["example", "shared-notes"], /unknown example 'shared-notes'/],
  ];
  for (const [what, args, reason] of cases) {
    test(what, () => {
      const r = run(root, args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, reason);
      assert.match(r.stderr, /^usage: setup\/bin\/run <task>/m);
      assert.match(r.stderr, /^tasks: .*\bensure-test\b.*\bpatterns\b.*\bstart\b.*\btest\b.*\btypecheck\b/m);
      assert.match(r.stderr, /^examples: async-streaming express-middleware multi-service-app production-monitoring$/m);
      assert.deepEqual(r.calls, [], "neither node nor npm ran");
    });
  }

  test("--help prints the usage on stdout and exits 0", () => {
    const r = run(root, ["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: setup\/bin\/run <task>/m);
    assert.deepEqual(r.calls, []);
  });
});

describe("each task gets only the Debian packages it uses", () => {
  const jupyter = ["jupyter-client", "jupyter-nbconvert", "jupyter-notebook"];
  const cases: Array<[string[], string[]]> = [
    [["test"], [...jupyter, "redis-server", "chromium", "prometheus"]],
    [["ensure-test"], [...jupyter, "redis-server", "chromium", "prometheus"]],
    [["start"], [...jupyter, "redis-server"]],
    [["patterns"], [...jupyter, "redis-server"]],
    [["screenshots"], [...jupyter, "chromium"]],
    [["example", "async-streaming"], ["redis-server"]],
    [["example", "production-monitoring"], ["prometheus"]],
    [["lint"], []],
    [["typecheck"], []],
    [["build"], []],
    [["ensure"], []],
    [["trace-server"], []],
    [["model-server"], []],
    [["bench"], []],
    [["example", "express-middleware"], []],
    [["example", "multi-service-app"], []],
  ];
  for (const [args, packages] of cases) {
    test(`${args.join(" ")}: ${packages.length > 0 ? packages.join(" ") : "none"}`, () => {
      const r = run(root, args);
      assert.equal(r.status, 1, r.stderr);
      const asked = /sudo apt-get install -y --no-install-recommends (.+)$/m.exec(r.stderr)?.[1]?.split(" ") ?? [];
      assert.deepEqual(asked.toSorted(), packages.toSorted(), r.stderr);
      // With nothing to install from Debian, the script went on to the npm dependencies (whose stub fails).
      assert.equal(r.calls.some((c) => c.startsWith("npm ")), packages.length === 0, r.calls.join("\n"));
    });
  }
});

test("the tslab kernelspec is valid JSON for a repository path with quotes and a backslash", () => {
  const odd = sandboxRoot(`it's a "quoted" \\ path`, false);
  // Dependencies installed and setup built, as far as the script can tell, so `ensure` goes on to the kernelspec.
  mkdirSync(join(odd, "node_modules"));
  writeFileSync(join(odd, "node_modules", ".install-stamp"), `${process.version}\n`);
  mkdirSync(join(odd, "setup", "dist"));
  writeFileSync(join(odd, "setup", "dist", "index.js"), "");

  const kernelJson = join(odd, ".jupyter", "kernels", "tslab", "kernel.json");
  for (let i = 0; i < 2; i++) {
    const r = run(odd, ["ensure"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.calls.some((c) => c.startsWith("npm ")), "nothing was installed");
    const spec = JSON.parse(readFileSync(kernelJson, "utf8")) as { argv: string[]; language: string };
    assert.deepEqual(spec.argv, [
      join(bin, "node"),
      "--disable-warning=ExperimentalWarning",
      join(odd, "node_modules", "tslab", "bin", "tslab"),
      "kernel",
      "--config-path",
      "{connection_file}",
    ]);
    assert.equal(spec.language, "typescript");
  }
});

describe("jupyterTreeUrl: the URL `npm start` prints, from what Jupyter logs", () => {
  const token = "3931b86c99819288294c438cda6337737739b8b7ffa78e35";
  // Jupyter Notebook 6.4.12 (Debian), as printed for --ip=<host>.
  const notebook6 = (host: string): string =>
    [
      "[I 00:16:14.787 NotebookApp] Serving notebooks from local directory: /work/main",
      "[I 00:16:14.787 NotebookApp] Jupyter Notebook 6.4.12 is running at:",
      `[I 00:16:14.787 NotebookApp] http://${host}:8888/?token=${token}`,
      `[I 00:16:14.787 NotebookApp]  or http://127.0.0.1:8888/?token=${token}`,
      "[I 00:16:14.787 NotebookApp] Use Control-C to stop this server and shut down all kernels (twice to skip confirmation).",
      "",
    ].join("\n");

  test("127.0.0.1, localhost and a hostname (--ip=0.0.0.0), as Jupyter lists them first", () => {
    assert.equal(jupyterTreeUrl(notebook6("127.0.0.1")), `http://127.0.0.1:8888/tree?token=${token}`);
    assert.equal(jupyterTreeUrl(notebook6("localhost")), `http://localhost:8888/tree?token=${token}`);
    assert.equal(jupyterTreeUrl(notebook6("vm")), `http://vm:8888/tree?token=${token}`);
    assert.equal(jupyterTreeUrl(notebook6("build-7.example.internal")), `http://build-7.example.internal:8888/tree?token=${token}`);
  });

  test("Jupyter Server 2 (notebook 7) already prints /tree; an IPv6 address and a base URL are kept", () => {
    const server2 = [
      "[I 2025-03-01 10:00:00.000 ServerApp] Jupyter Server 2.14.2 is running at:",
      `[I 2025-03-01 10:00:00.000 ServerApp] http://localhost:8888/tree?token=${token}`,
      `[I 2025-03-01 10:00:00.000 ServerApp]     http://127.0.0.1:8888/tree?token=${token}`,
      "",
    ].join("\n");
    assert.equal(jupyterTreeUrl(server2), `http://localhost:8888/tree?token=${token}`);
    assert.equal(jupyterTreeUrl(`[I NotebookApp] http://[::1]:8888/?token=${token}\n`), `http://[::1]:8888/tree?token=${token}`);
    assert.equal(jupyterTreeUrl(`[I NotebookApp] http://127.0.0.1:8888/jupyter/?token=${token}\n`), `http://127.0.0.1:8888/jupyter/tree?token=${token}`);
  });

  test("without a token (authentication turned off) the server URL still counts", () => {
    assert.equal(jupyterTreeUrl("[I NotebookApp] Jupyter Notebook 6.4.12 is running at:\n[I NotebookApp] http://localhost:8888/\n"), "http://localhost:8888/tree");
  });

  test("documentation links in warnings are not the server", () => {
    const log = [
      "[W 10:00:00.000 NotebookApp] Notebook 7 is coming, read https://jupyter-notebook.readthedocs.io/en/latest/migrate_to_notebook7.html",
      notebook6("127.0.0.1"),
    ].join("\n");
    assert.equal(jupyterTreeUrl(log), `http://127.0.0.1:8888/tree?token=${token}`);
  });

  test("nothing until a complete line carries the URL (a pipe chunk can end mid-token)", () => {
    const full = notebook6("localhost");
    const cut = full.indexOf("token=") + 10;
    assert.equal(jupyterTreeUrl(full.slice(0, full.indexOf("is running at:"))), null);
    assert.equal(jupyterTreeUrl(full.slice(0, cut)), null);
    assert.equal(jupyterTreeUrl(full.slice(0, full.indexOf("\n", cut) + 1)), `http://localhost:8888/tree?token=${token}`);
  });
});
