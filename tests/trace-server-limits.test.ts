// The trace server's storage budgets (issue 16): length limits on names and keys, a payload
// budget per run, a bound on the rejections one request records and echoes, feedback ids that
// are not silently reused, and an optional size quota for the store. Each limit answers a 4xx
// (or a rejection) that names it, and the valid data sent beside the bad is kept.
import assert from "node:assert/strict";
import { test } from "node:test";
import { probeWhile, PROMPT_MS } from "./fixtures/probe.js";
import { postJson, postMultipart, rootRun, runParts, serverFor } from "./fixtures/trace-server/helpers.js";

test("item 3: names, types, projects, tags, metadata keys, attachment names and feedback keys over 4096 characters are refused; the run list stays small", async (t) => {
  const server = await serverFor(t);
  const kept = rootRun("kept");
  // 15 MB of names in one zstd request of a few KB.
  const huge = Array.from({ length: 3 }, (_, i) => rootRun(`${String(i)}${"n".repeat(5 * 1024 * 1024)}`, { inputs: {} }));
  const result = await postMultipart(server, [...huge.flatMap((r) => runParts("post", r)), ...runParts("post", kept)], { encoding: "zstd" });
  assert.equal(result.status, 422);
  assert.equal(result.json.accepted, 1);
  assert.deepEqual(result.json.rejected.map((r) => r.rule), ["over_limit", "over_limit", "over_limit"]);
  assert.match(result.json.rejected[0]?.message ?? "", /name is 5242881 characters, over the limit of 4096/);
  assert.ok(JSON.stringify(result.json).length < 10_000, "the answer quotes no name whole");
  assert.equal(server.store.getRun(kept.id)?.name, "kept");
  // The list and its live poll render names that are at most 4096 characters.
  const { result: list, worstProbeMs } = await probeWhile(`${server.url}/info`, fetch(`${server.url}/`).then(async (res) => ({ status: res.status, html: await res.text() })));
  assert.equal(list.status, 200);
  assert.ok(list.html.length < 200_000);
  assert.ok(worstProbeMs < PROMPT_MS, `a probe waited ${worstProbeMs.toFixed(0)} ms`);

  const long = "x".repeat(4097);
  const cases: Array<[string, Record<string, unknown>]> = [
    ["run_type", { run_type: long }],
    ["session_name", { session_name: long }],
    ["tags", { tags: [long] }],
    ["tags", { tags: Array.from({ length: 1001 }, (_, i) => `t${i}`) }],
    ["metadata key", { extra: { metadata: { [long]: 1 } } }],
  ];
  for (const [what, fields] of cases) {
    const run = rootRun(`long-${what}`, fields);
    const { status, json } = await postJson(server, "/runs", run);
    assert.equal(status, 422, what);
    assert.deepEqual(json.rejected.map((r) => r.rule), ["over_limit"], what);
    assert.match(json.rejected[0]?.message ?? "", /over the limit of (4096|1000)/, what);
  }
  const atLimit = rootRun("x".repeat(4096), { tags: ["y".repeat(4096)], session_name: "z".repeat(4096) });
  assert.equal((await postJson(server, "/runs", atLimit)).status, 202);

  const withParts = rootRun("attached");
  const parts = await postMultipart(server, [
    ...runParts("post", withParts),
    { name: `attachment.${withParts.id}.${long}`, body: "data", contentType: "text/plain" },
    { name: `feedback.${crypto.randomUUID()}`, body: JSON.stringify({ run_id: withParts.id, key: long, score: 1 }) },
  ]);
  assert.equal(parts.status, 422);
  assert.deepEqual(parts.json.rejected.map((r) => r.rule), ["over_limit", "over_limit"]);
  assert.deepEqual(Object.keys(server.store.getRun(withParts.id)?.attachments ?? {}), []);
  assert.equal((await postJson(server, "/feedback", { run_id: withParts.id, key: long })).status, 422);
  assert.equal((await postJson(server, "/sessions", { name: long })).status, 422);
  const project = await postJson(server, "/sessions", { name: "short" });
  assert.equal((await postJson(server, `/sessions/${String(project.json.id)}`, { name: long }, { method: "PATCH" })).status, 422);
});

