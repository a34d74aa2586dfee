// The viewer's threads pages, stats panel and shared (public) trace page over
// HTTP, without a browser: the figures they show against seeded runs, escaping,
// the security headers, and what a share link can and cannot reach.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "langsmith";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { LOCAL_KEY, serverFor } from "./fixtures/trace-server/helpers.js";
import { MINUTE, post, seedConversations, seedServiceRequests, wireRun } from "./fixtures/trace-server/conversations.js";

const HOSTILE = `<img src=x onerror="alert(1)">&'`;

async function page(server: TraceServerHandle, path: string, key?: string): Promise<{ status: number; html: string; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { headers: key ? { "x-api-key": key } : {}, redirect: "manual" });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

/** The text of each `data-stat` cell, by its label. */
function stats(html: string): Record<string, string> {
  return Object.fromEntries([...html.matchAll(/data-stat="([^"]+)">(.*?)<\/dd>/g)].map((m) => [m[1] as string, (m[2] as string).replace(/<[^>]+>/g, "")]));
}

function rowIds(html: string, cls: string, attr: string): string[] {
  return [...html.matchAll(new RegExp(`<tr class="${cls}" ${attr}="([^"]*)"`, "g"))].map((m) => m[1] as string);
}

test("/threads lists conversations newest first; a thread's page shows its turns in order with totals", async (t) => {
  const server = await serverFor(t);
  const seed = await seedConversations(server);
  await post(server, [wireRun(undefined, { name: HOSTILE, startMs: seed.now - MINUTE, ms: 10, metadata: { thread_id: HOSTILE } })]);

  const list = await page(server, "/threads?project=chat&window=24h");
  assert.equal(list.status, 200);
  assert.match(list.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  assert.deepEqual(rowIds(list.html, "thread-row", "data-thread-id"), ["&#60;img src=x onerror=&#34;alert(1)&#34;&#62;&#38;&#39;", "t-3", "t-2", "t-1"]);
  assert.ok(!list.html.includes(HOSTILE), "the hostile thread id is escaped");
  assert.ok(list.html.includes(`href="/threads/${encodeURIComponent(HOSTILE).replace(/'/g, "&#39;")}?project=`), "and encoded in its link");
  const allTime = await page(server, "/threads?window=all");
  assert.ok(allTime.html.includes(">other<"), "all projects: t-1 of project other is listed too");

  const projectId = (await new Client({ apiUrl: server.url, apiKey: LOCAL_KEY }).readProject({ projectName: "chat" })).id;
  const thread = await page(server, `/threads/t-1?project=${projectId}`);
  assert.equal(thread.status, 200);
  assert.deepEqual(rowIds(thread.html, "turn-row", "data-trace-id"), seed.t1.map((x) => x.root.trace_id), "every turn, oldest first");
  assert.ok(seed.t1.every((x) => thread.html.includes(`href="/traces/${x.root.trace_id}"`)));
  // Latencies 1, 2, 4, 1 s; tokens 2, 15, 30, 45.
  assert.deepEqual(stats(thread.html), {
    Turns: "4",
    "Errored turns": "1 (25.0%)",
    Tokens: "92 (prompt 61, completion 31)",
    "Latency p50": "2.00 s",
    p95: "4.00 s",
    p99: "4.00 s",
  });
  assert.equal((await page(server, "/threads/t-1")).status, 404, "a thread belongs to a project");
  assert.equal((await page(server, "/threads/nobody?project=chat")).status, 404);
});

test("/stats shows a project's requests, error rate, latency percentiles and tokens, then per service", async (t) => {
  const server = await serverFor(t);
  await seedServiceRequests(server);
  const { status, html } = await page(server, "/stats?project=svc&window=24h");
  assert.equal(status, 200);
  // Root latencies 0.1 .. 0.5 s: nearest rank p50 = sorted[2], p95 = p99 = sorted[4].
  assert.deepEqual(stats(html), {
    Requests: "5",
    "Error rate": "20.0%",
    "Latency p50": "300 ms",
    "Latency p95": "500 ms",
    "Latency p99": "500 ms",
    "First token p50": "-",
    Tokens: "65",
  });
  const services = [...html.matchAll(/<tr class="service-row" data-service="([^"]+)">(.*?)<\/tr>/g)].map((m) => [
    m[1],
    [...(m[2] as string).matchAll(/<td class="num[^"]*">([^<]*)<\/td>/g)].map((c) => c[1]),
  ]);
  // rag-service latencies 10 .. 50 ms; its LLM calls (inherited service) 11 + 12 + 13 + 14 + 15 tokens.
  assert.deepEqual(services, [
    ["gateway", ["5", "20.0%", "300 ms", "500 ms", "500 ms", "0", "-"]],
    ["rag-service", ["5", "20.0%", "30 ms", "50 ms", "50 ms", "65", "-"]],
  ]);
  assert.equal((await page(server, "/stats?window=24h")).html.includes("Stats: svc"), true, "without a project: the latest one");
});

test("a share link opens a read-only page of one trace, without the key, and 404s once unshared", async (t) => {
  const server = await serverFor(t, { apiKey: LOCAL_KEY });
  const start = Date.now() - MINUTE;
  const root = wireRun(undefined, { name: "shared request", startMs: start, ms: 50, project: "pub" });
  const child = wireRun(root, { name: HOSTILE, startMs: start + 5, ms: 10, project: "pub", runType: "tool" });
  child.inputs = { secret: HOSTILE };
  await post(server, [root, child]);
  const client = new Client({ apiUrl: server.url, apiKey: LOCAL_KEY, webUrl: server.url });
  const url = await client.shareRun(root.id);
  const path = new URL(url).pathname;

  const shared = await page(server, `${path}?run=${child.id}`);
  assert.equal(shared.status, 200);
  assert.match(shared.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  assert.equal(shared.headers.get("referrer-policy"), "no-referrer", "the token does not leak through Referer");
  assert.ok(!shared.html.includes("<script"), "no script on the shared page");
  assert.ok(!shared.html.includes(HOSTILE));
  assert.ok(shared.html.includes("&#60;img src=x onerror=&#34;alert(1)&#34;&#62;"), "the child's details, escaped");
  const links = [...shared.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1] as string);
  assert.ok(links.length > 2);
  for (const link of links) assert.ok(link.startsWith(`${path}?run=`) || link.startsWith("/_viewer/") || link === "data:,", `link ${link} leaves the shared trace`);
  assert.ok(!shared.html.includes(">pub<"), "the project name is not shown");

  assert.equal((await page(server, "/threads")).status, 401, "the rest of the viewer still needs the key");
  assert.equal((await page(server, "/stats")).status, 401);
  await client.unshareRun(root.id);
  const gone = await page(server, path);
  assert.equal(gone.status, 404);
  assert.ok(!gone.html.includes("shared request"));
  assert.equal((await page(server, "/public/not-a-token/r")).status, 404);
});
