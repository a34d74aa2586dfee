// The trace viewer's HTTP side, without a browser: the pages a real trace
// server serves at "/" (filters, escaping, CSP, broken traces, live state,
// API key), and the colours and layout it shares with renderTraceHtml.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  assignServiceColors,
  displayTrace,
  knownViewerUrl,
  layoutTrace,
  preferredServiceColor,
  renderTraceHtml,
  runTypeBadge,
  type RunUpsert,
  SERVICE_PALETTE,
  startTraceServer,
  type TraceRun,
  type TraceServerHandle,
  TraceStore,
  type TraceSummary,
  UNKNOWN_SERVICE_COLOR,
} from "@tracing-patterns/setup";

// ----------------------------------------------------------------- helpers

interface RunSpec {
  id?: string;
  name: string;
  parent?: PostedRun;
  /** ms after T0 */
  start: number;
  end?: number;
  service?: string;
  error?: string;
  project?: string;
  inputs?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  tags?: string[];
  runType?: string;
}

interface PostedRun {
  id: string;
  traceId: string;
  dottedOrder: string;
}

const T0 = Date.parse("2025-03-01T10:00:00.000Z");

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.(\d{3})Z$/, "$1000Z");
}

function runBody(spec: RunSpec): { body: Record<string, unknown>; posted: PostedRun } {
  const id = spec.id ?? randomUUID();
  const traceId = spec.parent?.traceId ?? id;
  const dottedOrder = `${spec.parent ? `${spec.parent.dottedOrder}.` : ""}${stamp(T0 + spec.start)}${id}`;
  const metadata = spec.service ? { LANGSMITH_SERVICE: spec.service } : {};
  const body: Record<string, unknown> = {
    id,
    trace_id: traceId,
    dotted_order: dottedOrder,
    name: spec.name,
    run_type: spec.runType ?? "chain",
    start_time: new Date(T0 + spec.start).toISOString(),
    inputs: spec.inputs ?? {},
    extra: { ...spec.extra, metadata: { ...metadata, ...((spec.extra?.metadata as object | undefined) ?? {}) } },
    tags: spec.tags ?? [],
    session_name: spec.project ?? "viewer-tests",
  };
  if (spec.parent) body.parent_run_id = spec.parent.id;
  if (spec.end !== undefined) body.end_time = new Date(T0 + spec.end).toISOString();
  if (spec.error !== undefined) body.error = spec.error;
  return { body, posted: { id, traceId, dottedOrder } };
}

let server: TraceServerHandle;