test("item 11: a run's inputs, outputs and the rest together stay within 16 Mi characters, also when a create and an update merge", async (t) => {
  const server = await serverFor(t);
  const run = rootRun("big", { inputs: { text: "i".repeat(10 * 1024 * 1024) } });
  assert.equal((await postMultipart(server, runParts("post", run))).status, 202);
  const update = { id: run.id, trace_id: run.trace_id, dotted_order: run.dotted_order, outputs: { text: "o".repeat(10 * 1024 * 1024) }, end_time: Date.now() };
  const patched = await postMultipart(server, runParts("patch", update));
  assert.equal(patched.status, 422);
  assert.deepEqual(patched.json.rejected.map((r) => r.rule), ["over_limit"]);
  assert.match(patched.json.rejected[0]?.message ?? "", /over the limit of 16777216 per run/);
  const stored = server.store.getRun(run.id);
  assert.equal(stored?.outputs, null);
  assert.equal((stored?.inputs.text as string).length, 10 * 1024 * 1024);
  const small = await postMultipart(server, runParts("patch", { ...update, outputs: { text: "done" } }));
  assert.equal(small.status, 202, JSON.stringify(small.json));
});

test("item 11: one request records and echoes at most 100 rejections, counting the rest in one", async (t) => {
  const server = await serverFor(t);
  const kept = rootRun("kept-among-junk");
  const junk = Array.from({ length: 9000 }, () => ({ name: `bogus.${crypto.randomUUID()}`, body: "{}" }));
  const { status, json } = await postMultipart(server, [...junk, ...runParts("post", kept)], { encoding: "zstd" });
  assert.equal(status, 422);
  assert.equal(json.accepted, 1);
  assert.equal(json.rejected.length, 101);
  assert.match(json.detail ?? "", /^9000 operation\(s\) rejected, 1 accepted/);
  assert.match(json.rejected[100]?.message ?? "", /8900 more operation\(s\) of this request were rejected and not recorded: at most 100/);
  assert.ok(JSON.stringify(json).length < 100_000, `a ${JSON.stringify(json).length}-character answer`);
  assert.equal(server.store.counts().rejections, 101);
  assert.equal(server.store.getRun(kept.id)?.name, "kept-among-junk");
});

test("item 11: feedback with an id already used for other feedback is refused (409, or a conflict rejection), and a retry of the same feedback changes nothing", async (t) => {
  const server = await serverFor(t);
  const run = rootRun("rated");
  assert.equal((await postMultipart(server, runParts("post", run))).status, 202);
  const id = crypto.randomUUID();
  const first = { id, run_id: run.id, key: "correct", score: 1 };
  assert.equal((await postJson(server, "/feedback", first)).status, 200);
  assert.equal((await postJson(server, "/feedback", first)).status, 200, "the same feedback again");
  const reused = await postJson(server, "/feedback", { ...first, score: 0 });
  assert.equal(reused.status, 409);
  assert.match(String(reused.json.detail), /already exists with other content/);
  const other = await postMultipart(server, [...runParts("post", rootRun("beside")), { name: `feedback.${id}`, body: JSON.stringify({ run_id: run.id, key: "correct", score: 0 }) }]);
  assert.equal(other.status, 422);
  assert.deepEqual(other.json.rejected.map((r) => r.rule), ["conflict"]);
  assert.equal(other.json.accepted, 1);
  assert.deepEqual(server.store.listFeedback({ runIds: [run.id] }).map((f) => f.score), [1]);
});

test("item 11: with maxStoreBytes, writes past the quota get 429 naming it; reads still work", async (t) => {
  const server = await serverFor(t, { maxStoreBytes: 2 * 1024 * 1024 });
  const first = rootRun("fills", { inputs: { text: "f".repeat(3 * 1024 * 1024) } });
  assert.equal((await postMultipart(server, runParts("post", first))).status, 202);
  const refused = await postMultipart(server, runParts("post", rootRun("over")));
  assert.equal(refused.status, 429);
  assert.match(refused.json.detail ?? "", /over its quota of 2097152 \(maxStoreBytes\)/);
  for (const [path, body] of [["/runs", rootRun("json")], ["/runs/batch", { post: [rootRun("batch")] }], ["/feedback", { run_id: first.id, key: "k" }], ["/sessions", { name: "p" }]] as const) {
    assert.equal((await postJson(server, path, body)).status, 429, path);
  }
  assert.equal((await fetch(`${server.url}/runs/${first.id}`)).status, 200);
  const project = server.store.getProjectByName("default");
  assert.equal((await fetch(`${server.url}/sessions/${project?.id ?? ""}`, { method: "DELETE" })).status, 202);
  assert.equal((await postMultipart(server, runParts("post", rootRun("after-cleanup")))).status, 202);
});
