// The four services as real processes on loopback. One request to the gateway
// must leave one complete trace that spans all four, read back through the
// SDK; requests the gateway turns away must be traced too, with the step that
// turned them away visible as a failed child run.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Run } from "langsmith";
import { assertTrace, formatReport, readTrace } from "@tracing-patterns/setup";
import { spawnService } from "../launch.js";
import { API_KEY, EXPECTED_SHAPE, SERVICES, chat, serviceOfRun, shape, startTestStack, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  // A burst larger than this file's requests: only the dedicated gateway below is meant to run dry.
  stack = await startTestStack("multi-service-one-request", { gateway: { RATE_LIMIT_BURST: "50" } });
});

after(async () => {
  await stack?.close();
});

function byName(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  assert.ok(run, `no run named ${name} in ${runs.map((r) => r.name).join(", ")}`);
  return run;
}

test("one request is one trace across gateway, orchestrator, retrieval and llm", async () => {
  const response = await chat(stack.services.urls.gateway, { message: "How does the baggage header carry the tenant?" });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  assert.match(response.traceId, /^[0-9a-f-]{36}$/);
  assert.equal(response.body.traceId, response.traceId);
  assert.equal(typeof response.body.answer, "string");
  const sources = response.body.sources as Array<{ id: string; title: string }>;
  assert.deepEqual(sources[0], { id: "doc-baggage", title: "Baggage" });
  assert.ok(sources.length <= 3);

  const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: EXPECTED_SHAPE.length });
  const report = assertTrace(runs, { traceId: response.traceId, rootName: "POST /chat", services: SERVICES, minRuns: EXPECTED_SHAPE.length });
  assert.equal(report.completeness, 100, formatReport(report));
  assert.equal(report.propagation, 100, formatReport(report));
  // Parentage, not just presence: each service's server run hangs under the caller's client run.
  assert.deepEqual(shape(runs), EXPECTED_SHAPE);
  for (const run of runs) {
    assert.equal(run.trace_id, response.traceId, run.name);
    assert.equal(run.error ?? undefined, undefined, `${run.name}: ${run.error}`);
  }

  const root = byName(runs, "POST /chat");
  assert.equal(root.id, response.traceId);
  assert.deepEqual(root.outputs, { status_code: 200 });
  for (const name of ["POST /answer", "POST /search", "POST /generate"]) {
    assert.equal(byName(runs, name).extra?.metadata?.["trace.inbound"], "continued", name);
  }
  // The tenant is set on the gateway's run after authentication and reaches every later run, in every service, through baggage.
  for (const run of runs.filter((r) => r.name !== "authenticate")) assert.equal(run.extra?.metadata?.tenant, "alice", `${run.name} [${String(serviceOfRun(run))}]`);
  assert.deepEqual(byName(runs, "authenticate").inputs, { api_key: "(redacted)" });
  assert.ok(!JSON.stringify(runs).includes(API_KEY), "the API key must not reach the trace");

  const retriever = byName(runs, "search_corpus");
  assert.equal(retriever.run_type, "retriever");
  const documents = (retriever.outputs as { documents?: Array<{ page_content: string; metadata: { id: string } }> }).documents;
  assert.equal(documents?.[0]?.metadata.id, "doc-baggage");
  assert.equal(typeof documents?.[0]?.page_content, "string");
  const llm = byName(runs, "ChatOpenAI");
  assert.equal(llm.run_type, "llm");
  assert.match(JSON.stringify(llm.inputs), /How does the baggage header carry the tenant\?/);
});

test("a trace header from the internet does not become the gateway's parent", async () => {
  const forged = "00000000-0000-4000-8000-000000000000";
  const response = await chat(stack.services.urls.gateway, { message: "What is an orphan run?" }, {
    "x-api-key": API_KEY,
    "langsmith-trace": `20250101T000000000000Z${forged}`,
  });
  assert.equal(response.status, 200);
  assert.notEqual(response.traceId, forged);
  const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: EXPECTED_SHAPE.length });
  assertTrace(runs, { traceId: response.traceId, rootName: "POST /chat", services: SERVICES });
  const root = byName(runs, "POST /chat");
  assert.equal(root.extra?.metadata?.["trace.inbound"], "restarted");
  assert.equal(root.extra?.metadata?.untrusted_parent_trace_id, forged);
});

