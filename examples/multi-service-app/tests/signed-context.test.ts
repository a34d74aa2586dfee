// The internal hops, attacked directly with the services as real processes:
// a caller that is not the gateway is refused, and a trace context that the
// gateway did not sign (forged, or a genuine one with another tenant's
// baggage) never joins a trace. The reproduction: POST /answer on the
// orchestrator with alice's trace header and tenant=bob.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import { readTrace } from "@tracing-patterns/setup";
import { spawnService } from "../launch.js";
import { EXPECTED_SHAPE, chat, internalCaller, startTestStack, type TestStack } from "./helpers.js";

let stack: TestStack;
let alice: { traceId: string; runs: Run[] };

before(async () => {
  stack = await startTestStack("multi-service-signed-context");
  const response = await chat(stack.services.urls.gateway, { message: "How does the baggage header carry the tenant?" });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  alice = { traceId: response.traceId, runs: await readTrace(response.traceId, { client: stack.client, expectRuns: EXPECTED_SHAPE.length }) };
  assert.equal(alice.runs.length, EXPECTED_SHAPE.length);
});

after(async () => {
  await stack?.close();
});

const BOB_BAGGAGE = `langsmith-metadata=${encodeURIComponent(JSON.stringify({ tenant: "bob" }))}`;

/** The dotted order of alice's orchestrator run: what a caller would claim as the parent to write into her trace. */
function aliceParent(): string {
  const run = alice.runs.find((r) => r.name === "POST /answer");
  assert.ok(run?.dotted_order);
  return run.dotted_order;
}

async function post(url: string, headers: Record<string, string>, body: unknown = { message: "What is baggage?" }): Promise<{ status: number; traceId: string; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return { status: response.status, traceId: response.headers.get("x-trace-id") ?? "", body: (await response.json()) as Record<string, unknown> };
}

async function rootOf(traceId: string, expectRuns: number): Promise<Run> {
  const runs = await readTrace(traceId, { client: stack.client, expectRuns });
  const root = runs.find((r) => r.parent_run_id == null);
  assert.ok(root, `no root in ${traceId}`);
  return root;
}

test("the issue's reproduction: POST /answer on the orchestrator without the gateway is refused, in a new trace", async () => {
  const refused = await post(`${stack.services.urls.orchestrator}/answer`, { "langsmith-trace": aliceParent(), baggage: BOB_BAGGAGE });
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.match(String(refused.body.error), /missing x-internal-token/);
  assert.notEqual(refused.traceId, alice.traceId);
  assert.equal(refused.body.traceId, refused.traceId);
  const root = await rootOf(refused.traceId, 1);
  assert.equal(root.extra?.metadata?.["trace.inbound"], "restarted");
  assert.equal(root.extra?.metadata?.["trace.inbound_reason"], "signature-missing");
  assert.equal(root.extra?.metadata?.untrusted_parent_trace_id, alice.traceId);
  assert.equal(root.extra?.metadata?.tenant, undefined);
  assert.deepEqual(root.outputs, { status_code: 401 });
});

test("a wrong caller token is refused with 403, at every internal service", async () => {
  for (const [service, path] of [["orchestrator", "/answer"], ["retrieval", "/search"], ["llm", "/generate"]] as const) {
    const url = `${stack.services.urls[service]}${path}`;
    assert.equal((await post(url, {})).status, 401, service);
    const wrong = await post(url, { "x-internal-token": randomBytes(32).toString("base64url") });
    assert.equal(wrong.status, 403, service);
    assert.match(String(wrong.body.error), /invalid x-internal-token/);
  }
});

test("with the caller token but a forged signature, the request runs in its own trace, without the claimed tenant", async () => {
  const forged = `v1,t=${Math.floor(Date.now() / 1000)},s=${randomBytes(32).toString("base64url")}`;
  const response = await post(`${stack.services.urls.orchestrator}/answer`, {
    ...internalCaller(stack.env),
    "langsmith-trace": aliceParent(),
    baggage: BOB_BAGGAGE,
    "x-langsmith-context-signature": forged,
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  assert.notEqual(response.traceId, alice.traceId);
  // POST /answer, plan, two calls, and the two services' runs under them.
  const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: 9 });
  const root = runs.find((r) => r.parent_run_id == null);
  assert.equal(root?.name, "POST /answer");
  assert.equal(root?.extra?.metadata?.["trace.inbound_reason"], "signature-invalid");
  for (const run of runs) assert.equal(run.extra?.metadata?.tenant, undefined, run.name);
  // The orchestrator signs what it forwards, so the trace is still whole below it.
  for (const name of ["POST /search", "POST /generate"]) assert.equal(runs.find((r) => r.name === name)?.extra?.metadata?.["trace.inbound"], "continued", name);
});