async function post(...specs: RunSpec[]): Promise<PostedRun[]> {
  const built = specs.map(runBody);
  const res = await fetch(`${server.url}/runs/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ post: built.map((b) => b.body) }),
  });
  assert.equal(res.status, 202, await res.text());
  return built.map((b) => b.posted);
}

async function postOne(spec: RunSpec): Promise<PostedRun> {
  const [posted] = await post(spec);
  assert.ok(posted);
  return posted;
}

async function page(path: string, init?: RequestInit): Promise<{ status: number; html: string; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { redirect: "manual", ...init });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

function listedTraceIds(html: string): string[] {
  return [...html.matchAll(/<tr class="trace-row[^"]*" data-trace-id="([^"]+)"/g)].map((m) => m[1] ?? "");
}

before(async () => {
  // The list opens on the project traced code writes to; these tests write to "viewer-tests".
  server = await startTraceServer({ port: 0, viewerProject: "viewer-tests" });
});

after(async () => {
  await server.close();
});

// ----------------------------------------------------------------- colours and layout

test("service colours depend on the name, differ within a view and come from the palette", () => {
  const a = assignServiceColors(["gateway", "worker", "rag-service", "billing"]);
  assert.equal(new Set(a.values()).size, 4, "distinct colours for distinct services");
  for (const c of a.values()) assert.ok(SERVICE_PALETTE.includes(c));
  assert.deepEqual(assignServiceColors(["billing", "rag-service", "worker", "gateway", "worker"]), a, "input order and duplicates do not matter");
  // Alone, a service always gets the colour its name picks.
  for (const s of ["gateway", "worker", "x", "a-very-long-service-name"]) assert.equal(assignServiceColors([s]).get(s), preferredServiceColor(s));
  // More services than colours still get a colour each (reused).
  const many = assignServiceColors(Array.from({ length: SERVICE_PALETTE.length + 3 }, (_, i) => `svc-${i}`));
  assert.equal(many.size, SERVICE_PALETTE.length + 3);
});

test("the inline rendering and the viewer page draw the same rows in the same service colours", async () => {
  const root = await postOne({ name: "shared_root", start: 0, end: 100, service: "front" });
  const child = await postOne({ name: "shared_child", parent: root, start: 10, end: 60, service: "back" });
  await postOne({ name: "shared_leaf", parent: child, start: 20, end: 30, runType: "llm" });
  const runs = (await (await fetch(`${server.url}/api/traces/${root.traceId}`)).json()) as { runs: TraceRun[] };
  const layout = layoutTrace(runs.runs);
  assert.deepEqual(
    layout.rows.map((r) => [r.node.run.name, r.depth, r.service]),
    [
      ["shared_root", 0, "front"],
      ["shared_child", 1, "back"],
      ["shared_leaf", 2, "back"],
    ],
  );
  const inline = renderTraceHtml(runs.runs);
  const { html } = await page(`/traces/${root.traceId}`);
  for (const service of ["front", "back"]) {
    const color = layout.colors.get(service) ?? "";
    assert.ok(inline.includes(`background:${color}`), `inline uses ${color} for ${service}`);
    assert.ok(html.includes(`data-service="${service}" data-color="${color}"`), `page rows use ${color} for ${service}`);
  }
  // The waterfall bars sit at the same place in both.
  const barsInline = [...inline.matchAll(/left:([\d.]+)%;width:([\d.]+)%/g)].map((m) => `${m[1]}/${m[2]}`);
  const barsPage = [...html.matchAll(/class="wf-bar[^"]*" style="left:([\d.]+)%;width:([\d.]+)%/g)].map((m) => `${m[1]}/${m[2]}`);
  assert.deepEqual(barsPage, barsInline);
  assert.deepEqual(barsInline, ["0/100", "10/50", "20/10"]);
});

function luminance(hex: string): number {
  const [r = 0, g = 0, b = 0] = [1, 3, 5].map((i) => {
    const v = parseInt(hex.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

test("service colours and run-type badges meet WCAG AA contrast for text", () => {
  // Service colours are used for service names next to swatches and must stand out on white and on the bar track.
  for (const color of [...SERVICE_PALETTE, UNKNOWN_SERVICE_COLOR]) {
    assert.ok(contrast(color, "#ffffff") >= 4.5, `${color} on white: ${contrast(color, "#ffffff").toFixed(2)}`);
    assert.ok(contrast(color, "#eef1f4") >= 3, `${color} on the track`);
  }
  for (const type of ["chain", "llm", "tool", "retriever", "embedding", "prompt", "parser", "custom"]) {
    const b = runTypeBadge(type);
    assert.ok(contrast(b.fg, b.bg) >= 4.5, `${type} badge: ${contrast(b.fg, b.bg).toFixed(2)}`);
  }
  assert.equal(runTypeBadge("custom").letter, "C");
  assert.equal(runTypeBadge("llm").letter, "L");
});

// ----------------------------------------------------------------- pages

test("pages carry a same-origin-only script policy and load only the viewer's own script", async () => {
  const { status, html, headers } = await page("/");
  assert.equal(status, 200);
  const csp = headers.get("content-security-policy") ?? "";
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /default-src 'none'/);
  assert.deepEqual([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]), ['<script src="/_viewer/viewer.js" defer>']);
  const js = await fetch(`${server.url}/_viewer/viewer.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /javascript/);
});

