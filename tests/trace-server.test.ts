// The local trace server against the real, unmodified langsmith SDK over real HTTP.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Run } from "langsmith/schemas";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { startTraceServer } from "../setup/src/trace-server/index.js";
import { childRun, collect, encodeMultipart, LOCAL_KEY, postMultipart, rootRun, runParts, sdkClient, serverFor } from "./fixtures/trace-server/helpers.js";

const HOP_SCRIPT = fileURLToPath(new URL("./fixtures/trace-server/hop.ts", import.meta.url));

function byName(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  assert.ok(run, `no run named ${name} among ${runs.map((r) => r.name).join(", ")}`);
  return run;
}

test("a traceable tree written by the SDK reads back through listRuns and readRun as one tree", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (l) => log.push(l) });
  const client = sdkClient(server);
  const lookup = traceable(async (q: string) => ({ hits: [q.toUpperCase()] }), { name: "lookup", run_type: "retriever", client });
  const summarize = traceable(async (hits: string[]) => hits.join(","), { name: "summarize", run_type: "llm", client });
  const answer = traceable(
    async (q: string) => {
      const { hits } = await lookup(q);
      return { answer: await summarize(hits) };
    },
    { name: "answer", client, project_name: "sdk-tree", metadata: { LANGSMITH_SERVICE: "api" }, tags: ["e2e"] },
  );
  assert.deepEqual(await answer("tokyo"), { answer: "TOKYO" });
  await client.awaitPendingTraceBatches();

  const runs = await collect(client.listRuns({ projectName: "sdk-tree" }));
  assert.equal(runs.length, 3);
  const root = byName(runs, "answer");
  assert.equal(root.parent_run_id ?? null, null);
  assert.equal(root.trace_id, root.id);
  assert.deepEqual(root.outputs, { answer: "TOKYO" });
  assert.deepEqual(root.tags, ["e2e"]);
  assert.equal(root.status, "success");
  assert.equal((root.extra?.metadata as Record<string, unknown>).LANGSMITH_SERVICE, "api");
  for (const name of ["lookup", "summarize"]) {
    const child = byName(runs, name);
    assert.equal(child.parent_run_id, root.id);
    assert.equal(child.trace_id, root.id);
    assert.ok(child.dotted_order?.startsWith(`${root.dotted_order}.`));
    assert.deepEqual(child.parent_run_ids, [root.id]);
  }
  assert.equal(byName(runs, "lookup").run_type, "retriever");
  // end_time travels as epoch milliseconds and start_time as an ISO string; both come back as ISO.
  assert.match(String(root.start_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(String(root.end_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

  const read = await client.readRun(root.id, { loadChildRuns: true });
  assert.deepEqual(read.child_runs?.map((c) => c.name).sort(), ["lookup", "summarize"]);
  assert.deepEqual(new Set(read.child_run_ids), new Set([byName(runs, "lookup").id, byName(runs, "summarize").id]));

  const roots = await collect(client.listRuns({ projectName: "sdk-tree", isRoot: true }));
  assert.deepEqual(roots.map((r) => r.id), [root.id]);
  const underRoot = await collect(client.listRuns({ projectName: "sdk-tree", parentRunId: root.id }));
  assert.equal(underRoot.length, 2);
  const inTrace = await collect(client.listRuns({ traceId: root.id }));
  assert.equal(inTrace.length, 3);

  assert.ok(log.some((l) => /^POST \/runs\/multipart 202 .*\(zstd\)$/.test(l)), `the SDK should send zstd multipart; log: ${log.join(" | ")}`);
});

test("RunTree with an error and a patch-only update reads back with status and error", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const root = new RunTree({ name: "pipeline", run_type: "chain", inputs: { n: 1 }, client, project_name: "runtree" });
  await root.postRun();
  const step = root.createChild({ name: "flaky-step", run_type: "tool", inputs: { attempt: 1 } });
  await step.postRun();
  await step.end(undefined, "TimeoutError: upstream took too long");
  await step.patchRun();
  await root.end({ ok: false });
  await root.patchRun();
  await client.awaitPendingTraceBatches();

  const failed = await client.readRun(step.id);
  assert.equal(failed.status, "error");
  assert.equal(failed.error, "TimeoutError: upstream took too long");
  assert.deepEqual(failed.inputs, { attempt: 1 });
  const errors = await collect(client.listRuns({ projectName: "runtree", error: true }));
  assert.deepEqual(errors.map((r) => r.id), [step.id]);
  const [summary] = server.store.listTraces({ projectName: "runtree" });
  assert.equal(summary?.error_count, 1);
  assert.equal(summary?.status, "error");
});

test("the SDK falls back to gzip when the server does not offer zstd", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { advertise: { zstd: false }, log: (l) => log.push(l) });
  const client = sdkClient(server);
  const f = traceable(async () => "ok", { name: "gz", client, project_name: "gzip" });
  await f();
  await client.awaitPendingTraceBatches();
  assert.ok(log.some((l) => /^POST \/runs\/multipart 202 .*\(gzip\)$/.test(l)), log.join(" | "));
  const [run] = await collect(client.listRuns({ projectName: "gzip" }));
  assert.equal(run?.outputs?.outputs, "ok");
});

