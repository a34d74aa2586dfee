// `npm run doctor` as a real process (setup/cli/doctor.ts, run the way setup/bin/run runs it):
// its targets (trace id, run id, viewer URL, LangSmith URL, share link), text and JSON output, the project
// scan, and the exit codes: 0 healthy, 1 problems found, 2 usage error, 3 could not read.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { serviceMetadata, startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";

const root = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();
const PROJECT = "doctor-cli";
let server: TraceServerHandle;
let healthyTrace: string;
let healthyChild: string;
let brokenTrace: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Output with each run of whitespace as one space, since long lines wrap. */
const flat = (text: string): string => text.replace(/\s+/g, " ");

async function doctor(args: string[], traceServerUrl = server.url): Promise<Result> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LANGSMITH_|LANGCHAIN_)/.test(k)));
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", join(root, "setup/cli/doctor.ts"), ...args], {
    cwd: root,
    env: { ...env, TRACING_PATTERNS_OFFLINE: "true", TRACE_SERVER_URL: traceServerUrl },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

async function seedTrace(client: Client, lostParent: boolean): Promise<{ traceId: string; childId: string }> {
  const rootRun = new RunTree({ name: "handle", client, project_name: PROJECT, extra: { metadata: serviceMetadata("gateway") } });
  await rootRun.postRun();
  const call = rootRun.createChild({ name: "call_worker" });
  if (!lostParent) await call.postRun();
  const work = call.createChild({ name: "worker_handle", extra: { metadata: serviceMetadata("worker") } });
  await work.postRun();
  for (const run of [work, call, rootRun]) {
    await run.end({ ok: true });
    if (run !== call || !lostParent) await run.patchRun();
  }
  return { traceId: rootRun.trace_id, childId: work.id };
}

before(async () => {
  server = await startTraceServer({ port: 0 });
  const client = new Client({ apiUrl: server.url, apiKey: "local" });
  ({ traceId: healthyTrace, childId: healthyChild } = await seedTrace(client, false));
  ({ traceId: brokenTrace } = await seedTrace(client, true));
  await client.awaitPendingTraceBatches();
});

after(async () => {
  await server?.close();
});

test("exit 0 and 'healthy' for a healthy trace, also when given one of its run ids", async () => {
  for (const target of [healthyTrace, healthyChild]) {
    const r = await doctor([target]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`^trace ${healthyTrace} \\(read from ${server.url}\\)$`, "m"));
    assert.match(r.stdout, /^ {2}3 runs · services gateway, worker · project doctor-cli · completeness 100% · propagation 100%$/m);
    assert.match(r.stdout, /^healthy: no problems found\.$/m);
  }
});

test("a share link is resolved through the SDK's public runs API to the trace it shares", async () => {
  const client = new Client({ apiUrl: server.url, apiKey: "local" });
  const url = await client.shareRun(healthyChild);
  assert.match(url, /\/public\/[0-9a-f-]{36}\/r$/);
  const r = await doctor([url]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`^trace ${healthyTrace} `, "m"));
  const unknown = await doctor(["https://smith.langchain.com/public/00000000-0000-4000-8000-00000000abcd/r"]);
  assert.equal(unknown.code, 3, unknown.stderr);
  assert.match(unknown.stderr, /could not read at http.*404/);
});

test("exit 1 and the problem, cause and fix for a broken trace, by id, viewer URL and LangSmith URL", async () => {
  const targets = [
    brokenTrace,
    `${server.url}/traces/${brokenTrace}`,
    `https://smith.langchain.com/o/00000000-0000-4000-8000-000000000001/projects/p/00000000-0000-4000-8000-000000000002/r/${brokenTrace}?trace_id=${brokenTrace}&start_time=2026-01-01`,
  ];
  for (const target of targets) {
    const r = await doctor([target]);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /^1 problem found:$/m);
    assert.match(flat(r.stdout), / 1\. orphan: 1 run of worker is orphaned: the parent of "worker_handle" \[worker\], run …[0-9a-f]{8}, is not in the trace runs: "worker_handle" \[worker\] …[0-9a-f]{8} cause: The parent never reached this backend\. The process that owned the parent crashed or was killed before it flushed/);
    assert.match(r.stdout, /^ {3}fix: {3}Flush before a process stops/m);
  }
});

test("--json prints the diagnosis as JSON with the same exit code", async () => {
  const r = await doctor([brokenTrace, "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const parsed = JSON.parse(r.stdout) as { traceId: string; healthy: boolean; findings: Array<{ kind: string; runs: Array<{ name: string }> }> };
  assert.equal(parsed.traceId, brokenTrace);
  assert.equal(parsed.healthy, false);
  assert.deepEqual(parsed.findings.map((f) => [f.kind, f.runs.map((x) => x.name)]), [["orphan", ["worker_handle"]]]);
});

test("--project with a trace checks the project it belongs in", async () => {
  const r = await doctor([healthyTrace, "--project", "elsewhere"]);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(flat(r.stdout), /project-mismatch: 3 runs of gateway, worker went to project "doctor-cli", not "elsewhere"/);
});

test("--project alone scans the project: figures overall and per service, exit 1 with a broken trace in it", async () => {
  const r = await doctor(["--project", PROJECT, "--since", "1h"]);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  // 3 + 2 runs (the broken trace's call_worker never arrived), its orphan not connected: 4 complete.
  // Services per trace: 2 + 2, the worker disconnected once.
  assert.match(r.stdout, /^project "doctor-cli" since .*: 2 traces, 2 requests$/m);
  assert.match(r.stdout, /^ {2}completeness {2}80% {2}\(4 of 5 runs/m);
  assert.match(r.stdout, /^ {2}propagation {3}75% {2}\(3 of 4 services/m);
  assert.match(r.stdout, /^ {2}worker +2 +50% +2 +50%$/m);
  assert.match(r.stdout, new RegExp(`^ {4}${brokenTrace} "handle"`, "m"));
  const json = await doctor(["--project", PROJECT, "--json"]);
  assert.equal(json.code, 1, json.stderr);
  assert.equal((JSON.parse(json.stdout) as { completeness: number }).completeness, 80);
});

test("exit 2 for usage errors, with the usage on stderr", async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /give a trace id or URL, or --project NAME/],
    [["not-a-trace"], /not a trace id or a trace URL/],
    [["--frobnicate"], /Unknown option '--frobnicate'/],
    [[healthyTrace, "--since", "1h"], /--since and --limit apply to a project scan/],
    [["--project", PROJECT, "--since", "soon"], /--since must be a duration like 30s, 15m or 1h/],
    [["https://smith.langchain.com/public/abc/r"], /no share token in/],
    [[healthyTrace, brokenTrace], /one trace at a time/],
  ];
  for (const [args, message] of cases) {
    const r = await doctor(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^usage: npm run doctor -- <trace id/m);
    assert.equal(r.stdout, "");
  }
});

test("exit 3 when it cannot read: unknown trace, unknown project, server down", async () => {
  const unknown = await doctor(["01a25000-0000-7000-8000-000000000000"]);
  assert.equal(unknown.code, 3, unknown.stderr);
  assert.match(unknown.stderr, /no runs of trace 01a25000-0000-7000-8000-000000000000 found at http/);
  const project = await doctor(["--project", "no-such-project"]);
  assert.equal(project.code, 3, project.stderr);
  assert.match(project.stderr, /project "no-such-project" not found/);
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const down = await doctor([healthyTrace], `http://127.0.0.1:${port}`);
  assert.equal(down.code, 3, down.stderr);
  assert.match(down.stderr, /doctor: could not read: could not reach http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
});
