// Single hostile requests against the local model endpoint (issue 16): deep bodies, inputs that
// made its pattern matching or tool lookup super-linear, streams to clients that never read, and
// absurd fault values. Each gets a 4xx naming the problem or completes, while /health stays prompt.
import assert from "node:assert/strict";
import http from "node:http";
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