test("attacker-controlled names, inputs, metadata, errors and rejected payloads are escaped", async () => {
  const xss = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
  const root = await postOne({
    name: `evil ${xss}`,
    start: 0,
    end: 50,
    service: `svc${xss}`,
    error: `boom ${xss}`,
    inputs: { [`key${xss}`]: `</pre>${xss}` },
    extra: { metadata: { [`m${xss}`]: xss } },
    tags: [xss],
  });
  const child = await postOne({ name: "child", parent: root, start: 5, end: 10 });
  // A rejected operation of the same trace, whose payload is shown on the page.
  const bad = await fetch(`${server.url}/runs/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ post: [{ ...runBody({ name: xss, start: 1, parent: root }).body, dotted_order: `${stamp(T0)}${child.id}` }] }),
  });
  assert.equal(bad.status, 422);

  for (const path of [`/traces/${root.traceId}?run=${root.id}`, "/", `/?name=${encodeURIComponent("evil")}`]) {
    const { html } = await page(path);
    assert.ok(html.includes("evil"), `${path} shows the run`);
    assert.ok(!html.includes("<script>alert"), `${path}: no injected script`);
    assert.ok(!/<img\b/i.test(html), `${path}: no injected img`);
    assert.ok(!html.includes("</pre><script"), `${path}: no break-out of pre`);
  }
  const { html } = await page(`/traces/${root.traceId}?run=${root.id}`);
  assert.ok(html.includes("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;"));
  assert.match(html, /Rejected runs \(1\)/);
  const state = (await (await fetch(`${server.url}/traces/${root.traceId}/state?run=${root.id}`)).json()) as { details: string; regions: Record<string, string> };
  for (const fragment of [state.details, ...Object.values(state.regions)]) {
    assert.ok(!fragment.includes("<script>alert") && !/<img\b/i.test(fragment));
  }
});

test("the trace list filters by project, service, status and name, newest first", async () => {
  const tag = randomUUID().slice(0, 8);
  const a = await postOne({ name: `alpha-${tag}`, start: 1000, end: 1100, service: `api-${tag}`, project: `proj-a-${tag}` });
  const b = await postOne({ name: `beta-${tag}`, start: 2000, end: 2100, service: `api-${tag}`, project: `proj-b-${tag}`, error: "ValueError: nope" });
  const c = await postOne({ name: `gamma-${tag}`, start: 3000, service: `worker-${tag}`, project: `proj-a-${tag}` });
  await postOne({ name: "gamma_child", parent: c, start: 3010, end: 3020, service: `db-${tag}` });
  const ids = async (query: string): Promise<string[]> => listedTraceIds((await page(`/?${query}`)).html).filter((id) => [a, b, c].some((t) => t.traceId === id));

  // `project=` is the picker's "All projects"; without it the list shows the default project.
  assert.deepEqual(await ids(`project=&name=${tag}`), [c.traceId, b.traceId, a.traceId], "newest first");
  assert.deepEqual(await ids(`name=${tag}`), [c.traceId], "the default project: only gamma has a run in viewer-tests");
  assert.deepEqual(await ids(`project=&name=ALPHA-${tag}`), [a.traceId], "name is case-insensitive");
  assert.deepEqual(await ids(`project=proj-a-${tag}`), [c.traceId, a.traceId]);
  assert.deepEqual(await ids(`project=&service=api-${tag}`), [b.traceId, a.traceId]);
  assert.deepEqual(await ids(`project=&service=db-${tag}`), [c.traceId], "a service touched by a child run");
  assert.deepEqual(await ids(`project=&status=error&name=${tag}`), [b.traceId]);
  assert.deepEqual(await ids(`project=&status=running&name=${tag}`), [c.traceId]);
  assert.deepEqual(await ids(`project=&status=ok&name=${tag}`), [a.traceId]);
  assert.deepEqual(await ids(`project=proj-b-${tag}&service=api-${tag}&status=error`), [b.traceId]);
  assert.deepEqual(await ids(`project=no-such-project-${tag}`), []);

  const { html } = await page(`/?status=error&name=${tag}&project=proj-b-${tag}`);
  assert.match(html, /<option value="error" selected>/, "the form shows the active filters");
  assert.match(html, new RegExp(`<option value="proj-b-${tag}" selected>`));
  assert.ok(html.includes(`name="name" type="search" value="${tag}"`), "the name filter is kept in its input");
  const row = html.slice(html.indexOf(`data-trace-id="${b.traceId}"`), html.indexOf("</tr>", html.indexOf(`data-trace-id="${b.traceId}"`)));
  const cells = [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => (m[1] ?? "").replace(/<[^>]+>/g, ""));
  assert.deepEqual(cells.slice(2), [`api-${tag}`, "1", "100 ms", "1", "error", "complete"]);
});

test("the list opens on the project the SDK writes to (LANGSMITH_PROJECT, else default); All projects shows every one", async (t) => {
  const tag = randomUUID().slice(0, 8);
  const home = `home-${tag}`;
  // The server reads the SDK's project variables as it starts, as the SDK does per run.
  const startWithProject = async (project: string | undefined): Promise<TraceServerHandle> => {
    const saved = { LANGSMITH_PROJECT: process.env.LANGSMITH_PROJECT, LANGCHAIN_PROJECT: process.env.LANGCHAIN_PROJECT };
    delete process.env.LANGCHAIN_PROJECT;
    if (project === undefined) delete process.env.LANGSMITH_PROJECT;
    else process.env.LANGSMITH_PROJECT = project;
    try {
      return await startTraceServer({ port: 0 });
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  };
  const configured = await startWithProject(home);
  const fresh = await startWithProject(undefined);
  t.after(() => Promise.all([configured.close(), fresh.close()]));
  const get = async (base: TraceServerHandle, path: string): Promise<string> => (await fetch(`${base.url}${path}`)).text();

  // Before any trace: the default project is chosen, though no run has created it yet.
  const empty = await get(fresh, "/");
  assert.match(empty, /<option value="default" selected>default \(default\)<\/option>/);
  assert.match(empty, /No traces in project default yet\. Traced code writes here unless it names another project \(LANGSMITH_PROJECT\)\. <a href="\/\?project=">All projects<\/a>/);

  const ids = (html: string): string[] => listedTraceIds(html);
  const batch = async (runs: RunSpec[]): Promise<PostedRun[]> => {
    const built = runs.map(runBody);
    const res = await fetch(`${configured.url}/runs/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ post: built.map((b) => b.body) }) });
    assert.equal(res.status, 202, await res.text());
    return built.map((b) => b.posted);
  };
  const [mine] = await batch([{ name: "mine", start: 500, end: 600, project: home }]);
  const others = await batch(Array.from({ length: 51 }, (_, i) => ({ name: `load-${i}`, start: 1000 + i, end: 1001 + i, project: `load-${tag}` })));
  assert.ok(mine);

  const opened = await get(configured, "/");
  assert.deepEqual(ids(opened), [mine.traceId], "the load test's newer traces do not bury it");
  assert.match(opened, new RegExp(`<option value="${home}" selected>${home} \\(default\\)</option>`));
  assert.match(opened, /<option value="">All projects<\/option>/);

  const all = await get(configured, "/?project=");
  assert.deepEqual(ids(all), [...others.slice(1).reverse().map((o) => o.traceId)], "every project, newest first, one page");
  assert.match(all, /<option value="" selected>All projects<\/option>/);
  assert.match(all, /<a rel="next" href="\/\?project=&#38;offset=50">Older<\/a>/, "paging stays on all projects");
  const older = await get(configured, "/?project=&offset=50");
  assert.deepEqual(ids(older), [others[0]?.traceId, mine.traceId]);

  // The live poll sends the page's own query: no project is the default one, `project=` all of them.
  const rows = async (query: string): Promise<string[]> => {
    const state = (await (await fetch(`${configured.url}/_viewer/list-state?${query}`)).json()) as { rows: string };
    return [...state.rows.matchAll(/data-trace-id="([^"]+)"/g)].map((m) => m[1] ?? "");
  };
  assert.deepEqual(await rows(""), [mine.traceId]);
  assert.equal((await rows("project=")).length, 50);
  assert.deepEqual(ids(await get(configured, `/?project=load-${tag}&name=load-7`)), [others[7]?.traceId]);
});