test("the SDK's JSON batch path (/runs/batch) works when multipart is not offered", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { advertise: { multipart: false }, log: (l) => log.push(l) });
  const client = sdkClient(server);
  const inner = traceable(async (x: number) => x + 1, { name: "inner", client });
  const outer = traceable(async (x: number) => inner(x), { name: "outer", client, project_name: "batch" });
  assert.equal(await outer(1), 2);
  await client.awaitPendingTraceBatches();
  assert.ok(log.some((l) => l.startsWith("POST /runs/batch 202")), log.join(" | "));
  assert.ok(!log.some((l) => l.startsWith("POST /runs/multipart")), log.join(" | "));
  const runs = await collect(client.listRuns({ projectName: "batch" }));
  assert.equal(byName(runs, "inner").parent_run_id, byName(runs, "outer").id);
});

test("two processes continue one trace through toHeaders/fromHeaders and read back as one tree", async (t) => {
  const server = await serverFor(t);
  const env = {
    ...process.env,
    LANGSMITH_ENDPOINT: server.url,
    LANGSMITH_API_KEY: LOCAL_KEY,
    LANGSMITH_TRACING: "true",
    HOP_PROJECT: "two-processes",
  };
  const run = (mode: string, extraEnv: Record<string, string>) =>
    spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", HOP_SCRIPT, mode], {
      env: { ...env, ...extraEnv },
      stdio: ["pipe", "pipe", "inherit"],
    });
  const exited = (child: ReturnType<typeof spawn>) => new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

  const gateway = run("start", { LANGSMITH_SERVICE: "gateway-svc" });
  const gatewayExit = exited(gateway);
  t.after(() => gateway.kill());
  const lines = createInterface({ input: gateway.stdout! });
  const [headerLine] = await Promise.race([
    (async () => {
      for await (const line of lines) return [line];
      return [undefined];
    })(),
    gatewayExit.then((code) => assert.fail(`gateway exited with ${code} before printing headers`)),
  ]);
  const headers = JSON.parse(String(headerLine)) as Record<string, string>;
  assert.ok(headers["langsmith-trace"]);

  const worker = run("continue", { LANGSMITH_SERVICE: "worker-svc", HOP_HEADERS: JSON.stringify(headers) });
  assert.equal(await exited(worker), 0, "worker process failed");
  gateway.stdin!.end("done\n");
  assert.equal(await gatewayExit, 0, "gateway process failed");

  const client = sdkClient(server);
  const runs = await collect(client.listRuns({ projectName: "two-processes" }));
  assert.deepEqual(runs.map((r) => r.name).sort(), ["call-worker", "gateway", "worker", "worker-step"]);
  const gatewayRun = byName(runs, "gateway");
  const call = byName(runs, "call-worker");
  const workerRun = byName(runs, "worker");
  const step = byName(runs, "worker-step");
  for (const r of runs) assert.equal(r.trace_id, gatewayRun.id, `${r.name} is in another trace`);
  assert.equal(call.parent_run_id, gatewayRun.id);
  assert.equal(workerRun.parent_run_id, call.id);
  assert.equal(step.parent_run_id, workerRun.id);
  assert.deepEqual(step.parent_run_ids, [gatewayRun.id, call.id, workerRun.id]);
  assert.deepEqual(step.outputs, { outputs: 42 });
  assert.equal((workerRun.extra?.metadata as Record<string, unknown>).LANGSMITH_SERVICE, "worker-svc");
  assert.equal((gatewayRun.extra?.metadata as Record<string, unknown>).LANGSMITH_SERVICE, "gateway-svc");

  const tree = await client.readRun(gatewayRun.id, { loadChildRuns: true });
  assert.equal(tree.child_runs?.[0]?.name, "call-worker");
  assert.equal(tree.child_runs?.[0]?.child_runs?.[0]?.name, "worker");
  assert.equal(tree.child_runs?.[0]?.child_runs?.[0]?.child_runs?.[0]?.name, "worker-step");

  const [summary] = server.store.listTraces({ projectName: "two-processes" });
  assert.deepEqual(summary?.services, ["gateway-svc", "worker-svc"]);
  assert.equal(summary?.run_count, 4);
  assert.equal(summary?.orphan_count, 0);
  assert.equal(summary?.status, "success");
});

