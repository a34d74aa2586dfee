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
  stack = await startTestStack("production-monitoring-prometheus");
  prom = await startPrometheus({ targets: { services: [stack.services.urls.assistant, stack.services.urls.accounts] } });
});

after(async () => {
  await prom?.stop();
  const codes = await stack?.close();
  assert.deepEqual(codes, { assistant: 0, accounts: 0 });
});

const sum = (promql: string): string => `sum(${promql})`;

test("Prometheus scrapes both services, and PromQL returns the requests, failures, traces and exported runs", { timeout: 120_000 }, async () => {
  const url = stack.services.urls.assistant;
  const results = await Promise.all([
    ...["cust-1", "cust-2", "cust-3", "cust-4"].map((id) => chat(url, `What plan is account ${id} on?`)),
    ...["cust-5", "cust-6"].map((id) => chat(url, `Which email does account ${id} use?`, { stream: true })),
    ...[1, 2].map(() => chat(url, "What plan is account cust-9 on?", { fault: "fail" })),
  ]);
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200, 502, 502]);

  await prom.waitFor('sum(up{job="services"})', (v) => v === 2);
  assert.equal(await prom.waitFor(sum('http_requests_total{service="assistant",route="/chat"}'), (v) => v === 8), 8);
  assert.equal((await prom.query(sum('http_requests_total{service="assistant",route="/chat",status="502"}')))[0]?.value, 2);
  // Six answers looked an account up; the two failures stopped at the model, before the tool.
  assert.equal(await prom.waitFor(sum('http_requests_total{service="accounts",route="/accounts/:id",status="200"}'), (v) => v === 6), 6);
  assert.equal((await prom.query(sum('langsmith_traces_started_total{service="assistant"}')))[0]?.value, 8);
  // The accounts service continues the assistant's traces: it starts none of its own.
  assert.equal((await prom.query(sum('langsmith_traces_started_total{service="accounts"}')))[0]?.value, 0);
  assert.equal((await prom.query(sum('langsmith_server_runs_total{service="accounts",trace="continued"}')))[0]?.value, 6);

  // Every run is created once (a create and its update in one batch travel as one create), so
  // the creates the services counted in accepted uploads are the runs the trace server stored.
  const stored = (): number => stack.traceServer.store.counts().runs;
  const exported = await prom.waitFor(sum("langsmith_export_runs_total{op=\"create\"}"), (v) => v !== undefined && v > 0 && v === stored());
  const traces = new Set(results.map((r) => r.traceId));
  assert.equal(traces.size, 8);
  const perTrace = [...traces].map((id) => stack.traceServer.store.getTraceRuns(id).length);
  assert.equal(exported, perTrace.reduce((a, b) => a + b, 0), `runs per trace: ${perTrace.join(", ")}`);
  assert.equal((await prom.query(`${sum('langsmith_export_requests_total{outcome!="ok"}')} or vector(0)`))[0]?.value, 0);
  assert.ok(((await prom.query(sum("langsmith_export_bytes_total")))[0]?.value ?? 0) > 0);

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
