// POST /runs/stats through langsmith 0.12's client.getRunStats, checked against
// a hand count over a seeded project: ten requests whose latencies, errors,
// tokens, costs and first tokens are chosen so every figure can be worked out.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { postJson, sdkClient, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";
import { micros, MINUTE, post, usage, wireRun } from "./fixtures/trace-server/conversations.js";

interface Seeded {
  roots: WireRun[];
  llms: WireRun[];
  projectId: string;
  t0: number;
}

/**
 * Request i (1..10) starts i minutes after t0 and takes i * 100 ms; requests 3, 6
 * and 9 fail. Its LLM call takes 20 ms less and uses i prompt and 2i completion
 * tokens; even requests report a cost (0.001 i in, 0.002 i out). Requests 1-4
 * stream a first token 50 ms in. Odd requests come from service "gateway", even from "worker".
 */
async function seedRequests(server: TraceServerHandle): Promise<Seeded> {
  const t0 = Date.now() - 60 * MINUTE;
  const roots: WireRun[] = [];
  const llms: WireRun[] = [];
  for (let i = 1; i <= 10; i++) {
    const start = t0 + i * MINUTE;
    const service = { LANGSMITH_SERVICE: i % 2 ? "gateway" : "worker" };
    const root = wireRun(undefined, { name: `request ${i}`, startMs: start, ms: i * 100, project: "stats", metadata: service, ...(i % 3 === 0 ? { error: `failure ${i}` } : {}) });
    const llm = wireRun(root, {
      name: "ChatOpenAI",
      runType: "llm",
      startMs: start + 10,
      ms: i * 100 - 20,
      project: "stats",
      metadata: service,
      outputs: usage(i, 2 * i, i % 2 === 0 ? { input: 0.001 * i, output: 0.002 * i } : undefined),
      ...(i <= 4 ? { events: [{ name: "new_token", time: micros(start + 50) }] } : {}),
    });
    roots.push(root);
    llms.push(llm);
  }
  await post(server, [...roots, ...llms]);
  const projectId = (await sdkClient(server).readProject({ projectName: "stats" })).id;
  return { roots, llms, projectId, t0 };
}

const close = (actual: unknown, expected: number): void => {
  assert.equal(typeof actual, "number");
  assert.ok(Math.abs((actual as number) - expected) < 1e-9, `${String(actual)} is not ${expected}`);
};

test("getRunStats over the root runs matches a hand count, percentiles included", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const { roots } = await seedRequests(server);
  await client.createFeedback(roots[0]?.id as string, "correct", { score: 1 });
  await client.createFeedback(roots[1]?.id as string, "correct", { score: 0 });

  const stats = await client.getRunStats({ projectNames: ["stats"], isRoot: true });
  assert.equal(stats.run_count, 10);
  close(stats.error_rate, 0.3);
  // Latencies 0.1 .. 1.0 s. Nearest rank: p50 is sorted[floor(0.5 * 10)] = sorted[5], p99 is sorted[9].
  close(stats.latency_p50, 0.6);
  close(stats.latency_p99, 1.0);
  close(stats.latency_avg, 0.55);
  // Tokens of the LLM calls below the roots: prompt 1+..+10, completion twice that.
  assert.equal(stats.prompt_tokens, 55);
  assert.equal(stats.completion_tokens, 110);
  assert.equal(stats.total_tokens, 165);
  // Each root's tokens are 3i: sorted[5] = 18.
  assert.equal(stats.median_tokens, 18);
  assert.equal(stats.tokens_p99, 30);
  // Costs of requests 2, 4, 6, 8, 10.
  close(stats.prompt_cost, 0.001 * 30);
  close(stats.completion_cost, 0.002 * 30);
  close(stats.total_cost, 0.003 * 30);
  // Four of ten requests streamed, each 50 ms after it started.
  close(stats.first_token_p50, 0.05);
  close(stats.streaming_rate, 0.4);
  assert.equal(stats.last_run_start_time, roots[9]?.start_time);
  assert.deepEqual(stats.feedback_stats, { correct: { n: 2, avg: 0.5 } });
});

test("getRunStats counts each LLM call's tokens once whichever runs match", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const { projectId, t0 } = await seedRequests(server);

  const all = await client.getRunStats({ projectIds: [projectId] });
  assert.equal(all.run_count, 20);
  assert.equal(all.total_tokens, 165, "a root and the LLM call below it both match; the call counts once");
  close(all.error_rate, 3 / 20);

  const llm = await client.getRunStats({ projectIds: [projectId], runType: "llm" });
  assert.equal(llm.run_count, 10);
  assert.equal(llm.total_tokens, 165);
  close(llm.latency_p50, 0.58);
  assert.equal(llm.total_cost !== null, true);

  const failed = await client.getRunStats({ projectIds: [projectId], filter: 'eq(status, "error")' });
  assert.equal(failed.run_count, 3);
  assert.equal(failed.total_tokens, 3 * (3 + 6 + 9));

  const late = await client.getRunStats({ projectIds: [projectId], isRoot: true, startTime: micros(t0 + 8 * MINUTE) });
  assert.equal(late.run_count, 3, "requests 8, 9 and 10");
});

test("POST /runs/stats groups by metadata (per service), honours select, and refuses bad input", async (t) => {
  const server = await serverFor(t);
  const { projectId } = await seedRequests(server);
  const ask = (body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => postJson(server, "/runs/stats", body);

  const grouped = await ask({ session: [projectId], is_root: true, group_by: { attribute: "metadata", path: "LANGSMITH_SERVICE" }, select: ["run_count", "error_rate", "latency_p50", "total_tokens"] });
  assert.equal(grouped.status, 200);
  // gateway: requests 1, 3, 5, 7, 9 (3 and 9 fail); worker: 2, 4, 6, 8, 10 (6 fails).
  assert.deepEqual(grouped.json, {
    gateway: { run_count: 5, error_rate: 0.4, latency_p50: 0.5, total_tokens: 3 * 25 },
    worker: { run_count: 5, error_rate: 0.2, latency_p50: 0.6, total_tokens: 3 * 30 },
  });
  const byName = await ask({ session: [projectId], group_by: { attribute: "name", max_groups: 1 }, select: ["run_count"] });
  assert.deepEqual(byName.json, { ChatOpenAI: { run_count: 10 } });

  assert.equal((await ask({ session: [projectId], run_type: "LLM" })).status, 422);
  assert.equal((await ask({ is_root: true })).status, 422, "no project");
  assert.equal((await ask({ session: [projectId], group_by: { attribute: "metadata" } })).status, 422);
  assert.equal((await ask({ session: [projectId], select: ["p95"] })).status, 422);
  assert.equal((await ask({ session: [projectId], bogus: true })).status, 422);
  assert.equal((await ask({ session: [projectId], select: ["toString"] })).status, 422, "names are own fields, not inherited ones");
  assert.deepEqual((await ask({ session: [projectId], group_by: { attribute: "metadata", path: "__proto__" } })).json, {}, "no run has that key");
  assert.equal((await ask({ session: [projectId], search_filter: "x" })).status, 501);
  assert.equal((await ask({ session: [projectId], filter: "eq(nope" })).status, 400);
});