test("the list pages through filtered traces", async () => {
  const tag = `page-${randomUUID().slice(0, 8)}`;
  const made: PostedRun[] = [];
  // 55 matches interleaved with non-matching traces, so filtering happens across the store's pages.
  for (let i = 0; i < 55; i++) {
    made.push(await postOne({ name: `${tag}-${i}`, start: 10_000 + i * 10, end: 10_000 + i * 10 + 1 }));
    await postOne({ name: `other-${i}`, start: 10_000 + i * 10 + 5, end: 10_000 + i * 10 + 6 });
  }
  const first = await page(`/?name=${tag}`);
  const firstIds = listedTraceIds(first.html);
  assert.equal(firstIds.length, 50);
  assert.equal(firstIds[0], made[54]?.traceId);
  assert.match(first.html, new RegExp(`<a rel="next" href="/\\?name=${tag}&#38;offset=50">Older</a>`));
  const second = await page(`/?name=${tag}&offset=50`);
  assert.deepEqual(listedTraceIds(second.html), made.slice(0, 5).reverse().map((m) => m.traceId));
  assert.ok(!second.html.includes('rel="next"'));
  assert.ok(second.html.includes('rel="prev"'));
});

test("an offset past every trace lists none (even one SQLite could not take)", async () => {
  const { status, html } = await page(`/?offset=${"9".repeat(25)}`);
  assert.equal(status, 200);
  assert.deepEqual(listedTraceIds(html), []);
});

