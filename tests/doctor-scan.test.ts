// The trace doctor's project scan on a seeded project: runs posted through the SDK's Client with
// explicit times and services, so every figure can be counted by hand from the layout below.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { formatProjectHealth, scanProject, serviceMetadata, startTraceServer, type ProjectHealth, type TraceServerHandle } from "@tracing-patterns/setup";

const PROJECT = "seeded";
let server: TraceServerHandle;
let client: Client;
let health: ProjectHealth;
const ids: Record<string, string> = {};
const BASE = Date.now() - 10 * 60_000;

interface Step {
  name: string;
  service: "gateway" | "worker";
  /** Offsets from the trace's start, in ms; no end: never ended. */
  start: number;
  end?: number;
  children?: Step[];
  /** Not sent at all, as if its process died; its children are still sent. */
  lost?: boolean;
  metadata?: Record<string, string>;
}

/** Posts a tree of runs starting at `at`; returns the root run. */
async function seed(project: string, at: number, step: Step, parent?: RunTree): Promise<RunTree> {
  const config = {
    name: step.name,
    start_time: at + step.start,
    extra: { metadata: { ...serviceMetadata(step.service), ...step.metadata } },
  };
  const run = parent ? parent.createChild(config) : new RunTree({ ...config, client, project_name: project });
  if (!step.lost) await run.postRun();
  for (const child of step.children ?? []) await seed(project, at, child, run);
  if (step.end !== undefined && !step.lost) {
    await run.end({ ok: true }, undefined, at + step.end);
    await run.patchRun();
  }
  return run;
}

const healthy = (): Step => ({
  name: "handle", service: "gateway", start: 0, end: 100,
  children: [{ name: "call_worker", service: "gateway", start: 10, end: 90, children: [{ name: "worker_handle", service: "worker", start: 20, end: 80 }] }],
});

before(async () => {
  server = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: server.url, apiKey: "local" });
  for (let i = 0; i < 3; i++) ids[`healthy${i}`] = (await seed(PROJECT, BASE + i * 1000, healthy())).trace_id;
  // The worker's parent (the gateway's call_worker) never arrives.
  ids.orphan = (await seed(PROJECT, BASE + 3000, {
    name: "handle", service: "gateway", start: 0, end: 100,
    children: [{ name: "call_worker", service: "gateway", start: 10, end: 90, lost: true,
      children: [{ name: "worker_handle", service: "worker", start: 20, end: 80, children: [{ name: "llm", service: "worker", start: 30, end: 70 }] }] }],
  })).trace_id;
  // call_worker starts but never ends; its child does.
  ids.unended = (await seed(PROJECT, BASE + 4000, {
    name: "handle", service: "gateway", start: 0, end: 100,
    children: [{ name: "call_worker", service: "gateway", start: 10, children: [{ name: "worker_handle", service: "worker", start: 20, end: 80 }] }],
  })).trace_id;
  // The worker restarts the request as a new trace and records the caller's ids, as the middleware does at an edge.
  const upstream = await seed(PROJECT, BASE + 5000, { name: "handle", service: "gateway", start: 0, end: 100, children: [{ name: "call_worker", service: "gateway", start: 10, end: 90 }] });
  ids.split = upstream.trace_id;
  const caller = (await readChild(upstream.trace_id, "call_worker")) as string;
  ids.fragment = (await seed(PROJECT, BASE + 5000, {
    name: "POST /work", service: "worker", start: 20, end: 80,
    metadata: { "trace.inbound": "restarted", "trace.inbound_reason": "untrusted-caller", untrusted_parent_trace_id: upstream.trace_id, untrusted_parent_run_id: caller },
    children: [{ name: "do_work", service: "worker", start: 30, end: 70 }],
  })).trace_id;
  // Outside the scan: too old, and another project.
  await seed(PROJECT, Date.now() - 2 * 3_600_000, healthy());
  await seed("seeded-other", BASE, healthy());
  await client.awaitPendingTraceBatches();
  health = await scanProject({ project: PROJECT, sinceMs: 3_600_000, apiUrl: server.url, apiKey: "local", client });
});

after(async () => {
  await server?.close();
});

async function readChild(traceId: string, name: string): Promise<string | undefined> {
  await client.awaitPendingTraceBatches();
  const project = await client.readProject({ projectName: PROJECT });
  for await (const run of client.runs.query({ project_ids: [project.id], trace_id: traceId, selects: ["ID", "NAME"] })) if (run.name === name) return run.id;
  return undefined;
}

test("the scan reads the project's seven recent traces and joins the split-off one to its request", () => {
  assert.equal(health.traces, 7);
  assert.equal(health.requests, 6);
  const split = health.diagnoses.find((d) => d.traceId === ids.fragment);
  assert.ok(split?.findings.some((f) => f.kind === "split" && f.relatedTraces.includes(ids.split as string)));
});

test("overall completeness and propagation match a hand count", () => {
  // Runs: 3 healthy x 3, orphan 3, unended 3, split request 2 + 2 = 19. Connected to their
  // request's root and ended: 9 + 1 (the orphan trace's root) + 2 (call_worker is open) + 2 (the
  // fragment's runs are not under the request's root) = 14.
  assert.equal(health.runs, 19);
  assert.equal(health.completeRuns, 14);
  assert.equal(health.completeness, 73.7);
  // Services per request: 2 each (gateway, worker) = 12; the worker is disconnected in the orphan
  // and the split request = 10.
  assert.equal(health.serviceAppearances, 12);
  assert.equal(health.connectedAppearances, 10);
  assert.equal(health.propagation, 83.3);
  assert.equal(health.completeRequests, 3);
  assert.equal(health.fullyPropagatedRequests, 4);
  assert.equal(health.healthy, false);
});

test("per-service figures match a hand count", () => {
  // gateway: 6 + 1 + 2 + 2 = 11 runs, all complete but the open call_worker; in all 6 requests, connected in all.
  // worker: 3 + 2 + 1 + 2 = 8 runs, complete 3 + 0 + 1 + 0 = 4; in 6 requests, connected in 4.
  assert.deepEqual(
    health.services.map((s) => [s.service, s.runs, s.completeRuns, s.completeness, s.requests, s.connectedRequests, s.propagation]),
    [
      ["gateway", 11, 10, 90.9, 6, 6, 100],
      ["worker", 8, 4, 50, 6, 4, 66.7],
    ],
  );
});

test("problems by kind, and the worst requests first", () => {
  assert.deepEqual(health.findingsByKind, { orphan: 1, unended: 1, split: 2 });
  // Completeness 1/3 (orphan), 2/4 (split), 2/3 (unended); the healthy ones are not listed.
  assert.deepEqual(health.worst.map((r) => r.traceId), [ids.orphan, ids.split, ids.unended]);
  assert.deepEqual(health.worst[1]?.fragments, [ids.fragment]);
  const text = formatProjectHealth(health);
  assert.match(text, /^project "seeded" since .*: 7 traces, 6 requests \(1 split off another trace\)$/m);
  assert.match(text, /^ {2}completeness {2}73\.7% {2}\(14 of 19 runs/m);
  assert.match(text, /^ {2}worker +8 +50% +6 +66\.7%$/m);
});
