// renderTraceText / renderTraceHtml / displayTrace / traceUrl on hand-built runs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assignServiceColors, displayTrace, renderTraceHtml, renderTraceText, traceUrl, type TraceRun } from "@tracing-patterns/setup";

const T0 = Date.parse("2025-01-01T00:00:00.000Z");
const TRACE = "0193aaaa-0000-4000-8000-000000000001";

function run(id: string, name: string, runType: string, parent: string | undefined, start: number, end: number | undefined, extra: Partial<TraceRun> = {}): TraceRun {
  return {
    id,
    name,
    run_type: runType,
    trace_id: TRACE,
    parent_run_id: parent,
    start_time: new Date(T0 + start).toISOString(),
    // LangSmith-style timestamps: microseconds and no zone must parse as UTC.
    end_time: end === undefined ? undefined : new Date(T0 + end).toISOString().replace("Z", "123"),
    ...extra,
  };
}

const gateway = { extra: { metadata: { LANGSMITH_SERVICE: "gateway" } } };
const worker = { extra: { metadata: { LANGSMITH_SERVICE: "worker" } } };

function sample(): TraceRun[] {
  return [
    // Deliberately out of order: rendering sorts children by start time.
    run("c2", "call_worker", "chain", TRACE, 30, 1490),
    run(TRACE, "handle_request", "chain", undefined, 0, 1500, gateway),
    run("c1", "retrieve", "retriever", TRACE, 5, 25),
    run("w1", "worker_handle", "chain", "c2", 40, 1400, worker),
    run("w2", "ChatOpenAI", "llm", "w1", 50, 60, { error: "RateLimitError: 429 Too Many Requests\nstack..." }),
    run("o1", "late_step", "tool", "gone-parent", 100, undefined, worker),
  ];
}

test("renderTraceText draws the tree in start order with service, duration and status, and lists orphans", () => {
  const text = renderTraceText(sample());
  const lines = text.split("\n");
  assert.equal(lines[0], `trace ${TRACE} · 6 runs · services: gateway, worker`);
  assert.equal(lines[1], "handle_request  chain  [gateway]  1.50 s  ok");
  assert.equal(lines[2], "├─ retrieve  retriever  [gateway]  20 ms  ok");
  assert.equal(lines[3], "└─ call_worker  chain  [gateway]  1.46 s  ok");
  assert.equal(lines[4], "   └─ worker_handle  chain  [worker]  1.36 s  ok");
  assert.equal(lines[5], "      └─ ChatOpenAI  llm  [worker]  10 ms  error: RateLimitError: 429 Too Many Requests");
  assert.equal(lines[6], "orphans (parent not in this trace):");
  assert.equal(lines[7], "! late_step  tool  [worker]  -  running  (missing parent …e-parent)");
  assert.equal(lines.length, 8);
});

test("renderTraceText marks runs of another trace and counts roots", () => {
  const runs = [...sample().slice(0, 3), { ...run("x1", "intruder", "chain", undefined, 3, 4), trace_id: "ffffffff-0000-4000-8000-000000000000" }];
  const text = renderTraceText(runs);
  assert.match(text.split("\n")[0] ?? "", /· 2 roots ·/);
  assert.match(text, /intruder {2}chain {2}\[\?\] {2}1 ms {2}ok {2}\(other trace …00000000\)/);
});

test("renderTraceHtml is self-contained, escapes names, colours services and links to the viewer", () => {
  const runs = sample();
  runs.push(run("evil", "<script>alert(1)</script>", "tool", TRACE, 10, 20));
  const html = renderTraceHtml(runs, { viewerUrl: "http://127.0.0.1:1984/" });
  assert.ok(!html.includes("<script>"), "names are escaped");
  assert.ok(html.includes("&#60;script&#62;alert(1)&#60;/script&#62;"));
  assert.ok(!/<(link|img|script|iframe)\b/i.test(html), "no external assets or scripts");
  assert.ok(!/\bsrc=/.test(html));
  const hrefs = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(hrefs, [`http://127.0.0.1:1984/traces/${TRACE}`]);
  // One waterfall bar per run with a start time, the two services in distinct colours.
  assert.equal((html.match(/position:absolute;top:2px/g) ?? []).length, 7);
  const colors = assignServiceColors(["gateway", "worker"]);
  assert.notEqual(colors.get("gateway"), colors.get("worker"));
  assert.ok(html.includes(`background:${colors.get("gateway")}`) && html.includes(`background:${colors.get("worker")}`));
  assert.ok(html.includes("orphan "));
  assert.equal(renderTraceHtml(runs).includes("href="), false, "no link without a viewer URL");
});

test("traceUrl joins the viewer URL and the trace id", () => {
  assert.equal(traceUrl("abc", "http://localhost:2000/"), "http://localhost:2000/traces/abc");
  const saved = { viewer: process.env.TRACE_VIEWER_URL, server: process.env.TRACE_SERVER_URL };
  try {
    delete process.env.TRACE_VIEWER_URL;
    process.env.TRACE_SERVER_URL = "http://127.0.0.1:4321";
    assert.equal(traceUrl("abc"), "http://127.0.0.1:4321/traces/abc");
  } finally {
    if (saved.viewer === undefined) delete process.env.TRACE_VIEWER_URL;
    else process.env.TRACE_VIEWER_URL = saved.viewer;
    if (saved.server === undefined) delete process.env.TRACE_SERVER_URL;
    else process.env.TRACE_SERVER_URL = saved.server;
  }
});

test("displayTrace prints the text tree outside tslab and hands HTML to tslab inside it", (t) => {
  const printed: unknown[] = [];
  t.mock.method(console, "log", (value: unknown) => printed.push(value));
  displayTrace(sample());
  assert.deepEqual(printed, [renderTraceText(sample())]);

  const shown: string[] = [];
  const required: string[] = [];
  const holder = globalThis as { __tslab__?: unknown };
  holder.__tslab__ = {
    require: (id: string) => {
      required.push(id);
      return { display: { html: (html: string) => shown.push(html) } };
    },
  };
  try {
    displayTrace(sample(), { viewerUrl: "http://127.0.0.1:1984" });
  } finally {
    delete holder.__tslab__;
  }
  assert.deepEqual(required, ["tslab"]);
  assert.deepEqual(shown, [renderTraceHtml(sample(), { viewerUrl: "http://127.0.0.1:1984" })]);
  assert.equal(printed.length, 1, "nothing printed under tslab");
});

test("a parent cycle renders (as orphans) instead of overflowing the stack, in text and HTML", () => {
  const runs = [
    run(TRACE, "handle_request", "chain", undefined, 0, 100, gateway),
    run("a", "step_a", "chain", "b", 10, 20),
    run("b", "step_b", "chain", "a", 12, 18),
  ];
  const text = renderTraceText(runs);
  assert.match(text, /step_a/);
  assert.match(text, /step_b/);
  const html = renderTraceHtml(runs);
  assert.match(html, /step_a/);
  assert.match(html, /step_b/);
});
