// Sharing a trace through langsmith 0.12's Client (v1 shareRun / readRunSharedLink /
// unshareRun and v2 client.runs.share / client.public.runs): share, read publicly
// without the API key, unshare, and the public link answers 404 as on LangSmith.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "langsmith";
import { APIError } from "langsmith/error";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { collect, serverFor, type WireRun } from "./fixtures/trace-server/helpers.js";
import { MINUTE, wireRun } from "./fixtures/trace-server/conversations.js";

const KEY = "share-test-key";

async function seedTrace(server: TraceServerHandle, name: string): Promise<{ root: WireRun; child: WireRun }> {
  const start = Date.now() - 10 * MINUTE;
  const root = wireRun(undefined, { name, startMs: start, ms: 300, project: "shared" });
  const child = wireRun(root, { name: `${name} step`, startMs: start + 10, ms: 100, project: "shared", runType: "tool" });
  const res = await fetch(`${server.url}/runs/batch`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify({ post: [root, child] }) });
  assert.equal(res.status, 202);
  return { root, child };
}

/** A public read: no API key, as a browser following a share link. */
async function anonymous(server: TraceServerHandle, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${server.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text() };
}

/** The HTTP status an SDK call failed with: v2 calls throw APIError, v1 calls name it in the message. */
async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return undefined;
  } catch (e) {
    if (e instanceof APIError) return e.status;
    const m = /Received status \[(\d{3})\]/.exec((e as Error).message);
    return m ? Number(m[1]) : -1;
  }
}

test("shareRun -> public reads without the key -> unshareRun -> the public link answers 404", async (t) => {
  const server = await serverFor(t, { apiKey: KEY });
  // webUrl: the SDK builds share links on it, and answers http://localhost:3000 for any local apiUrl.
  const client = new Client({ apiUrl: server.url, apiKey: KEY, webUrl: server.url });
  const { root, child } = await seedTrace(server, "checkout");
  const other = await seedTrace(server, "unrelated");

  const url = await client.shareRun(root.id);
  const token = /\/public\/([0-9a-f-]{36})\/r$/.exec(url)?.[1] as string;
  assert.equal(url, `${server.url}/public/${token}/r`);
  assert.equal(await client.shareRun(child.id), url, "sharing any run of a shared trace returns its link");
  assert.equal(await client.readRunSharedLink(child.id), url);
  assert.equal(await client.readRunSharedLink(other.root.id), undefined);

  const shared = await anonymous(server, `/public/${token}/run`);
  assert.equal(shared.status, 200);
  const run = shared.json as Record<string, unknown>;
  assert.equal(run.id, root.id);
  assert.deepEqual(run.inputs, root.inputs);
  assert.equal(run.session_id, undefined, "no project in the public shape");
  assert.equal((await anonymous(server, `/public/${token}/run/${child.id}`)).status, 200);
  assert.equal((await anonymous(server, `/public/${token}/run/${other.root.id}`)).status, 404, "only the shared trace");
  const listed = await anonymous(server, `/public/${token}/runs/query`, { id: [root.id, child.id, other.root.id] });
  assert.deepEqual((listed.json as { runs: Array<{ id: string }> }).runs.map((r) => r.id), [root.id, child.id]);
  assert.equal((await anonymous(server, `/public/${token}/r`)).status, 200, "the viewer's read-only page");
  assert.equal((await anonymous(server, `/runs/${root.id}`)).status, 401, "the private API still needs the key");

  const v2 = await client.runs.retrieve(root.id, { project_id: await projectIdOf(client), selects: ["SHARE_URL"] });
  assert.equal(v2.share_url, url);

  await client.unshareRun(root.id);
  assert.equal(await client.readRunSharedLink(root.id), undefined);
  for (const path of [`/public/${token}/run`, `/public/${token}/run/${child.id}`, `/public/${token}/r`]) {
    assert.equal((await anonymous(server, path)).status, 404, path);
  }
  assert.equal((await anonymous(server, `/public/${token}/runs/query`, {})).status, 404);
  assert.equal((await client.runs.retrieve(root.id, { project_id: await projectIdOf(client), selects: ["SHARE_URL"] })).share_url, null);
});

async function projectIdOf(client: Client): Promise<string> {
  return (await client.readProject({ projectName: "shared" })).id;
}

test("client.runs.share and client.public.runs: token per trace, public v2 reads, delete", async (t) => {
  const server = await serverFor(t, { apiKey: KEY });
  const client = new Client({ apiUrl: server.url, apiKey: KEY });
  const { root, child } = await seedTrace(server, "v2 share");
  const projectId = await projectIdOf(client);

  const { share_token: token } = await client.runs.share.create(child.id, { session_id: projectId, trace_id: root.id });
  assert.ok(token);
  assert.equal((await client.runs.share.create(root.id, { session_id: projectId, trace_id: root.id })).share_token, token, "idempotent per trace");

  const anonymousClient = new Client({ apiUrl: server.url, apiKey: "not-the-key" });
  const { items } = await anonymousClient.public.runs.query(token as string, { selects: ["NAME", "PARENT_RUN_ID", "RUN_TYPE"] });
  assert.deepEqual(items, [
    { id: root.id, name: "v2 share", run_type: "CHAIN", parent_run_id: null },
    { id: child.id, name: "v2 share step", run_type: "TOOL", parent_run_id: root.id },
  ]);
  const one = await anonymousClient.public.runs.retrieve(child.id, { share_token: token as string, selects: ["NAME", "INPUTS_PREVIEW"], start_time: child.start_time });
  assert.deepEqual(one, { id: child.id, name: "v2 share step", inputs_preview: JSON.stringify(child.inputs) });
  assert.equal(await statusOf(anonymousClient.public.runs.query(token as string, { selects: ["INPUTS" as "NAME"] })), 422, "full inputs are not a public field");

  assert.equal(await statusOf(client.runs.share.create(child.id, { session_id: projectId, trace_id: child.id })), 404, "the run is not in that trace");
  await client.runs.share.delete(root.id, { session_id: projectId });
  await client.runs.share.delete(root.id, { session_id: projectId });
  assert.equal(await statusOf(anonymousClient.public.runs.query(token as string, {})), 404);
});

test("share tokens: a taken token is a 409, bad ids a 422, and listSharedRuns' malformed URL a 404 that says why", async (t) => {
  const server = await serverFor(t, { apiKey: KEY });
  const client = new Client({ apiUrl: server.url, apiKey: KEY, webUrl: server.url });
  const a = await seedTrace(server, "a");
  const b = await seedTrace(server, "b");
  const url = await client.shareRun(a.root.id);
  const token = url.split("/").at(-2) as string;
  assert.equal(await statusOf(client.shareRun(b.root.id, { shareId: token })), 409);
  assert.equal((await anonymous(server, "/public/not-a-uuid/run")).status, 422);
  assert.equal((await anonymous(server, `/public/${crypto.randomUUID()}/run`)).status, 404);

  // langsmith 0.12 builds /public/<token>/runsshare_token=... (no "?"); LangSmith 404s it as well.
  assert.equal(await statusOf(client.listSharedRuns(token)), 404);
  const res = await anonymous(server, `/public/${token}/runsshare_token=${token}`);
  assert.match(String((res.json as { detail: string }).detail), /listSharedRuns\(\) builds this URL without "\?"/);
  assert.deepEqual((await collect(client.listProjects())).map((p) => p.name), ["shared"]);
});
