// Work that grows with input stays bounded per request (issue 16): how deep a trace may nest,
// how much of a big trace one view renders or one answer holds, what an unchanged live-update
// poll costs, and what one filter query may spend. A probe request sent meanwhile is answered
// promptly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { probeWhile, PROMPT_MS } from "./fixtures/probe.js";
import { childRun, nextTime, postJson, rootRun, segment, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";

async function timedGet(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

test("item 2: a trace nests at most 256 levels, whether parent_run_id or dotted_order says so, and its views stay prompt", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("deep-root");
  assert.equal((await postJson(server, "/runs", root)).status, 202);
  // Tiny sequential requests naming only the parent: the server derives each dotted_order.
  let parent: WireRun = root;
  let refused: { status: number; message: string } | undefined;
  for (let depth = 2; depth <= 300 && refused === undefined; depth++) {
    const id = crypto.randomUUID();
    const { status, json } = await postJson(server, "/runs", { id, trace_id: root.id, parent_run_id: parent.id, name: `level-${depth}`, run_type: "chain", start_time: new Date(Date.parse("2025-03-04T06:00:00Z") + depth).toISOString(), inputs: {} });
    if (status !== 202) refused = { status, message: json.rejected[0]?.message ?? "" };
    else parent = { ...parent, id };
  }
  assert.equal(refused?.status, 422);
  assert.match(refused?.message ?? "", /the run would be 257 levels deep \(dotted_order segments\), over the limit of 256/);
  assert.equal(server.store.countTraceRuns(root.id), 256);

  // One run whose dotted_order alone is 10,000 segments deep.
  const chain = Array.from({ length: 10_000 }, () => crypto.randomUUID());
  const deep = { id: chain.at(-1), trace_id: chain[0], parent_run_id: chain.at(-2), dotted_order: chain.map((id) => segment("2025-03-04T06:00:00.000001Z", id)).join("."), name: "shortcut", run_type: "chain", start_time: "2025-03-04T06:00:00Z", inputs: {} };
  const shortcut = await postJson(server, "/runs", deep);
  assert.equal(shortcut.status, 422);
  assert.match(shortcut.json.rejected[0]?.message ?? "", /10000 levels deep/);

  for (const path of [`/traces/${root.id}`, `/api/traces/${root.id}`, `/traces/${root.id}/state?v=stale`]) {
    const { result, worstProbeMs } = await probeWhile(`${server.url}/info`, timedGet(`${server.url}${path}`));
    assert.equal(result.status, 200, path);
    assert.ok(result.text.length < 5_000_000, `${path}: ${result.text.length} characters`);
    assert.ok(worstProbeMs < PROMPT_MS, `${path}: a probe waited ${worstProbeMs.toFixed(0)} ms`);
  }
});

test("item 2: a big trace's page shows its first 2000 runs and says so; /api/traces pages it; an unchanged poll reads nothing", async (t) => {
  const server = await serverFor(t);
  const root = rootRun("wide-root");
  const children = Array.from({ length: 2500 }, (_, i) => childRun(root, `child-${i}`));
  assert.equal((await postJson(server, "/runs/batch", { post: [root, ...children] })).status, 202);

  const { result: page, worstProbeMs } = await probeWhile(`${server.url}/info`, timedGet(`${server.url}/traces/${root.id}`));
  assert.equal(page.status, 200);
  assert.ok(worstProbeMs < PROMPT_MS, `a probe waited ${worstProbeMs.toFixed(0)} ms`);
  assert.match(page.text, /This trace has 2501 runs; this page shows the first 2000, in execution order/);
  assert.equal([...page.text.matchAll(/<tr class="wf-row/g)].length, 2000);

  const seen: string[] = [];
  for (let offset: number | null = 0; offset !== null; ) {
    const res = await fetch(`${server.url}/api/traces/${root.id}?offset=${offset}`);
    const body = (await res.json()) as { runs: Array<{ id: string }>; run_count: number; next_offset: number | null };
    assert.equal(body.run_count, 2501);
    assert.ok(body.runs.length <= 1000);
    seen.push(...body.runs.map((r) => r.id));
    offset = body.next_offset;
  }
  assert.equal(new Set(seen).size, 2501);

  // The live-update polls of an unchanged trace and list read no run and render nothing.
  const version = /data-version="([^"]+)"/.exec(page.text)?.[1] ?? "";
  const listVersion = /data-version="([^"]+)"/.exec(await (await fetch(`${server.url}/`)).text())?.[1] ?? "";
  const reads = { traceRuns: 0, traces: 0 };
  const { store } = server;
  const getTraceRuns = store.getTraceRuns.bind(store);
  const listTraces = store.listTraces.bind(store);
  store.getTraceRuns = (...args) => ((reads.traceRuns += 1), getTraceRuns(...args));
  store.listTraces = (...args) => ((reads.traces += 1), listTraces(...args));
  t.after(() => {
    store.getTraceRuns = getTraceRuns;
    store.listTraces = listTraces;
  });
  assert.equal((await fetch(`${server.url}/traces/${root.id}/state?v=${encodeURIComponent(version)}`)).status, 204);
  assert.equal((await fetch(`${server.url}/_viewer/list-state?v=${encodeURIComponent(listVersion)}`)).status, 204);
  assert.deepEqual(reads, { traceRuns: 0, traces: 0 });
  // Another trace changing leaves this one's poll as cheap; a change to it is seen at once.
  assert.equal((await postJson(server, "/runs", rootRun("elsewhere"))).status, 202);
  assert.equal((await fetch(`${server.url}/traces/${root.id}/state?v=${encodeURIComponent(version)}`)).status, 204);
  assert.equal(reads.traceRuns, 0);
  assert.equal((await postJson(server, "/runs", childRun(root, "late-child"))).status, 202);
  assert.equal((await fetch(`${server.url}/traces/${root.id}/state?v=${encodeURIComponent(version)}`)).status, 200);
  // So is a change the store cannot attribute to a trace, such as SQL run on it directly.
  const fresh = /data-version="([^"]+)"/.exec(await (await fetch(`${server.url}/traces/${root.id}`)).text())?.[1] ?? "";
  store.db.exec(`UPDATE runs SET name = 'renamed' WHERE id = '${root.id}'`);
  assert.equal((await fetch(`${server.url}/traces/${root.id}/state?v=${encodeURIComponent(fresh)}`)).status, 200);
});