test("an internal hop (retrieval, llm) continues no unsigned context", async () => {
  for (const [service, path, body] of [
    ["retrieval", "/search", { query: "baggage", k: 1 }],
    ["llm", "/generate", { message: "What is baggage?", documents: [] }],
  ] as const) {
    const response = await post(`${stack.services.urls[service]}${path}`, { ...internalCaller(stack.env), "langsmith-trace": aliceParent(), baggage: BOB_BAGGAGE }, body);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.notEqual(response.traceId, alice.traceId, service);
    const root = await rootOf(response.traceId, 2);
    assert.equal(root.extra?.metadata?.["trace.inbound_reason"], "signature-missing", service);
  }
});

test("a genuine signed context replayed with another tenant's baggage never joins; replayed unchanged it does (the window the timestamp bounds)", async () => {
  // A stand-in orchestrator records what the gateway forwards: a real signed context for alice.
  let captured: IncomingHttpHeaders = {};
  const standIn: Server = createServer((req, res) => {
    captured = req.headers;
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ answer: "ok", sources: [], model: "stand-in" })));
  });
  standIn.listen(0, "127.0.0.1");
  await once(standIn, "listening");
  const gateway = await spawnService("gateway", { env: { ...stack.env, GATEWAY_PORT: "0", ORCHESTRATOR_URL: `http://127.0.0.1:${(standIn.address() as AddressInfo).port}` } });
  try {
    const first = await chat(gateway.url, { message: "What is a tenant?" });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const trace = String(captured["langsmith-trace"]);
    const signature = String(captured["x-langsmith-context-signature"]);
    assert.match(signature, /^v1,t=\d+,s=/);
    assert.match(decodeURIComponent(String(captured.baggage)), /"tenant":"alice"/);
    const orchestrator = `${stack.services.urls.orchestrator}/answer`;

    const swapped = await post(orchestrator, { ...internalCaller(stack.env), "langsmith-trace": trace, baggage: BOB_BAGGAGE, "x-langsmith-context-signature": signature });
    assert.equal(swapped.status, 200, JSON.stringify(swapped.body));
    assert.notEqual(swapped.traceId, first.traceId);
    const root = await rootOf(swapped.traceId, 9);
    assert.equal(root.extra?.metadata?.["trace.inbound_reason"], "signature-invalid");
    assert.equal(root.extra?.metadata?.tenant, undefined);

    const replayed = await post(orchestrator, { ...internalCaller(stack.env), "langsmith-trace": trace, baggage: String(captured.baggage), "x-langsmith-context-signature": signature });
    assert.equal(replayed.status, 200);
    assert.equal(replayed.traceId, first.traceId, "a correctly signed context continues");
  } finally {
    standIn.close();
    assert.equal(await gateway.stop(), 0, gateway.output());
  }
});

test("after every service has flushed, alice's trace holds exactly its own runs", async () => {
  const codes = await stack.services.stop();
  assert.deepEqual(codes, { gateway: 0, orchestrator: 0, retrieval: 0, llm: 0 });
  const runs = await readTrace(alice.traceId, { client: stack.client, expectRuns: EXPECTED_SHAPE.length });
  assert.equal(runs.length, EXPECTED_SHAPE.length, runs.map((r) => `${r.name} ${String(r.extra?.metadata?.tenant)}`).join(", "));
  for (const run of runs.filter((r) => r.name !== "authenticate")) assert.equal(run.extra?.metadata?.tenant, "alice", run.name);
  // Neither the shared key nor the token derived from it reaches a trace (the SDK copies only LANGSMITH_* variables).
  const secrets = [String(stack.env.TRACE_CONTEXT_KEY), Object.values(internalCaller(stack.env))[0] ?? ""];
  const project = await stack.client.readProject({ projectName: stack.project });
  const everything: Run[] = [];
  for await (const run of stack.client.listRuns({ projectId: project.id })) everything.push(run);
  assert.ok(everything.length > EXPECTED_SHAPE.length);
  for (const secret of secrets) assert.ok(secret.length >= 32 && !JSON.stringify(everything).includes(secret), "a secret reached the trace store");
});