test("a file-backed store keeps runs, projects and rejections across a restart", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "trace-server-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dbPath = join(dir, "nested", "traces.sqlite");

  const first = await startTraceServer({ port: 0, dbPath });
  const client = sdkClient(first);
  const f = traceable(async (x: string) => x.repeat(2), { name: "persisted", client, project_name: "durable" });
  await f("ab");
  await client.awaitPendingTraceBatches();
  const bad = rootRun("bad-root", { trace_id: "00000000-0000-4000-8000-000000000001" });
  assert.equal((await postMultipart(first, runParts("post", bad))).status, 422);
  const before = await collect(client.listRuns({ projectName: "durable" }));
  await first.close();

  const second = await startTraceServer({ port: 0, dbPath });
  t.after(() => second.close());
  const client2 = sdkClient(second);
  const after = await collect(client2.listRuns({ projectName: "durable" }));
  assert.deepEqual(after, before);
  assert.equal((await client2.readProject({ projectName: "durable" })).id, before[0]?.session_id);
  assert.equal(second.store.listRejections({ runId: bad.id })[0]?.rule, "root_trace_id");
  // And it keeps accepting writes into the same project.
  const g = traceable(async () => "again", { name: "after-restart", client: client2, project_name: "durable" });
  await g();
  await client2.awaitPendingTraceBatches();
  assert.equal((await collect(client2.listRuns({ projectName: "durable" }))).length, 2);
});

test("hand-built SDK-shaped multipart reaches the same tree as SDK traffic, in every encoding", async (t) => {
  const server = await serverFor(t);
  for (const encoding of [undefined, "gzip", "zstd", "deflate", "br"] as const) {
    const root = rootRun(`root-${encoding ?? "identity"}`, { session_name: "encodings" });
    const child = childRun(root, "child", { session_name: "encodings", outputs: { ok: true }, end_time: Date.now() });
    const { status, json } = await postMultipart(server, [...runParts("post", root), ...runParts("post", child)], encoding ? { encoding } : {});
    assert.equal(status, 202, JSON.stringify(json));
    assert.equal(json.accepted, 2);
    const stored = server.store.getTraceRuns(root.id);
    assert.deepEqual(stored.map((r) => r.name), [root.name, "child"]);
    assert.deepEqual(stored[1]?.outputs, { ok: true });
  }
});

