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
  // At rate 0.5 the assistant traced about half; a traced request is the one with an x-trace-id.
  const kept = results.filter((r) => r.traceId !== "");
  const keptLookups = results.slice(0, 16).filter((r) => r.traceId !== "").length;
  const total = async (promql: string): Promise<number> => (await prom.query(`sum(${promql}) or vector(0)`))[0]?.value ?? Number.NaN;

  await prom.waitFor('sum(up{job="services"})', (v) => v === 2);
  assert.equal(await prom.waitFor(sum('http_requests_total{service="assistant",route="/chat"}'), (v) => v === 18), 18);
  assert.equal(await total('http_requests_total{service="assistant",route="/chat",status="502"}'), 2);
  // Sixteen answers looked an account up; the two failures stopped at the model, before the tool.
  assert.equal(await prom.waitFor(sum('http_requests_total{service="accounts",route="/accounts/:id",status="200"}'), (v) => v === 16), 16);

  // The edge decided every request itself; accounts followed the assistant's decision for each lookup.
  assert.equal(await total('langsmith_sampling_decisions_total{service="assistant",source="own",decision="keep"}'), kept.length);
  assert.equal(await total('langsmith_sampling_decisions_total{service="assistant",source="own",decision="drop"}'), 18 - kept.length);
  assert.equal(await total('langsmith_sampling_decisions_total{service="accounts",source="caller",decision="keep"}'), keptLookups);
  assert.equal(await total('langsmith_sampling_decisions_total{service="accounts",source="caller",decision="drop"}'), 16 - keptLookups);
  assert.equal(await total('langsmith_sampling_decisions_total{source="own",service="accounts"}'), 0, "accounts never decided on its own");
  assert.equal(await total('langsmith_traces_started_total{service="assistant"}'), kept.length);
  // The accounts service continues the assistant's traces: it starts none of its own.
  assert.equal(await total('langsmith_traces_started_total{service="accounts"}'), 0);
  assert.equal(await total('langsmith_server_runs_total{service="accounts",trace="continued"}'), keptLookups);

  // Every run is created once (a create and its update in one batch travel as one create), so
  // the creates the services counted in accepted uploads are the runs of the kept traces that the
  // trace server stored. (Runs of sampled-out requests are tests/sampling.test.ts's subject.)
  const traces = [...new Set(kept.map((r) => r.traceId))];
  assert.equal(traces.length, kept.length);
  const storedKept = (): number => traces.reduce((n, id) => n + stack.traceServer.store.getTraceRuns(id).length, 0);
  const exported = await prom.waitFor(sum('langsmith_export_runs_total{op="create"}'), (v) => v !== undefined && v > 0 && v === storedKept());
  assert.equal(exported, storedKept());
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