test("the list's live state: 200 with the rows viewer.js swaps in, 204 while unchanged, new rows once a trace arrives", async () => {
  const tag = `live-list-${randomUUID().slice(0, 8)}`;
  const first = await postOne({ name: `${tag}-first`, start: 20_000, end: 20_100 });
  const listPage = await page(`/?name=${tag}`);
  const pageVersion = /<body class="page-list" data-live-list="1" data-version="([^"]+)"/.exec(listPage.html)?.[1];
  assert.ok(pageVersion, "the first page of the list is live and carries its version");

  const state = async (v?: string): Promise<Response> => fetch(`${server.url}/_viewer/list-state?name=${tag}${v === undefined ? "" : `&v=${v}`}`, { headers: { accept: "application/json" } });
  const full = await state();
  assert.equal(full.status, 200);
  assert.match(full.headers.get("content-type") ?? "", /^application\/json/);
  const body = (await full.json()) as { version: string; rows: string };
  assert.deepEqual(Object.keys(body).sort(), ["rows", "version"]);
  assert.equal(body.version, pageVersion, "the page's first poll finds it current");
  assert.deepEqual(listedTraceIds(body.rows), [first.traceId], "the rows honour the page's filters");
  assert.equal((await state(pageVersion)).status, 204);

  const second = await postOne({ name: `${tag}-second`, start: 20_500 });
  const changed = await state(pageVersion);
  assert.equal(changed.status, 200);
  const next = (await changed.json()) as { version: string; rows: string };
  assert.notEqual(next.version, pageVersion);
  assert.deepEqual(listedTraceIds(next.rows), [second.traceId, first.traceId]);
  assert.equal((await state(next.version)).status, 204);

  assert.equal((await fetch(`${server.url}/_viewer/viewer.css`)).status, 200, "the assets beside it are still served");
  assert.equal((await fetch(`${server.url}/_viewer/no-such-asset.js`)).status, 404);
});