test("item 1: a filter over its term, depth or length limit gets a 400 at once; a costly one is scanned in slices, within a budget, while other requests are served", async (t) => {
  const server = await serverFor(t);
  const project = server.store.createProject({ name: "many" });
  const needles = new Set<string>();
  for (let batch = 0; batch < 10; batch++) {
    const runs = Array.from({ length: 1000 }, (_, i) => {
      const run = rootRun(`run-${batch}-${i}`, { session_name: "many", inputs: { text: `ordinary input number ${batch * 1000 + i}`.repeat(4) } });
      if (i % 97 === 0) {
        run.inputs = { text: "the needle" };
        needles.add(run.id);
      }
      return { op: "post" as const, ...run };
    });
    assert.equal(server.store.upsertRuns(runs, { route: "test" }).rejected.length, 0);
  }
  const query = (body: Record<string, unknown>, path = "/runs/query"): Promise<{ status: number; text: string }> =>
    fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (res) => ({ status: res.status, text: await res.text() }));

  // The reproductions of issue 16 first (each over the length limit), then each limit alone.
  const refused: Array<[string, RegExp]> = [
    [`or(${Array.from({ length: 6000 }, (_, i) => `search("n${i}")`).join(",")})`, /characters, over the limit of 10000/],
    [`${"not(".repeat(4000)}eq(name, "x")${")".repeat(4000)}`, /characters, over the limit of 10000/],
    [`and(${Array.from({ length: 40_000 }, () => 'eq(name,"x")').join(",")})`, /characters, over the limit of 10000/],
    [`or(${Array.from({ length: 250 }, () => "has(tags,1)").join(",")})`, /more than 200 function calls, the limit per filter/],
    [`${"not(".repeat(40)}eq(name, "x")${")".repeat(40)}`, /calls nested more than 32 deep, the limit per filter/],
  ];
  for (const [filter, reason] of refused) {
    const { result, worstProbeMs } = await probeWhile(`${server.url}/info`, query({ session: [project.id], filter }));
    assert.equal(result.status, 400, result.text.slice(0, 200));
    assert.match(result.text, reason);
    assert.ok(result.text.length < 1000, "the answer does not echo the whole filter");
    assert.ok(worstProbeMs < PROMPT_MS, `a probe waited ${worstProbeMs.toFixed(0)} ms`);
  }

  // The largest filter allowed, matching nothing: 10,000 runs x 200 calls is over the budget.
  const costly = `or(${Array.from({ length: 199 }, (_, i) => `search("absent-${i}")`).join(",")})`;
  for (const [path, body] of [
    ["/runs/query", { session: [project.id], filter: costly }],
    ["/api/v2/runs/query", { project_ids: [project.id], filter: costly, min_start_time: "2000-01-01T00:00:00Z" }],
    ["/runs/stats", { session: [project.id], filter: costly }],
  ] as const) {
    const { result, worstProbeMs, probes } = await probeWhile(`${server.url}/info`, query(body, path));
    assert.equal(result.status, 400, `${path}: ${result.text.slice(0, 200)}`);
    assert.match(result.text, /spent its budget of 2000000/);
    assert.ok(worstProbeMs < PROMPT_MS, `${path}: a probe waited ${worstProbeMs.toFixed(0)} ms`);
    assert.ok(probes > 1, `${path}: probes were answered during the scan`);
  }

  // A selective filter pages through exactly the matching runs, however the slices fall.
  const found: string[] = [];
  for (let cursor: string | null | undefined; cursor !== null; ) {
    const { status, text } = await query({ session: [project.id], filter: 'search("needle")', limit: 7, ...(cursor ? { cursor } : {}) });
    assert.equal(status, 200, text.slice(0, 200));
    const page = JSON.parse(text) as { runs: Array<{ id: string }>; cursors: { next: string | null } };
    found.push(...page.runs.map((r) => r.id));
    cursor = page.cursors.next;
  }
  assert.equal(found.length, needles.size);
  assert.deepEqual(new Set(found), needles);
});

