// Single hostile requests against the local model endpoint (issue 16): deep bodies, inputs that
// made its pattern matching or tool lookup super-linear, streams to clients that never read, and
// absurd fault values. Each gets a 4xx naming the problem or completes, while /health stays prompt.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, test } from "node:test";
import { startModelServer, type ModelServerHandle } from "@tracing-patterns/setup";
import { probeWhile, PROMPT_MS } from "./fixtures/probe.js";

let server: ModelServerHandle;
before(async () => {
  server = await startModelServer({ port: 0 });
});
after(() => server.close());

interface Answer {
  status: number;
  body: string;
}

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path, headers: { "content-type": "application/json", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(typeof body === "string" ? body : JSON.stringify(body));
  });
}

function errorOf(answer: Answer): { message: string; param: string | null; code: string | null } {
  return (JSON.parse(answer.body) as { error: { message: string; param: string | null; code: string | null } }).error;
}

const health = (): string => `http://127.0.0.1:${server.port}/health`;

test("item 6: a tool schema nested 20,000 levels gets 400 naming the limit, and /_local/stats still answers", async () => {
  // Written as text: JSON.stringify itself cannot nest that deep.
  const deep = `${'{"a":'.repeat(20_000)}"leaf"${"}".repeat(20_000)}`;
  const parameters = `{"type":"object","properties":{"x":{"const":${deep}}},"required":["x"]}`;
  const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Fill this in"}],"tools":[{"type":"function","function":{"name":"fill","parameters":${parameters}}}],"tool_choice":"required"}`;
  const answer = await post("/v1/chat/completions", body);
  assert.equal(answer.status, 400, answer.body.slice(0, 300));
  assert.equal(errorOf(answer).code, "nesting_too_deep");
  assert.match(errorOf(answer).message, /deeper than 256 levels/);
  const stats = await fetch(`http://127.0.0.1:${server.port}/_local/stats`);
  assert.equal(stats.status, 200);
  assert.equal((await fetch(health())).status, 200);
});

test("item 11: a retry-after no client could wait for (1e308 s) is refused on every way to inject a fault", async () => {
  for (const retryAfterSeconds of [1e308, 2_147_484, -1]) {
    const answer = await post("/_local/faults", { status: 429, retryAfterSeconds });
    assert.equal(answer.status, 400, String(retryAfterSeconds));
    assert.match(errorOf(answer).message, /retryAfterSeconds at most 2147483/);
    assert.throws(() => server.inject({ status: 429, retryAfterSeconds }), RangeError);
  }
  const directive = await post("/v1/chat/completions", { model: "gpt-4o-mini+fail-429+retry-after-99999999999999999999", messages: [{ role: "user", content: "hi" }] });
  assert.equal(directive.status, 400);
  assert.match(errorOf(directive).message, /'retry-after-99999999999999999999' asks for a retry-after over 2147483 s/);
  assert.equal(server.stats().pendingFaults, 0);
  // The longest one is still accepted, and sent as a whole number of seconds.
  assert.equal((await post("/_local/faults", { status: 429, retryAfterSeconds: 2_147_483 })).status, 200);
  const limited = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }) });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "2147483");
});

test("item 8: messages built to make pattern matching backtrack are answered while /health stays prompt, on both completion routes", async () => {
  const long = 200_000;
  const contents = [
    `choose one of: a${" ".repeat(long)}b`,
    `choose one of: a${"\n".repeat(long)}b`,
    `classify:\n${" \n".repeat(long / 2)}- a: first\n- b${" ".repeat(long)}x`,
    `summarize ${"summarize ".repeat(long / 10)}`,
    `summarize:${"\n".repeat(long)}The end.`,
    `pick one of: ${"*".repeat(long)}a, b`,
    `Fill ${"a".repeat(long)} 42`,
  ];
  for (const content of contents) {
    for (const [path, body] of [
      ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "system", content }, { role: "user", content }] }],
      ["/v1/responses", { model: "gpt-4o-mini", instructions: content, input: content }],
    ] as const) {
      const { result, worstProbeMs } = await probeWhile(health(), post(path, body));
      assert.equal(result.status, 200, `${path} ${JSON.stringify(content.slice(0, 30))}: ${result.body.slice(0, 200)}`);
      assert.ok(worstProbeMs < PROMPT_MS, `${path} ${JSON.stringify(content.slice(0, 30))}: a probe waited ${worstProbeMs.toFixed(0)} ms`);
    }
  }
});