test("TraceStore.listTraces filters by status and root name in SQL: the right traces, newest first, paged", () => {
  const store = new TraceStore();
  try {
    const at = (ms: number): string => new Date(T0 + ms).toISOString();
    type Spec = { name?: string; start: number; end?: number; error?: string; service?: string };
    /** A trace: its root (unless `root` is null, leaving only orphans) and children, as store upserts. */
    const trace = (root: Spec | null, children: Spec[] = []): string => {
      const traceId = randomUUID();
      const rootStart = root?.start ?? children[0]?.start ?? 0;
      const rootDotted = `${stamp(T0 + rootStart)}${traceId}`;
      const op = (id: string, dotted: string, s: Spec, parent?: string): RunUpsert => ({
        op: "post",
        id,
        trace_id: traceId,
        dotted_order: dotted,
        ...(parent ? { parent_run_id: parent } : {}),
        ...(s.name !== undefined ? { name: s.name } : {}),
        run_type: "chain",
        start_time: at(s.start),
        ...(s.end !== undefined ? { end_time: at(s.end) } : {}),
        ...(s.error !== undefined ? { error: s.error } : {}),
        session_name: "sql-filters",
        extra: { metadata: s.service ? { LANGSMITH_SERVICE: s.service } : {} },
      });
      const ops = root ? [op(traceId, rootDotted, root)] : [];
      for (const c of children) {
        const id = randomUUID();
        ops.push(op(id, `${rootDotted}.${stamp(T0 + c.start)}${id}`, c, traceId));
      }
      assert.deepEqual(store.upsertRuns(ops).rejected, []);
      return traceId;
    };
    const ok = trace({ name: "Checkout ÄRGER", start: 1000, end: 1100 }, [{ name: "pay", start: 1010, end: 1020, service: "billing" }]);
    const failedChild = trace({ name: "checkout-ärger", start: 2000, end: 2100 }, [{ name: "pay", start: 2010, end: 2020, error: "declined", service: "billing" }]);
    const running = trace({ name: "ask", start: 3000, end: 3100 }, [{ name: "still going", start: 3010 }]);
    const errorWins = trace({ name: "ask-again", start: 4000 }, [{ name: "boom", start: 4010, end: 4020, error: "ValueError" }]);
    const rootless = trace(null, [{ name: "checkout orphan", start: 5000, end: 5010 }]);
    const nameless = trace({ start: 6000, end: 6010 });
    // Same start: newest-first order falls back to trace id, descending.
    const tied = [trace({ name: "tie", start: 7000, end: 7010 }), trace({ name: "tie", start: 7000, end: 7010 }), trace({ name: "tie", start: 7000 })];
    const tiedDesc = [...tied].sort().reverse();
    const tiedDone = tiedDesc.filter((id) => id !== tied[2]);

    const all = store.listTraces({ limit: 100 });
    assert.deepEqual(all.map((t) => t.trace_id), [...tiedDesc, nameless, rootless, errorWins, running, failedChild, ok]);
    const summary = new Map(all.map((t) => [t.trace_id, t]));
    const ids = (filter: Parameters<TraceStore["listTraces"]>[0]): string[] => {
      const got = store.listTraces(filter);
      // Narrowing never changes a trace's own summary (counts, services, status).
      for (const t of got) assert.deepEqual(t, summary.get(t.trace_id));
      return got.map((t: TraceSummary) => t.trace_id);
    };

    assert.deepEqual(ids({ status: "error" }), [errorWins, failedChild], "an error anywhere in the trace, even while a run is pending");
    assert.deepEqual(ids({ status: "pending" }), [tied[2], running], "a run not ended, and no error");
    assert.deepEqual(ids({ status: "success" }), [...tiedDone, nameless, rootless, ok]);
    assert.deepEqual(ids({ rootNameContains: "ärger" }), [failedChild, ok], "case folds beyond ASCII");
    assert.deepEqual(ids({ rootNameContains: "CHECKOUT" }), [failedChild, ok], "the root's name only: neither a child's nor an orphan's");
    assert.deepEqual(ids({ rootNameContains: "" }), all.map((t) => t.trace_id), "an empty needle filters nothing");
    assert.deepEqual(ids({ rootNameContains: "checkout", status: "success" }), [ok]);
    assert.deepEqual(ids({ rootNameContains: "checkout", status: "error", service: "billing" }), [failedChild]);
    assert.deepEqual(ids({ rootNameContains: "checkout", projectName: "no-such-project" }), []);
    assert.deepEqual(ids({ rootNameContains: "nothing like it" }), []);

    // Pages of a filtered list cut it where one long page would.
    const success = ids({ status: "success" });
    const paged = [0, 2, 4].flatMap((offset) => ids({ status: "success", limit: 2, offset }));
    assert.deepEqual(paged, success);
    assert.deepEqual(ids({ status: "success", limit: 2, offset: success.length }), []);
  } finally {
    store.close();
  }
});