interface Rejection {
  label: string;
  message: unknown;
  headers: Record<string, string>;
  status: number;
  failedStep: string;
  error: RegExp;
}

const REJECTIONS: Rejection[] = [
  { label: "no API key", message: { message: "hi" }, headers: {}, status: 401, failedStep: "authenticate", error: /missing x-api-key/ },
  { label: "unknown API key", message: { message: "hi" }, headers: { "x-api-key": "guess" }, status: 401, failedStep: "authenticate", error: /unknown API key/ },
  { label: "body not JSON", message: "{not json", headers: { "x-api-key": API_KEY }, status: 400, failedStep: "validate_request", error: /not valid JSON/ },
  { label: "empty message", message: { message: "  " }, headers: { "x-api-key": API_KEY }, status: 400, failedStep: "validate_request", error: /non-empty string/ },
  { label: "message too long", message: { message: "x".repeat(2001) }, headers: { "x-api-key": API_KEY }, status: 400, failedStep: "validate_request", error: /longer than 2000/ },
];

test("requests the gateway rejects are traced, ending at the step that rejected them", async (t) => {
  for (const c of REJECTIONS) {
    await t.test(c.label, async () => {
      const response = await chat(stack.services.urls.gateway, c.message, c.headers);
      assert.equal(response.status, c.status, JSON.stringify(response.body));
      assert.equal(response.body.traceId, response.traceId);
      const steps = ["authenticate", "rate_limit", "validate_request"];
      const expected = steps.slice(0, steps.indexOf(c.failedStep) + 1);
      const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: expected.length + 1 });
      assertTrace(runs, { traceId: response.traceId, rootName: "POST /chat", services: ["gateway"] });
      assert.deepEqual(shape(runs), ["(root) > POST /chat [gateway]", ...expected.map((s) => `POST /chat > ${s} [gateway]`)].sort());
      assert.match(String(byName(runs, c.failedStep).error), c.error);
      const root = byName(runs, "POST /chat");
      // A 4xx is the gateway doing its job, not a failure of the request's run.
      assert.equal(root.error ?? undefined, undefined);
      assert.deepEqual(root.outputs, { status_code: c.status });
    });
  }
});

test("a key whose token bucket is empty gets a traced 429 with retry-after", async () => {
  // A second gateway in front of the same orchestrator, allowing one request and no refill.
  const gateway = await spawnService("gateway", {
    env: { ...stack.env, GATEWAY_PORT: "0", ORCHESTRATOR_URL: stack.services.urls.orchestrator, RATE_LIMIT_BURST: "1", RATE_LIMIT_PER_SECOND: "0" },
  });
  try {
    const first = await chat(gateway.url, { message: "What does a token bucket do?" });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.headers.get("x-ratelimit-remaining"), "0");
    const limited = await chat(gateway.url, { message: "And again?" });
    assert.equal(limited.status, 429);
    assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);

    const runs = await readTrace(limited.traceId, { client: stack.client, expectRuns: 3 });
    assertTrace(runs, { traceId: limited.traceId, rootName: "POST /chat", services: ["gateway"] });
    assert.deepEqual(shape(runs), ["(root) > POST /chat [gateway]", "POST /chat > authenticate [gateway]", "POST /chat > rate_limit [gateway]"].sort());
    assert.match(String(byName(runs, "rate_limit").error), /rate limit exceeded for tenant alice/);
    assert.deepEqual(byName(runs, "POST /chat").outputs, { status_code: 429 });
  } finally {
    assert.equal(await gateway.stop(), 0, gateway.output());
  }
});