test("multipart file parts, attachments and feedback are stored", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("with-attachment", { session_name: "attachments" });
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80]);
  const feedbackId = crypto.randomUUID();
  const { status, json } = await postMultipart(server, [
    ...runParts("post", root).map((p) => ({ ...p, asFile: true, contentType: "application/json" })),
    { name: `attachment.${root.id}.image`, body: png, contentType: "image/png" },
    { name: `feedback.${feedbackId}`, body: JSON.stringify({ run_id: root.id, trace_id: root.id, key: "correct", score: 1 }) },
  ]);
  assert.equal(status, 202, JSON.stringify(json));
  const client = sdkClient(server);
  const run = await client.readRun(root.id);
  assert.deepEqual(run.inputs, { name: "with-attachment" });
  const url = (run as Run & { attachments: Record<string, { presigned_url: string; mime_type: string }> }).attachments.image;
  assert.equal(url?.mime_type, "image/png");
  const res = await fetch(String(url?.presigned_url), { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(res.headers.get("content-type"), "image/png");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), png);
  const feedback = await collect(client.listFeedback({ runIds: [root.id] }));
  assert.deepEqual(feedback.map((f) => [f.id, f.key, f.score]), [[feedbackId, "correct", 1]]);
  await client.createFeedback(root.id, "correct", { score: 0 });
  assert.deepEqual((await client.readRun(root.id)).feedback_stats, { correct: { n: 2, avg: 0.5 } });
});

test("an HTML attachment is served as a sandboxed download, never as a page on the viewer's origin", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("with-html", { session_name: "attachments" });
  const html = "<script>fetch('/sessions').then((r) => r.json()).then((ps) => ps.map((p) => fetch(`/sessions/${p.id}`, { method: 'DELETE' })))</script>";
  const { status } = await postMultipart(server, [...runParts("post", root), { name: `attachment.${root.id}.report.html`, body: html, contentType: "text/html", asFile: true }]);
  assert.equal(status, 202);
  const res = await fetch(`${server.url}/api/attachments/${root.id}/report.html`, { headers: { "x-api-key": LOCAL_KEY } });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), html, "the bytes come back unchanged for the SDK");
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  assert.equal(res.headers.get("content-disposition"), "attachment; filename=report.html");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("content-security-policy"), "sandbox; default-src 'none'");
});

test("non-ASCII text survives parts with and without a declared charset", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("café", { session_name: "unicode", inputs: { text: "café, 東京, 🚀" } });
  const { body, contentType } = await encodeMultipart(runParts("post", root));
  // The SDK declares no charset (the inputs part here); a hand-written client may (the main part).
  const declared = body
    .toString("latin1")
    .replace(`name="post.${root.id}"\r\n`, `name="post.${root.id}"\r\nContent-Type: application/json; charset=utf-8\r\n`);
  const res = await fetch(`${server.url}/runs/multipart`, {
    method: "POST",
    headers: { "content-type": contentType, "x-api-key": LOCAL_KEY },
    body: Buffer.from(declared, "latin1"),
  });
  assert.equal(res.status, 202, await res.text());
  const stored = server.store.getRun(root.id);
  assert.equal(stored?.name, "café");
  assert.deepEqual(stored?.inputs, { text: "café, 東京, 🚀" });

  const client = sdkClient(server);
  const echo = traceable(async (s: string) => `${s}!`, { name: "echo-ünïcode", client, project_name: "unicode" });
  await echo("naïve 🧪");
  await client.awaitPendingTraceBatches();
  const [run] = await collect(client.listRuns({ projectName: "unicode", filter: 'eq(name, "echo-ünïcode")' }));
  assert.deepEqual(run?.outputs, { outputs: "naïve 🧪!" });
});
