// The chat service answers every failure as JSON with a status that says
// whose fault it was, and the request's run records why: a malformed or
// oversized body is the caller's (4xx, with the parser's reason), a model
// that keeps refusing is the service's (500, not the model's 429: no
// internals, the trace id).
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import { Client, RunTree } from "langsmith";
import { readTrace } from "@tracing-patterns/setup";
import { BackgroundTasks } from "@tracing-patterns/kit";
import { createChatApp } from "../server.js";
import { isolateEnv, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;
let url: string;
let close: () => Promise<void>;

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("chat", "async-streaming-errors"));
  // Every model call is refused with a 429 (an upstream status the caller must not see as its own); no retries, so the failure reaches the handler at once.
  const model = new ChatOpenAI({ model: "gpt-4o-mini+fail-429x1000", apiKey: "local", maxRetries: 0, configuration: { baseURL: stack.model.url } });
  const server = createChatApp({ model, background: new BackgroundTasks() }).listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  };
});

after(async () => {
  await close?.();
  await stack?.close();
});

async function post(body: string): Promise<{ status: number; contentType: string; json: { error?: unknown }; traceId: string | null }> {
  const res = await fetch(`${url}/chat`, { method: "POST", headers: { "content-type": "application/json" }, body });
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", json: (await res.json()) as { error?: unknown }, traceId: res.headers.get("x-trace-id") };
}

test("a malformed JSON body is a 400 in JSON that names the problem", async () => {
  const res = await post('{"question": ');
  assert.equal(res.status, 400);
  assert.match(res.contentType, /^application\/json/);
  assert.equal(typeof res.json.error, "string");
  assert.match(String(res.json.error), /JSON/i);
});

test("a body over the parser's limit is a 413 in JSON, and the service keeps serving", async () => {
  const res = await post(JSON.stringify({ question: "x".repeat(200_000) }));
  assert.equal(res.status, 413);
  assert.match(res.contentType, /^application\/json/);
  assert.match(String(res.json.error), /too large/i);
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 200);
});

test("a model that refuses (429) is a 500 in JSON without internals; the request's run records the model's error", async () => {
  const res = await post(JSON.stringify({ question: "will this fail?" }));
  assert.equal(res.status, 500);
  assert.match(res.contentType, /^application\/json/);
  assert.match(String(res.json.error), /could not be produced/);
  assert.doesNotMatch(String(res.json.error), /127\.0\.0\.1|429|rate/i, "the client must not see the upstream's address or status line");
  assert.ok(res.traceId, "x-trace-id header");
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  const runs = await readTrace(res.traceId, { client: new Client() });
  const root = runs.find((r) => r.id === res.traceId);
  assert.ok(root, `root run in ${runs.map((r) => r.name).join(", ")}`);
  assert.ok(root.error, "the request's run ends with an error");
  const llm = runs.find((r) => r.run_type === "llm");
  assert.ok(llm?.error, `an llm run with the model's error among ${runs.map((r) => `${r.name}:${r.error ?? "ok"}`).join(", ")}`);
});
