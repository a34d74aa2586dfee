// Single hostile requests against the local model endpoint (issue 16): deep bodies, inputs that
// made its pattern matching or tool lookup super-linear, streams to clients that never read, and
// absurd fault values. Each gets a 4xx naming the problem or completes, while /health stays prompt.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { startModelServer, type ModelServerHandle } from "@tracing-patterns/setup";

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
