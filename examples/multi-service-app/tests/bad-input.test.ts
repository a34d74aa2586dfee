// Bad input at every hop, with the services as real processes: a body too
// large for the gateway, documents the llm service cannot use, and a
// retrieval service that answers with malformed data. Each must give the
// caller a clear JSON error (never a crash, an HTML page or a dropped
// connection), and the trace must say what went wrong and where.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Run } from "langsmith";
import { assertTrace, readTrace } from "@tracing-patterns/setup";
import { spawnService, type ServiceProcess } from "../launch.js";
import { API_KEY, chat, internalCaller, shape, startTestStack, type TestStack } from "./helpers.js";

let stack: TestStack;

before(async () => {
  stack = await startTestStack("multi-service-bad-input");
});

after(async () => {
  await stack?.close();
});

function byName(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  assert.ok(run, `no run named ${name} in ${runs.map((r) => r.name).join(", ")}`);
  return run;
}

interface JsonAnswer {
  status: number;
  contentType: string;
  traceId: string;
  body: Record<string, unknown>;
}

async function postTo(url: string, init: RequestInit & { duplex?: "half" }): Promise<JsonAnswer> {
  const response = await fetch(url, { method: "POST", ...init });
  const contentType = response.headers.get("content-type") ?? "";
  const text = await response.text();
  assert.match(contentType, /^application\/json/, `${response.status} ${contentType}: ${text.slice(0, 300)}`);
  return { status: response.status, contentType, traceId: response.headers.get("x-trace-id") ?? "", body: JSON.parse(text) as Record<string, unknown> };
}

describe("gateway: a request body over the limit", () => {
  const LIMIT = 16 * 1024;

  /** The gateway's answer must be a JSON 413 whose trace is the gateway's run alone, ending with the reason. */
  async function assertTooLarge(answer: JsonAnswer): Promise<void> {
    assert.equal(answer.status, 413, JSON.stringify(answer.body));
    assert.equal(answer.body.error, `request body larger than ${LIMIT} bytes`);
    assert.match(answer.traceId, /^[0-9a-f-]{36}$/);
    assert.equal(answer.body.traceId, answer.traceId);
    const runs = await readTrace(answer.traceId, { client: stack.client, expectRuns: 1 });
    assertTrace(runs, { traceId: answer.traceId, rootName: "POST /chat", services: ["gateway"] });
    // Refused before any gateway step ran, so the request's own run carries the reason.
    assert.deepEqual(shape(runs), ["(root) > POST /chat [gateway]"]);
    const root = byName(runs, "POST /chat");
    assert.match(String(root.error), new RegExp(`^EdgeRejection: request body larger than ${LIMIT} bytes`));
    assert.deepEqual(root.outputs, { status_code: 413 });
  }

  const headers = { "content-type": "application/json", "x-api-key": API_KEY };

  test("one byte over the limit, with content-length", async () => {
    const body = JSON.stringify({ message: "x".repeat(LIMIT) });
    assert.ok(Buffer.byteLength(body) > LIMIT);
    await assertTooLarge(await postTo(`${stack.services.urls.gateway}/chat`, { headers, body }));
  });

  test("8 MiB, with content-length: answered, not a dropped connection", async () => {
    await assertTooLarge(await postTo(`${stack.services.urls.gateway}/chat`, { headers, body: "x".repeat(8 * 1024 * 1024) }));
  });

  test("1 MiB streamed without content-length (chunked)", async () => {
    const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 16) controller.enqueue(chunk);
        else controller.close();
      },
    });
    await assertTooLarge(await postTo(`${stack.services.urls.gateway}/chat`, { headers, body, duplex: "half" }));
  });

  test("the gateway keeps serving afterwards", async () => {
    const response = await chat(stack.services.urls.gateway, { message: "Is the gateway still up after refusing large bodies?" });
    assert.equal(response.status, 200, JSON.stringify(response.body));
  });
});

const DOCUMENT = { type: "Document", page_content: "The baggage header carries metadata.", metadata: { id: "doc-baggage", title: "Baggage", score: 3 } };

