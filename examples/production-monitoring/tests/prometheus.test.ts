// A real Prometheus (Debian's, on a free port, started once for this file)
// scrapes both services; PromQL through its HTTP API returns the counters the
// requests should have produced, and the runs the services say they exported
// are the runs the trace server stored.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { startPrometheus, RULES_FILE, type Prometheus } from "../harness/prometheus.js";
import { chat, startTestStack, type TestStack } from "./helpers.js";

let stack: TestStack;
let prom: Prometheus;

before(async () => {
  stack = await startTestStack("production-monitoring-prometheus", {}, { TRACE_SAMPLE_RATE: "0.5" });
  prom = await startPrometheus({ targets: { services: [stack.services.urls.assistant, stack.services.urls.accounts] } });
});

after(async () => {
  await prom?.stop();
  const codes = await stack?.close();
  assert.deepEqual(codes, { assistant: 0, accounts: 0 });
});

const sum = (promql: string): string => `sum(${promql})`;

test("Prometheus scrapes both services, and PromQL returns the requests, failures, sampling decisions, traces and exported runs", { timeout: 120_000 }, async () => {
  const url = stack.services.urls.assistant;
  const lookups = Array.from({ length: 16 }, (_, i) => `cust-${i + 1}`);
  const results = await Promise.all([
    ...lookups.slice(0, 12).map((id) => chat(url, `What plan is account ${id} on?`)),
    ...lookups.slice(12).map((id) => chat(url, `Which email does account ${id} use?`, { stream: true })),
    ...[1, 2].map(() => chat(url, "What plan is account cust-99 on?", { fault: "fail" })),
  ]);
  assert.deepEqual(results.map((r) => r.status), [...Array(16).fill(200), 502, 502]);
  const total = async (promql: string): Promise<number> => (await prom.query(`sum(${promql}) or vector(0)`))[0]?.value ?? Number.NaN;

  await prom.waitFor('sum(up{job="services"})', (v) => v === 2);
  assert.equal(await prom.waitFor(sum('http_requests_total{service="assistant",route="/chat"}'), (v) => v === 18), 18);
  assert.equal(await total('http_requests_total{service="assistant",route="/chat",status="502"}'), 2);
  // Sixteen answers looked an account up; the two failures stopped at the model, before the tool.
  assert.equal(await prom.waitFor(sum('http_requests_total{service="accounts",route="/accounts/:id",status="200"}'), (v) => v === 16), 16);

  // At rate 0.5 the assistant sampled about half in (keep); the others were held for the tail
  // decision (tail). accounts followed the assistant's decision for each lookup, never its own.
  const keep = await total('langsmith_sampling_decisions_total{service="assistant",source="own",decision="keep"}');
  assert.equal(keep + (await total('langsmith_sampling_decisions_total{service="assistant",source="own",decision="tail"}')), 18);
  assert.equal(await total('langsmith_sampling_decisions_total{service="accounts",source="caller"}'), 16);
  assert.equal(await total('langsmith_sampling_decisions_total{service="accounts",source="own"}'), 0);
  assert.equal(await total('langsmith_sampling_decisions_total{decision="drop"}'), 0, "with the tail decision on, nothing is dropped untraced");
  // Every request started a trace at the assistant (held or not); accounts continued them.
  assert.equal(await total('langsmith_traces_started_total{service="assistant"}'), 18);
  assert.equal(await total('langsmith_traces_started_total{service="accounts"}'), 0);
  assert.equal(await total('langsmith_server_runs_total{service="accounts",trace="continued"}'), 16);
  // Errors are always kept: the failures that were held came back as kept for "error"; the successful held ones were discarded.
  const keptErrors = await total('langsmith_tail_kept_total{service="assistant",reason="error"}');
  assert.equal(keptErrors + (await total('langsmith_tail_discarded_total{service="assistant"}')), 18 - keep);
  for (const failed of results.slice(16)) assert.ok(stack.traceServer.store.getTraceRuns(failed.traceId).length >= 3, "every failed request's trace is stored");

  // Every run is created once (a create and its update in one batch travel as one create), so
  // the creates the services counted in accepted uploads are the runs the trace server stored:
  // those of the sampled-in requests and of the kept tail ones, nothing of the discarded.
  const stored = (): number => stack.traceServer.store.counts().runs;
  const exported = await prom.waitFor(sum('langsmith_export_runs_total{op="create"}'), (v) => v !== undefined && v > 0 && v === stored());
  const storedTraces = new Set((stack.traceServer.store.db.prepare("SELECT trace_id FROM runs").all() as Array<{ trace_id: string }>).map((r) => r.trace_id));
  assert.equal(storedTraces.size, keep + keptErrors, `${exported} runs in ${storedTraces.size} traces`);
  assert.equal(await total('langsmith_export_requests_total{outcome!="ok"}'), 0);
  assert.ok((await total("langsmith_export_bytes_total")) > 0);

  // The recording rules evaluate against the scraped series: a rate needs the counter to move
  // between two scrapes, and every request above came before the first one.
  assert.equal((await chat(url, "What plan is account cust-10 on?")).status, 200);
  await prom.waitFor('service:http_requests:rate1m{service="assistant"}', (v) => v !== undefined && v > 0);
});

test("every metric the rules use is one the services expose", async () => {
  const rules = await readFile(RULES_FILE, "utf8");
  const used = new Set([...rules.matchAll(/(?<![:\w])((?:http|langsmith)_[a-z_]+)(?![:\w])/g)].map((m) => m[1]!));
  const exposed = `${await (await fetch(`${stack.services.urls.assistant}/metrics`)).text()}`;
  const missing = [...used].filter((name) => !new RegExp(`^# TYPE ${name} `, "m").test(exposed));
  assert.deepEqual(missing, []);
});