test("stats and threads over a whole project scan in slices within the query budget: other requests are answered meanwhile, with the same figures", async (t) => {
  const server = await serverFor(t);
  const project = server.store.createProject({ name: "busy" });
  const TRACES = 8000;
  const THREADS = 40;
  for (let batch = 0; batch < TRACES / 1000; batch++) {
    const runs = Array.from({ length: 1000 }, (_, i) => {
      const n = batch * 1000 + i;
      const root = rootRun(`turn-${n}`, { session_name: "busy", extra: { metadata: { thread_id: `t-${n % THREADS}`, LANGSMITH_SERVICE: "gateway" } }, end_time: nextTime() });
      const llm = childRun(root, "model", { session_name: "busy", run_type: "llm", outputs: { usage_metadata: { input_tokens: 2, output_tokens: 1, total_tokens: 3 } }, end_time: nextTime() });
      return [{ op: "post" as const, ...root }, { op: "post" as const, ...llm }];
    }).flat();
    assert.equal(server.store.upsertRuns(runs, { route: "test" }).rejected.length, 0);
  }
  const window = { min_start_time: "2000-01-01T00:00:00Z", max_start_time: "2100-01-01T00:00:00Z" };
  const request = (path: string, body?: unknown): Promise<{ status: number; text: string }> =>
    fetch(`${server.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (res) => ({ status: res.status, text: await res.text() }));

  type Answer = { status: number; text: string };
  const cases: Array<{ label: string; send: () => Promise<Answer>; check: (text: string) => void }> = [
    {
      label: "POST /runs/stats",
      send: () => request("/runs/stats", { session: [project.id] }),
      check: (text) => {
        const stats = JSON.parse(text) as { run_count: number; total_tokens: number };
        assert.equal(stats.run_count, 2 * TRACES);
        assert.equal(stats.total_tokens, 3 * TRACES);
      },
    },
    { label: "GET /stats", send: () => request("/stats?project=busy&window=all"), check: (text) => assert.match(text, new RegExp(`data-stat="Requests">${TRACES}<`)) },
    { label: "GET /threads", send: () => request("/threads?project=busy&window=all"), check: (text) => assert.equal([...text.matchAll(/<tr class="thread-row"/g)].length, THREADS) },
    {
      label: "POST /api/v2/threads/query",
      send: () => request("/api/v2/threads/query", { project_id: project.id, page_size: 100, ...window }),
      check: (text) => {
        const threads = (JSON.parse(text) as { items: Array<{ count: number }> }).items;
        assert.equal(threads.length, THREADS);
        assert.equal(threads.reduce((n, th) => n + th.count, 0), TRACES);
      },
    },
    {
      label: "POST /api/v2/threads/stats",
      send: () => request("/api/v2/threads/stats", { project_id: project.id, select: ["THREAD_COUNT", "TRACE_COUNT", "TOTAL_TOKENS"], ...window }),
      check: (text) => assert.deepEqual(JSON.parse(text), { thread_count: THREADS, trace_count: TRACES, total_tokens: 3 * TRACES }),
    },
    {
      label: "GET /api/v2/threads/{id}/traces",
      send: () => request(`/api/v2/threads/t-0/traces?project_id=${project.id}&page_size=100&selects=TURN_NUMBER&selects=TOTAL_TOKENS`),
      check: (text) => assert.equal((JSON.parse(text) as { items: unknown[] }).items.length, 100),
    },
  ];
  for (const { label, send, check } of cases) {
    const { result, worstProbeMs, probes } = await probeWhile(`${server.url}/info`, send());
    assert.equal(result.status, 200, `${label}: ${result.text.slice(0, 300)}`);
    check(result.text);
    assert.ok(worstProbeMs < PROMPT_MS, `${label}: a probe waited ${worstProbeMs.toFixed(0)} ms`);
    assert.ok(probes > 1, `${label}: probes were answered during the scan`);
  }
});
