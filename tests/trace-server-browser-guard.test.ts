// A web page in the developer's browser must not be able to write runs into the local trace
// server (cross-origin POST) or read traces through DNS rebinding (a foreign Host header).
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";

let server: TraceServerHandle;
before(async () => {
  server = await startTraceServer({ port: 0 });
});
after(() => server.close());

function request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method, path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const run = (id: string) =>
  JSON.stringify({
    post: [{ id, trace_id: id, dotted_order: `20260101T000000000000Z${id}`, name: "from-a-web-page", run_type: "chain", start_time: "2026-01-01T00:00:00Z", inputs: {}, session_name: "guard" }],
    patch: [],
  });

test("writes marked by the browser as cross-origin are refused and store nothing", async () => {
  const ids = ["0195d2a0-0000-7000-8000-000000000001", "0195d2a0-0000-7000-8000-000000000002", "0195d2a0-0000-7000-8000-000000000003"];
  const json = { "content-type": "application/json" };
  assert.equal(await request("POST", "/runs/batch", { ...json, origin: "http://evil.example" }, run(ids[0] as string)), 403);
  assert.equal(await request("POST", "/runs/batch", { ...json, "sec-fetch-site": "cross-site" }, run(ids[1] as string)), 403);
  assert.equal(await request("POST", "/runs/batch", { ...json, origin: "null" }, run(ids[2] as string)), 403);
  for (const id of ids) assert.equal(server.store.getRun(id), undefined);
});

test("a Host that does not name this machine (DNS rebinding) is refused, reads included", async () => {
  assert.equal(await request("GET", "/", { host: `evil.example:${server.port}` }), 403);
  assert.equal(await request("GET", "/info", { host: "rebind.attacker.test" }), 403);
});

test("the SDK's own requests, same-origin writes and navigation from another local page still work", async () => {
  const id = "0195d2a0-0000-7000-8000-000000000004";
  const json = { "content-type": "application/json" };
  assert.equal(await request("POST", "/runs/batch", json, run(id)), 202);
  assert.notEqual(server.store.getRun(id), undefined);
  assert.equal(await request("POST", "/runs/batch", { ...json, origin: `http://127.0.0.1:${server.port}` }, run("0195d2a0-0000-7000-8000-000000000005")), 202);
  // A link from Jupyter (127.0.0.1:8888) to the viewer is a same-site navigation.
  assert.equal(await request("GET", "/", { "sec-fetch-site": "same-site", "sec-fetch-mode": "navigate", host: `localhost:${server.port}` }), 200);
});