test("a broken trace reads as broken: orphan section, missing parent named, incomplete badge in the list", async () => {
  const root = await postOne({ name: "broken_root", start: 0, end: 100, service: "gateway" });
  const neverSent = { id: randomUUID(), traceId: root.traceId, dottedOrder: `${root.dottedOrder}.${stamp(T0 + 5)}${randomUUID()}` };
  neverSent.dottedOrder = `${root.dottedOrder}.${stamp(T0 + 5)}${neverSent.id}`;
  const orphan = await postOne({ name: "lonely_child", parent: neverSent, start: 10, end: 20, service: "billing" });

  const { status, html } = await page(`/traces/${root.traceId}`);
  assert.equal(status, 200);
  assert.match(html, /broken trace: 1 orphaned/);
  assert.match(html, /Orphaned runs \(parent missing\)/);
  assert.ok(html.includes(neverSent.id), "names the missing parent");
  const orphanSection = html.slice(html.indexOf('id="trace-orphans"'), html.indexOf('id="trace-rejections"'));
  assert.ok(orphanSection.includes(`data-run-id="${orphan.id}"`), "the orphan is drawn in the orphan section");
  const treeSection = html.slice(html.indexOf('id="trace-tree"'), html.indexOf('id="trace-orphans"'));
  assert.ok(!treeSection.includes(orphan.id), "and not in the tree");

  const list = await page(`/?name=broken_root`);
  const row = list.html.slice(list.html.indexOf(`data-trace-id="${root.traceId}"`));
  assert.match(row.slice(0, 3000), /incomplete: 1 orphan</);
  assert.match(list.html, new RegExp(`<tr class="trace-row trace-broken" data-trace-id="${root.traceId}"`));
});

test("an unknown trace gets a live placeholder page; a malformed id a 404 page", async () => {
  const unknown = randomUUID();
  const missing = await page(`/traces/${unknown}`);
  assert.equal(missing.status, 404);
  assert.match(missing.html, /No runs of this trace have arrived yet/);
  assert.match(missing.html, /data-pending="1"/, "the page keeps polling for the runs");
  const bad = await page("/traces/not-a-uuid");
  assert.equal(bad.status, 404);
  assert.match(bad.headers.get("content-type") ?? "", /text\/html/);
  assert.match(bad.html, /is not a trace id/);
});