test("item 8: at most 128 tools, as OpenAI allows; naming all 128 in one long message is answered promptly", async () => {
  const tools = (n: number) => Array.from({ length: n }, (_, i) => ({ type: "function", function: { name: `lookup_record_${i}`, description: `Looks up record ${i} in the archive`, parameters: { type: "object", properties: { record_id: { type: "string" }, count: { type: "integer" } }, required: ["record_id", "count"] } } }));
  const tooMany = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], tools: tools(129) });
  assert.equal(tooMany.status, 400);
  assert.equal(errorOf(tooMany).code, "array_above_max_length");
  assert.match(errorOf(tooMany).message, /maximum length 128, but got an array with length 129/);
  const responses = await post("/v1/responses", { model: "gpt-4o-mini", input: "hi", tools: tools(129).map((t) => ({ type: "function", ...t.function })) });
  assert.equal(responses.status, 400);

  const all = tools(128);
  const content = `${all.map((t) => t.function.name).join(" ")} ${"record 7 ".repeat(20_000)}`;
  const { result, worstProbeMs } = await probeWhile(health(), post("/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content }], tools: all, n: 16 }));
  assert.equal(result.status, 200, result.body.slice(0, 200));
  assert.ok(worstProbeMs < PROMPT_MS, `a probe waited ${worstProbeMs.toFixed(0)} ms`);
  const reply = JSON.parse(result.body) as { choices: Array<{ message: { tool_calls: Array<{ id: string; function: { name: string } }> } }> };
  assert.equal(reply.choices.length, 16);
  assert.equal(reply.choices[0]?.message.tool_calls.length, 128);
  // Tool-call ids stay a function of the request: the same in every choice.
  assert.deepEqual(reply.choices[15]?.message.tool_calls.map((c) => c.id), reply.choices[0]?.message.tool_calls.map((c) => c.id));
});

/** A client that sends a streamed completion request and never reads the answer. */
function stalledClient(body: string): net.Socket {
  const socket = net.connect(server.port, "127.0.0.1");
  socket.setNoDelay(true);
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.pause();
  return socket;
}

async function until(condition: () => boolean, what: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const heldBytes = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

test("item 9: streams to 20 clients that never read wait for them, holding little memory, and end when they disconnect", async () => {
  // Each reply: ten copies of a 98 KB message as tool-call arguments, about 19 MB of SSE events.
  const message = "word ".repeat(19_600);
  const schema = { type: "object", properties: { copies: { type: "array", minItems: 10, items: { type: "string" } } }, required: ["copies"] };
  const body = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: message }], tools: [{ type: "function", function: { name: "copy", parameters: schema } }], tool_choice: "required" });
  const before = heldBytes();
  const clients = Array.from({ length: 20 }, () => stalledClient(body));
  try {
    await until(() => server.stats().streamsWaiting === 20, "every stream to wait for its client");
    const grown = heldBytes() - before;
    assert.ok(grown < 150 * 1024 * 1024, `20 unread streams hold ${(grown / 1024 / 1024).toFixed(0)} MB`);
    const started = performance.now();
    assert.equal((await fetch(health())).status, 200);
    assert.ok(performance.now() - started < PROMPT_MS);
  } finally {
    for (const client of clients) client.destroy();
  }
  await until(() => server.stats().streamsWaiting === 0, "the streams to end with their clients");
});

test("item 9: a reply over 1,000,000 characters over all its choices gets 400 before anything is generated", async () => {
  const longWord = "x".repeat(600_000);
  const messages = [
    { role: "user", content: "Look it up, answer in JSON" },
    { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: "{}" } }] },
    { role: "tool", tool_call_id: "call_1", content: longWord },
  ];
  const once = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages });
  assert.equal(once.status, 200);
  const twice = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages, n: 2, response_format: { type: "json_object" }, stream: true });
  assert.equal(twice.status, 400, twice.body.slice(0, 200));
  assert.equal(errorOf(twice).code, "reply_too_large");
  assert.match(errorOf(twice).message, /over the limit of 1000000 per request/);
});