describe("llm service: documents it cannot use", () => {
  const CASES: Array<{ label: string; documents: unknown; error: RegExp }> = [
    { label: "a document without a title", documents: [DOCUMENT, { ...DOCUMENT, metadata: { id: "doc-2" } }], error: /documents\[1\]\.metadata\.title: Invalid input: expected string, received undefined/ },
    { label: "a document without metadata", documents: [{ page_content: "text" }], error: /documents\[0\]\.metadata: Invalid input: expected object, received undefined/ },
    { label: "page_content that is not a string", documents: [{ ...DOCUMENT, page_content: 42 }], error: /documents\[0\]\.page_content: Invalid input: expected string, received number/ },
    { label: "documents that are not an array", documents: { 0: DOCUMENT }, error: /documents: Invalid input: expected array, received object/ },
    { label: "a document that is null", documents: [null], error: /documents\[0\]: Invalid input: expected object, received null/ },
  ];

  for (const c of CASES) {
    test(`${c.label}: 400 naming the field, the request's run ends with that error, the model is not called`, async () => {
      const answer = await postTo(`${stack.services.urls.llm}/generate`, {
        headers: { "content-type": "application/json", ...internalCaller(stack.env) },
        body: JSON.stringify({ message: "What does baggage carry?", documents: c.documents }),
      });
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.match(String(answer.body.error), /^invalid request body: /);
      assert.match(String(answer.body.error), c.error);
      const runs = await readTrace(answer.traceId, { client: stack.client, expectRuns: 1 });
      assert.deepEqual(shape(runs), ["(root) > POST /generate [llm]"]);
      const run = byName(runs, "POST /generate");
      assert.match(String(run.error), /^InvalidRequest: invalid request body: /);
      assert.match(String(run.error), c.error);
      assert.deepEqual(run.outputs, { status_code: 400 });
    });
  }

  test("fields the service does not use are accepted and kept", async () => {
    const documents = [{ ...DOCUMENT, metadata: { ...DOCUMENT.metadata, source: "wiki", lang: "en" }, extra: true }];
    const answer = await postTo(`${stack.services.urls.llm}/generate`, {
      headers: { "content-type": "application/json", ...internalCaller(stack.env) },
      body: JSON.stringify({ message: "What does baggage carry?", documents }),
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const runs = await readTrace(answer.traceId, { client: stack.client, expectRuns: 3 });
    assert.deepEqual((byName(runs, "generate_answer").inputs as { documents: unknown }).documents, documents);
  });

  test("a model that refuses the call: 502 saying so, and the request's run ends with it", async () => {
    // The local model endpoint answers 400 to every call for this model name; ChatOpenAI does not retry a 400.
    const llm = await spawnService("llm", { env: { ...stack.env, LLM_PORT: "0", OPENAI_MODEL: "gpt-4o-mini+fail-400" } });
    try {
      const answer = await postTo(`${llm.url}/generate`, {
        headers: { "content-type": "application/json", ...internalCaller(stack.env) },
        body: JSON.stringify({ message: "What does baggage carry?", documents: [DOCUMENT] }),
      });
      assert.equal(answer.status, 502, JSON.stringify(answer.body));
      assert.match(String(answer.body.error), /^model call failed: 400/);
      const runs = await readTrace(answer.traceId, { client: stack.client, expectRuns: 3 });
      assert.match(String(byName(runs, "POST /generate").error), /^DownstreamError: model call failed: 400/);
      assert.ok(byName(runs, "ChatOpenAI").error, "the model run carries the failure too");
    } finally {
      assert.equal(await llm.stop(), 0, llm.output());
    }
  });
});

describe("retrieval answering with malformed data", () => {
  // A stand-in for a broken retrieval deployment: it answers `replyStatus` with whatever `reply` holds.
  let reply = "";
  let replyStatus = 200;
  let retrieval: Server;
  let orchestrator: ServiceProcess;
  let gateway: ServiceProcess;

  before(async () => {
    retrieval = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(replyStatus, { "content-type": "application/json" }).end(reply));
    });
    retrieval.listen(0, "127.0.0.1");
    await once(retrieval, "listening");
    const retrievalUrl = `http://127.0.0.1:${(retrieval.address() as AddressInfo).port}`;
    orchestrator = await spawnService("orchestrator", { env: { ...stack.env, ORCHESTRATOR_PORT: "0", RETRIEVAL_URL: retrievalUrl, LLM_URL: stack.services.urls.llm } });
    gateway = await spawnService("gateway", { env: { ...stack.env, GATEWAY_PORT: "0", ORCHESTRATOR_URL: orchestrator.url } });
  });

  after(async () => {
    const codes = { gateway: await gateway?.stop(), orchestrator: await orchestrator?.stop() };
    retrieval?.closeAllConnections();
    retrieval?.close();
    assert.deepEqual(codes, { gateway: 0, orchestrator: 0 }, `${gateway?.output()}\n${orchestrator?.output()}`);
  });

  const CASES: Array<{ label: string; reply: string; reason: RegExp }> = [
    {
      label: "a document without a title",
      reply: JSON.stringify({ documents: [{ page_content: "text", metadata: { id: "doc-1" } }] }),
      reason: /retrieval answered 200 with malformed data: documents\[0\]\.metadata\.title: Invalid input: expected string, received undefined/,
    },
    {
      label: "documents that are not a list",
      reply: JSON.stringify({ documents: "none found" }),
      reason: /retrieval answered 200 with malformed data: documents: Invalid input: expected array, received string/,
    },
    { label: "a body that is not JSON", reply: "<html>upstream error</html>", reason: /retrieval answered 200 with a body that is not JSON: <html>upstream error<\/html>/ },
  ];

  for (const c of CASES) {
    test(`${c.label}: the client gets a clear 502, the trace names retrieval's bad answer, the llm is not called`, async () => {
      reply = c.reply;
      replyStatus = 200;
      const response = await chat(gateway.url, { message: "How does the baggage header carry the tenant?" });
      assert.equal(response.status, 502, JSON.stringify(response.body));
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      // The public edge says what happened without relaying internal services' messages.
      assert.deepEqual(response.body, { error: "the answer could not be produced because an internal service failed; quote traceId when reporting it", traceId: response.traceId });

      const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: 8 });
      assertTrace(runs, { traceId: response.traceId, rootName: "POST /chat", services: ["gateway", "orchestrator"] });
      // The stand-in retrieval is not traced; nothing reaches the llm.
      assert.deepEqual(shape(runs), [
        "(root) > POST /chat [gateway]",
        "POST /chat > authenticate [gateway]",
        "POST /chat > rate_limit [gateway]",
        "POST /chat > validate_request [gateway]",
        "POST /chat > call_orchestrator [gateway]",
        "call_orchestrator > POST /answer [orchestrator]",
        "POST /answer > plan [orchestrator]",
        "POST /answer > call_retrieval [orchestrator]",
      ].sort());
      assert.match(String(byName(runs, "call_retrieval").error), new RegExp(`^DownstreamError: ${c.reason.source}`));
      assert.match(String(byName(runs, "POST /answer").error), new RegExp(`^DownstreamError: ${c.reason.source}`));
      // Each hop adds who answered what, so the gateway's runs hold the whole chain.
      for (const name of ["call_orchestrator", "POST /chat"]) {
        assert.match(String(byName(runs, name).error), new RegExp(`^DownstreamError: orchestrator answered 502: ${c.reason.source}`), name);
      }
      assert.deepEqual(byName(runs, "POST /answer").outputs, { status_code: 502 });
      assert.deepEqual(byName(runs, "POST /chat").outputs, { status_code: 502 });
    });
  }

  test("retrieval refusing the orchestrator's request (4xx) is the orchestrator's failure: 502, not the 4xx relayed as the client's fault", async () => {
    reply = JSON.stringify({ error: "unknown field top_k" });
    replyStatus = 422;
    const response = await chat(gateway.url, { message: "How does the baggage header carry the tenant?" });
    assert.equal(response.status, 502, JSON.stringify(response.body));
    const runs = await readTrace(response.traceId, { client: stack.client, expectRuns: 8 });
    assert.match(String(byName(runs, "call_retrieval").error), /^DownstreamError: retrieval answered 422/);
    assert.deepEqual(byName(runs, "POST /answer").outputs, { status_code: 502 });
  });
});