test("the state endpoint answers 204 until the trace changes, then the new regions", async () => {
  const root = await postOne({ name: "live_root", start: 0 });
  const first = await fetch(`${server.url}/traces/${root.traceId}/state`);
  assert.equal(first.status, 200);
  const state = (await first.json()) as { version: string; pending: boolean; regions: { tree: string } };
  assert.equal(state.pending, true);
  assert.match(state.regions.tree, /wf-running/);
  const same = await fetch(`${server.url}/traces/${root.traceId}/state?v=${state.version}`);
  assert.equal(same.status, 204);

  const res = await fetch(`${server.url}/runs/${root.id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ end_time: new Date(T0 + 500).toISOString(), outputs: { done: true }, trace_id: root.traceId, dotted_order: root.dottedOrder }),
  });
  assert.equal(res.status, 202, await res.text());
  const changed = await fetch(`${server.url}/traces/${root.traceId}/state?v=${state.version}&run=${root.id}`);
  assert.equal(changed.status, 200);
  const next = (await changed.json()) as { version: string; pending: boolean; regions: { tree: string }; details: string };
  assert.notEqual(next.version, state.version);
  assert.equal(next.pending, false);
  assert.match(next.regions.tree, /wf-ok/);
  assert.match(next.details, /&#34;done&#34;: true/);
});

test("with an API key the viewer asks for it once and keeps it in an HttpOnly cookie", async () => {
  const guarded = await startTraceServer({ port: 0, apiKey: "s3cret" });
  try {
    const open = await fetch(`${guarded.url}/`, { redirect: "manual" });
    assert.equal(open.status, 401);
    assert.match(await open.text(), /API key required/);
    const wrong = await fetch(`${guarded.url}/?key=nope`, { redirect: "manual" });
    assert.equal(wrong.status, 401);
    const right = await fetch(`${guarded.url}/?status=ok&key=s3cret`, { redirect: "manual" });
    assert.equal(right.status, 303);
    assert.equal(right.headers.get("location"), "/?status=ok");
    const setCookie = right.headers.get("set-cookie") ?? "";
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    const withCookie = await fetch(`${guarded.url}/?status=ok`, { headers: { cookie: setCookie.split(";")[0] ?? "" } });
    assert.equal(withCookie.status, 200);
    assert.match(await withCookie.text(), /<h1>Traces<\/h1>/);
    // The SDK's routes still want the header; the cookie is only for the viewer's pages.
    const api = await fetch(`${guarded.url}/api/traces`, { headers: { cookie: setCookie.split(";")[0] ?? "" } });
    assert.equal(api.status, 401);
  } finally {
    await guarded.close();
  }
});

test("viewer: false leaves the root unserved", async () => {
  const bare = await startTraceServer({ port: 0, viewer: false });
  try {
    assert.equal((await fetch(`${bare.url}/`)).status, 404);
    assert.equal((await fetch(`${bare.url}/info`)).status, 200);
  } finally {
    await bare.close();
  }
});

test("displayTrace prints the trace's viewer link when traces go to the local server", (t) => {
  const traceId = randomUUID();
  const runs: TraceRun[] = [{ id: traceId, trace_id: traceId, name: "root", run_type: "chain", start_time: T0, end_time: T0 + 5 }];
  const local = { TRACE_SERVER_URL: "http://127.0.0.1:1984", LANGSMITH_ENDPOINT: "http://127.0.0.1:1984" };
  assert.equal(knownViewerUrl(local), "http://127.0.0.1:1984");
  assert.equal(knownViewerUrl({ ...local, LANGSMITH_ENDPOINT: "https://api.smith.langchain.com" }), undefined, "cloud mode: no local viewer");
  assert.equal(
    knownViewerUrl({ ...local, LANGSMITH_ENDPOINT: "https://api.smith.langchain.com", LANGSMITH_RUNS_ENDPOINTS: JSON.stringify([{ api_url: "http://127.0.0.1:1984" }]) }),
    "http://127.0.0.1:1984",
    "mirrored to the local server",
  );
  assert.equal(knownViewerUrl({ ...local, TRACE_VIEWER_URL: "http://viewer.local" }), "http://viewer.local");

  const printed: unknown[] = [];
  t.mock.method(console, "log", (value: unknown) => printed.push(value));
  displayTrace(runs, { viewerUrl: "http://127.0.0.1:1984/" });
  assert.equal(printed.length, 1);
  assert.match(String(printed[0]), new RegExp(`\\ntrace viewer: http://127\\.0\\.0\\.1:1984/traces/${traceId}$`));
});
