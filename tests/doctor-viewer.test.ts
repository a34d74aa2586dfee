// The trace doctor's section on the trace viewer's page: the same findings `npm run doctor`
// prints, from the store, escaped, and in the live state the page polls.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { serviceMetadata, startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";

let server: TraceServerHandle;
let client: Client;

before(async () => {
  server = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: server.url, apiKey: "local" });
});

after(async () => {
  await server?.close();
});

/** A gateway run calling a worker; `lose` keeps the gateway's call run from being sent. */
async function trace(workerName: string, lose: boolean, metadata: Record<string, string> = {}): Promise<{ traceId: string; callId: string }> {
  const root = new RunTree({ name: "handle", client, project_name: "doctor-viewer", extra: { metadata: { ...serviceMetadata("gateway"), ...metadata } } });
  await root.postRun();
  const call = root.createChild({ name: "call_worker" });
  if (!lose) await call.postRun();
  const work = call.createChild({ name: workerName, extra: { metadata: serviceMetadata("worker") } });
  await work.postRun();
  for (const run of [work, call, root]) {
    await run.end({ ok: true });
    if (run !== call || !lose) await run.patchRun();
  }
  await client.awaitPendingTraceBatches();
  return { traceId: root.trace_id, callId: call.id };
}

async function page(path: string): Promise<string> {
  const response = await fetch(`${server.url}${path}`);
  assert.equal(response.status, 200, path);
  return response.text();
}

function doctorSection(html: string): string {
  const m = /<section id="trace-doctor" aria-label="Trace doctor">([\s\S]*?)<\/section>/.exec(html);
  assert.ok(m, "the page has the doctor section");
  return m[1] as string;
}

test("a healthy trace's page says the doctor found no problems", async () => {
  const { traceId } = await trace("worker_handle", false);
  const section = doctorSection(await page(`/traces/${traceId}`));
  assert.match(section, /<h2>Trace doctor<\/h2><p class="explain">No problems found\.<\/p>/);
  assert.doesNotMatch(section, /<ol class="doctor">/);
  assert.match(section, new RegExp(`npm run doctor -- ${traceId}`));
});

test("a broken trace's page lists the problem with its runs, cause and fix, escaped", async () => {
  const hostile = `<img src=x onerror="alert(1)">`;
  const { traceId } = await trace(hostile, true);
  const section = doctorSection(await page(`/traces/${traceId}`));
  assert.match(section, /<h2 class="danger">Trace doctor: 1 problem<\/h2>/);
  assert.match(section, /<b class="danger">orphan<\/b>: 1 run of worker is orphaned: the parent of &#34;&#60;img src=x onerror=&#34;alert\(1\)&#34;&#62;&#34; \[worker\]/);
  assert.match(section, /<p class="explain">Cause: The parent never reached this backend\./);
  assert.match(section, /<p class="explain">Fix: Flush before a process stops/);
  assert.ok(!/<img\b/i.test(section), "no injected element");
});

test("a split trace's page links the trace it split from; the live state carries the same section", async () => {
  const upstream = await trace("worker_handle", false);
  // A service that restarted the request at its edge, recording the caller's ids as the middleware does.
  const fragment = await trace("do_work", false, {
    "trace.inbound": "restarted",
    "trace.inbound_reason": "untrusted-caller",
    untrusted_parent_trace_id: upstream.traceId,
    untrusted_parent_run_id: upstream.callId,
  });
  const section = doctorSection(await page(`/traces/${fragment.traceId}`));
  assert.match(section, /<b class="danger">split<\/b>: split trace: &#34;handle&#34; \[gateway\] started this trace as a new root instead of continuing trace/);
  assert.ok(section.includes(`<a href="/traces/${upstream.traceId}"><code>${upstream.traceId}</code></a>`), section);
  assert.ok(section.includes(`/traces/${upstream.traceId}?run=${upstream.callId}`), "the caller's run links to its own trace");
  const state = (await (await fetch(`${server.url}/traces/${fragment.traceId}/state`)).json()) as { regions: { doctor: string } };
  assert.equal(state.regions.doctor, section);
});
