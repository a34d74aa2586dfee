// The other adapters on the same propagator, against the real SDK and the
// local trace server: node:http (tracedListener) and Hono (langsmithHono)
// continue a trusted caller's trace, restart an untrusted one, send x-trace-id
// and end the run with the outcome; jsonErrors answers every failure in JSON
// with the trace id; serviceProject follows the SDK's own order.
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { getRequestListener } from "@hono/node-server";
import express from "express";
import { Hono } from "hono";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { jsonErrors, langsmithHono, langsmithTracing, serviceProject, tracedListener } from "../index.js";
import { isolateFromLangSmithEnv } from "./helpers.js";

isolateFromLangSmithEnv();

let traceServer: TraceServerHandle;
let client: Client;
const servers: http.Server[] = [];

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});

after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await traceServer?.close();
});

async function serve(listener: http.RequestListener): Promise<string> {
  const server = http.createServer(listener);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Every run of a trace, once the client has sent what it queued. */
async function traceRuns(traceId: string): Promise<Run[]> {
  await client.awaitPendingTraceBatches();
  const runs: Run[] = [];
  for await (const run of client.listRuns({ traceId })) runs.push(run);
  return runs;
}

const shout = traceable(async (text: string) => text.toUpperCase(), { name: "shout" });

describe("tracedListener (node:http)", () => {
  test("continues a trusted caller's trace: the request's run is the caller's child, traceable calls nest, x-trace-id names the trace", async () => {
    const ended: RunTree[] = [];
    const url = await serve(
      tracedListener(
        async (req, res) => {
          let body = "";
          for await (const chunk of req) body += String(chunk);
          res.end(await shout(body));
        },
        { trust: "mesh", client, enabled: true, projectName: "adapters", onRunEnd: (run) => void ended.push(run) },
      ),
    );
    const caller = new RunTree({ name: "caller", client, project_name: "adapters" });
    const response = await fetch(`${url}/shout?secret=1`, { method: "POST", body: "quiet", headers: caller.toHeaders() });
    assert.equal(await response.text(), "QUIET");
    assert.equal(response.headers.get("x-trace-id"), caller.trace_id);
    while (ended.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const runs = await traceRuns(caller.trace_id);
    const server = runs.find((r) => r.name === "POST /shout");
    assert.ok(server, runs.map((r) => r.name).join(", "));
    assert.equal(server.parent_run_id, caller.id);
    assert.deepEqual(server.outputs, { status_code: 200 });
    assert.equal(server.extra?.metadata?.["trace.inbound"], "continued");
    assert.equal(server.inputs.path, "/shout");
    assert.equal(runs.find((r) => r.name === "shout")?.parent_run_id, server.id);
  });

  test("a handler that rejects: a bare 500, and the run ends with the error", async () => {
    const ended: RunTree[] = [];
    const originalError = console.error;
    console.error = () => undefined;
    try {
      const url = await serve(
        tracedListener(
          async () => {
            throw new Error("inventory service unavailable");
          },
          { client, enabled: true, projectName: "adapters", onRunEnd: (run) => void ended.push(run) },
        ),
      );
      const response = await fetch(`${url}/orders`);
      assert.equal(response.status, 500);
      const traceId = response.headers.get("x-trace-id") ?? "";
      while (ended.length === 0) await new Promise((resolve) => setImmediate(resolve));
      const [run] = await traceRuns(traceId);
      assert.match(run?.error ?? "", /inventory service unavailable/);
      assert.equal(run?.extra?.metadata?.["http.status_code"], 500);
    } finally {
      console.error = originalError;
    }
  });

  test("a client that disconnects ends the run as 'client disconnected'", async () => {
    const ended: RunTree[] = [];
    let started: () => void = () => undefined;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    const url = await serve(
      tracedListener(
        async (_req, res) => {
          started();
          await once(res, "close");
        },
        { client, enabled: true, projectName: "adapters", onRunEnd: (run) => void ended.push(run) },
      ),
    );
    const abort = new AbortController();
    const request = fetch(`${url}/slow`, { signal: abort.signal });
    await handlerStarted;
    abort.abort();
    await assert.rejects(request, { name: "AbortError" });
    while (ended.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const [run] = await traceRuns(ended[0]?.trace_id ?? "");
    assert.equal(run?.error, "client disconnected");
    assert.equal(run?.extra?.metadata?.["http.client_disconnected"], true);
  });
});

describe("langsmithHono", () => {
  function honoApp(trust: "edge" | "mesh"): Hono {
    const app = new Hono();
    app.use(langsmithHono({ trust, client, enabled: true, projectName: "adapters" }));
    app.post("/users/:id/shout", async (c) => c.text(await shout(await c.req.text())));
    app.get("/boom", () => {
      throw new Error("hono handler failed");
    });
    return app;
  }

  test("in the mesh: the caller's child, named by the matched route, traceable calls nested", async () => {
    const url = await serve(getRequestListener(honoApp("mesh").fetch));
    const caller = new RunTree({ name: "caller", client, project_name: "adapters" });
    const response = await fetch(`${url}/users/7/shout`, { method: "POST", body: "hono", headers: caller.toHeaders() });
    assert.equal(await response.text(), "HONO");
    assert.equal(response.headers.get("x-trace-id"), caller.trace_id);
    const runs = await traceRuns(caller.trace_id);
    const server = runs.find((r) => r.name === "POST /users/:id/shout");
    assert.ok(server, runs.map((r) => r.name).join(", "));
    assert.equal(server.parent_run_id, caller.id);
    assert.equal(server.extra?.metadata?.["http.route"], "/users/:id/shout");
    assert.equal(server.extra?.metadata?.["http.status_code"], 200);
    assert.equal(runs.find((r) => r.name === "shout")?.parent_run_id, server.id);
  });

  test("at the edge: a new root with the claim as metadata; a thrown error is the run's error and a 500", async () => {
    const originalError = console.error;
    console.error = () => undefined;
    try {
      const url = await serve(getRequestListener(honoApp("edge").fetch));
      const caller = new RunTree({ name: "caller", client, project_name: "adapters" });
      const response = await fetch(`${url}/boom`, { headers: caller.toHeaders() });
      assert.equal(response.status, 500);
      const traceId = response.headers.get("x-trace-id") ?? "";
      assert.notEqual(traceId, caller.trace_id);
      const [run] = await traceRuns(traceId);
      assert.equal(run?.parent_run_id ?? undefined, undefined);
      assert.equal(run?.name, "GET /boom");
      assert.equal(run?.extra?.metadata?.["trace.inbound_reason"], "untrusted-caller");
      assert.equal(run?.extra?.metadata?.untrusted_parent_run_id, caller.id);
      assert.match(run?.error ?? "", /hono handler failed/);
    } finally {
      console.error = originalError;
    }
  });
});

describe("jsonErrors", () => {
  class Upstream extends Error {}
  class Refused extends Error {
    readonly status = 429;
    readonly expose = true;
    readonly headers = { "retry-after": "3", ignored: 5 };
  }

  async function app(exposeFailures: boolean): Promise<string> {
    const app = express();
    app.use(langsmithTracing({ client, enabled: true, projectName: "adapters" }));
    app.use(express.json());
    app.post("/json", (_req, res) => void res.end());
    app.get("/refused", () => {
      throw new Refused("slow down");
    });
    app.get("/upstream", () => {
      throw new Upstream("billing answered 503");
    });
    app.get("/bug", () => {
      throw new Error("secret internal detail");
    });
    app.use(jsonErrors({ service: "shop", exposeFailures, upstreamFailure: (err) => err instanceof Upstream }));
    return serve(app);
  }

  async function call(url: string, init?: RequestInit): Promise<{ status: number; body: unknown; traceId: string | null; retryAfter: string | null }> {
    const response = await fetch(url, init);
    return { status: response.status, body: await response.json(), traceId: response.headers.get("x-trace-id"), retryAfter: response.headers.get("retry-after") };
  }

  test("client errors keep their status, message and string headers; failures are 502 or 500; every body carries the trace id", async () => {
    const originalError = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const hidden = await app(false);
      const badJson = await call(`${hidden}/json`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
      assert.equal(badJson.status, 400);
      assert.match(String((badJson.body as { error: string }).error), /JSON/);
      assert.equal((badJson.body as { traceId: string }).traceId, badJson.traceId);

      const refused = await call(`${hidden}/refused`);
      assert.deepEqual([refused.status, refused.body, refused.retryAfter], [429, { error: "slow down", traceId: refused.traceId }, "3"]);

      const generic = "the answer could not be produced because an internal service failed; quote traceId when reporting it";
      const upstream = await call(`${hidden}/upstream`);
      assert.deepEqual([upstream.status, upstream.body], [502, { error: generic, traceId: upstream.traceId }]);
      const bug = await call(`${hidden}/bug`);
      assert.deepEqual([bug.status, bug.body], [500, { error: generic, traceId: bug.traceId }]);
      assert.equal(logged.length, 1, "only the 500 is logged");
      assert.match(String(logged[0]?.[0]), /^\[shop\] GET \/bug failed:/);

      // exposeFailures: for services only your own services call.
      const exposed = await app(true);
      const exposedUpstream = await call(`${exposed}/upstream`);
      assert.deepEqual([exposedUpstream.status, exposedUpstream.body], [502, { error: "billing answered 503", traceId: exposedUpstream.traceId }]);
      const exposedBug = await call(`${exposed}/bug`);
      assert.deepEqual([exposedBug.status, exposedBug.body], [500, { error: "internal error in shop", traceId: exposedBug.traceId }]);
    } finally {
      console.error = originalError;
    }
  });
});

describe("serviceProject", () => {
  test("the SDK's order: the given name, LANGSMITH_PROJECT, LANGCHAIN_PROJECT, LANGCHAIN_SESSION, then default", () => {
    const saved = { ...process.env };
    try {
      for (const key of ["LANGSMITH_PROJECT", "LANGCHAIN_PROJECT", "LANGCHAIN_SESSION"]) delete process.env[key];
      assert.equal(serviceProject(), "default");
      process.env.LANGCHAIN_SESSION = "session";
      assert.equal(serviceProject(), "session");
      process.env.LANGCHAIN_PROJECT = "langchain";
      assert.equal(serviceProject(), "langchain");
      process.env.LANGSMITH_PROJECT = "langsmith";
      assert.equal(serviceProject(), "langsmith");
      assert.equal(serviceProject("given"), "given");
    } finally {
      for (const key of ["LANGSMITH_PROJECT", "LANGCHAIN_PROJECT", "LANGCHAIN_SESSION"]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });
});
