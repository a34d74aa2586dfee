// Behaviour of the middleware and the outbound helper in one process, against
// the real SDK and the local trace server: run shape, errors, streaming,
// client disconnects, tracing switched off, trust functions and propagation.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable, withRunTree } from "langsmith/traceable";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import {
  DEFAULT_LIMITS,
  currentRun,
  getRequestRun,
  injectTraceHeaders,
  langsmithTracing,
  tracedFetch,
  type LangSmithTracingOptions,
} from "../index.js";
import { isolateFromLangSmithEnv, listen, segment, type Listening } from "./helpers.js";

isolateFromLangSmithEnv();

let traceServer: TraceServerHandle;
let client: Client;
const open: Listening[] = [];

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
});

after(async () => {
  for (const l of open) await l.close();
  await traceServer?.close();
});

/**
 * An app with the middleware in front of `routes`. `ended` resolves with each
 * request's run once its final update is queued; `read` flushes and reads it back.
 */
async function tracedApp(routes: (app: express.Express) => void, options: LangSmithTracingOptions = {}) {
  const warnings: string[] = [];
  const warningWaiters: Array<(message: string) => void> = [];
  const waiting: Array<(run: RunTree) => void> = [];
  const app = express();
  app.use(
    langsmithTracing({
      client,
      enabled: true,
      projectName: "middleware",
      logger: {
        warn: (m) => {
          warnings.push(m);
          warningWaiters.shift()?.(m);
        },
      },
      onRunEnd: (run) => waiting.shift()?.(run),
      ...options,
    }),
  );
  routes(app);
  const listening = await listen(app);
  open.push(listening);
  return {
    url: listening.url,
    warnings,
    /** Call before causing it: resolves with the next warning logged. */
    nextWarning(): Promise<string> {
      return new Promise((resolve) => warningWaiters.push(resolve));
    },
    /** Call before the request: resolves with the run of the next request to end. */
    nextRunEnd(): Promise<RunTree> {
      return new Promise((resolve) => waiting.push(resolve));
    },
    async read(run: RunTree): Promise<Run> {
      await client.awaitPendingTraceBatches();
      return client.readRun(run.id);
    },
  };
}

/** Headers as a plain object (the DOM lib in use has no Headers iterator types). */
function plain(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

async function childrenOf(parentId: string, traceId: string): Promise<Run[]> {
  await client.awaitPendingTraceBatches();
  const runs: Run[] = [];
  for await (const run of client.listRuns({ traceId })) if (run.parent_run_id === parentId) runs.push(run);
  return runs;
}

describe("the server run", () => {
  test("is named after the mounted route, records safe inputs, and traceable calls nest under it", async () => {
    const lookup = traceable(async (userId: string) => ({ userId, plan: "pro" }), { name: "lookup_user", run_type: "tool" });
    const t = await tracedApp((app) => {
      const api = express.Router();
      api.get("/users/:id", async (req, res) => {
        res.json(await lookup(req.params.id));
      });
      app.use("/api", api);
    });
    const ended = t.nextRunEnd();
    const response = await fetch(`${t.url}/api/users/42?token=s3cret`, {
      headers: { authorization: "Bearer s3cret", cookie: "session=s3cret", "x-api-key": "s3cret", "x-request-id": "req-1" },
    });
    assert.equal(response.status, 200);
    const run = await t.read(await ended);
    assert.equal(run.name, "GET /api/users/:id");
    assert.equal(run.run_type, "chain");
    assert.equal(run.parent_run_id ?? undefined, undefined);
    assert.equal(response.headers.get("x-trace-id"), run.trace_id);
    assert.deepEqual(run.outputs, { status_code: 200 });
    assert.equal(run.error ?? undefined, undefined);
    assert.equal(run.extra?.metadata?.["http.route"], "/api/users/:id");
    assert.equal(run.extra?.metadata?.["http.status_code"], 200);
    assert.equal(run.inputs.path, "/api/users/42");
    assert.equal(run.inputs.method, "GET");
    assert.equal(run.inputs.headers["x-request-id"], "req-1");
    assert.doesNotMatch(JSON.stringify(run.inputs), /s3cret/);

    assert.ok(run.trace_id);
    const children = await childrenOf(run.id, run.trace_id);
    assert.deepEqual(children.map((c) => c.name), ["lookup_user"]);
    assert.deepEqual(children[0]?.outputs, { userId: "42", plan: "pro" });
  });

  test("a thrown error ends the run with the error; the 500 still carries x-trace-id", async () => {
    const t = await tracedApp((app) => {
      const api = express.Router();
      api.post("/orders/:id", async () => {
        throw new Error("inventory service unavailable");
      });
      app.use("/api", api);
    });
    const ended = t.nextRunEnd();
    const response = await fetch(`${t.url}/api/orders/7`, { method: "POST" });
    assert.equal(response.status, 500);
    const run = await t.read(await ended);
    assert.equal(response.headers.get("x-trace-id"), run.trace_id);
    assert.match(run.error ?? "", /inventory service unavailable/);
    assert.equal(run.name, "POST /api/orders/:id");
    assert.equal(run.extra?.metadata?.["http.status_code"], 500);
  });

  test("a 5xx the handler chose is an error too; a 404 keeps the path and has no route", async () => {
    const t = await tracedApp((app) => {
      app.get("/degraded", (_req, res) => {
        res.status(503).json({ retry: true });
      });
    });
    let ended = t.nextRunEnd();
    await (await fetch(`${t.url}/degraded`)).body?.cancel();
    const degraded = await t.read(await ended);
    assert.equal(degraded.error, "HTTP 503");

    ended = t.nextRunEnd();
    const missing = await fetch(`${t.url}/no/such/page?x=1`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const notFound = await t.read(await ended);
    assert.equal(notFound.name, "GET /no/such/page");
    assert.equal(notFound.extra?.metadata?.["http.route"], undefined);
    assert.equal(notFound.error ?? undefined, undefined);
  });

  test("x-trace-id arrives with the first bytes of a streamed response", async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const t = await tracedApp((app) => {
      app.get("/stream", async (_req, res) => {
        res.write("first chunk\n");
        await released;
        res.end("last chunk\n");
      });
    });
    const ended = t.nextRunEnd();
    const response = await fetch(`${t.url}/stream`);
    // The handler is still waiting: the headers are all that has arrived.
    const traceId = response.headers.get("x-trace-id");
    assert.match(traceId ?? "", /^[0-9a-f-]{36}$/);
    release();
    assert.equal(await response.text(), "first chunk\nlast chunk\n");
    const run = await t.read(await ended);
    assert.equal(run.trace_id, traceId);
    assert.equal(run.error ?? undefined, undefined);
  });

  test("a client that disconnects mid-request ends the run with 'client disconnected'", async () => {
    let handlerStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      handlerStarted = resolve;
    });
    const afterDisconnect = traceable(async () => "cleanup done", { name: "cleanup" });
    const t = await tracedApp((app) => {
      app.post("/slow", async (_req, res) => {
        handlerStarted();
        await once(res, "close");
        // Still inside the request's run after the client left.
        await afterDisconnect();
      });
    });
    const ended = t.nextRunEnd();
    const abort = new AbortController();
    const request = fetch(`${t.url}/slow`, { method: "POST", signal: abort.signal });
    await started;
    abort.abort();
    await assert.rejects(request, { name: "AbortError" });
    const run = await t.read(await ended);
    assert.equal(run.error, "client disconnected");
    assert.equal(run.extra?.metadata?.["http.client_disconnected"], true);
    assert.equal(run.extra?.metadata?.["http.route"], "/slow");
    assert.equal(run.name, "POST /slow");
    assert.ok(run.end_time);
  });
});

describe("trust", () => {
  test("a trust function decides per request; one that throws means untrusted", async () => {
    const t = await tracedApp(
      (app) => {
        app.get("/probe", (req, res) => {
          res.json({ runId: getRequestRun(req)?.id });
        });
      },
      {
        trust: (req) => {
          if (req.headers["x-explode"]) throw new Error("policy bug");
          return req.headers["x-internal-caller"] === "billing";
        },
      },
    );
    const parent = new RunTree({ name: "caller", client, project_name: "middleware" });
    const headers = parent.toHeaders();

    let ended = t.nextRunEnd();
    await (await fetch(`${t.url}/probe`, { headers: { ...headers, "x-internal-caller": "billing" } })).body?.cancel();
    const trusted = await t.read(await ended);
    assert.equal(trusted.parent_run_id, parent.id);
    assert.equal(trusted.trace_id, parent.trace_id);

    ended = t.nextRunEnd();
    await (await fetch(`${t.url}/probe`, { headers: { ...headers } })).body?.cancel();
    const untrusted = await t.read(await ended);
    assert.equal(untrusted.parent_run_id ?? undefined, undefined);
    assert.equal(untrusted.extra?.metadata?.untrusted_parent_run_id, parent.id);

    ended = t.nextRunEnd();
    const response = await fetch(`${t.url}/probe`, { headers: { ...headers, "x-internal-caller": "billing", "x-explode": "1" } });
    assert.equal(response.status, 200);
    const exploded = await t.read(await ended);
    assert.equal(exploded.parent_run_id ?? undefined, undefined);
    assert.equal(t.warnings.filter((w) => w.includes("cause: trust-threw;")).length, 1);
  });

  test("allowProjectOverride lets a trusted caller choose the project", async () => {
    const t = await tracedApp(
      (app) => {
        app.get("/probe", (_req, res) => {
          res.end();
        });
      },
      { trust: "mesh", allowProjectOverride: true },
    );
    const parent = new RunTree({ name: "caller", client, project_name: "chosen-by-caller" });
    const ended = t.nextRunEnd();
    await (await fetch(`${t.url}/probe`, { headers: parent.toHeaders() })).body?.cancel();
    const run = await t.read(await ended);
    const chosen = await client.readProject({ projectName: "chosen-by-caller" });
    assert.equal(run.session_id, chosen.id);
    assert.equal(run.parent_run_id, parent.id);
  });
});

describe("failures in tracing never fail the request", () => {
  test("a throwing runName serves the request untraced, with one warning", async () => {
    const t = await tracedApp(
      (app) => {
        app.get("/probe", (req, res) => {
          res.json({ traced: getRequestRun(req) !== undefined });
        });
      },
      {
        runName: () => {
          throw new Error("naming bug");
        },
      },
    );
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${t.url}/probe`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { traced: false });
      assert.equal(response.headers.get("x-trace-id"), null);
    }
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0] ?? "", /cause: start-failed;/);
  });

  test("a throwing onRunEnd is reported and the responses are unaffected", async () => {
    const t = await tracedApp(
      (app) => {
        app.get("/probe", (_req, res) => {
          res.send("ok");
        });
      },
      {
        onRunEnd: () => {
          throw new Error("metrics bug");
        },
      },
    );
    const warned = t.nextWarning();
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${t.url}/probe`);
      assert.equal(await response.text(), "ok");
    }
    // The hook runs after the response has gone out.
    assert.match(await warned, /cause: end-failed;/);
  });
});

describe("flushBeforeEnd (serverless)", () => {
  test("the run and its children are stored before the response reaches the client", async () => {
    const step = traceable(async () => "drafted", { name: "draft" });
    const t = await tracedApp(
      (app) => {
        app.post("/answer", async (_req, res) => {
          res.json({ answer: await step() });
        });
      },
      { flushBeforeEnd: { timeoutMs: 10_000 } },
    );
    const response = await fetch(`${t.url}/answer`, { method: "POST" });
    assert.deepEqual(await response.json(), { answer: "drafted" });
    const runId = response.headers.get("x-trace-id");
    assert.ok(runId);
    // Another client: reading through the writing one would flush its queue first.
    const reader = new Client({ apiUrl: traceServer.url, apiKey: "local" });
    const run = await reader.readRun(runId);
    assert.ok(run.end_time);
    assert.deepEqual(run.outputs, { status_code: 200 });
    const children: Run[] = [];
    for await (const child of reader.listRuns({ traceId: runId })) if (child.parent_run_id === runId) children.push(child);
    assert.deepEqual(children.map((c) => [c.name, c.outputs]), [["draft", { outputs: "drafted" }]]);
  });

  test("a flush that does not finish holds the response for timeoutMs only, with one warning", async () => {
    class HungFlush extends Client {
      override awaitPendingTraceBatches(): Promise<void> {
        return new Promise(() => undefined);
      }
    }
    const t = await tracedApp(
      (app) => {
        app.get("/probe", (_req, res) => {
          res.send("ok");
        });
      },
      { client: new HungFlush({ apiUrl: traceServer.url, apiKey: "local" }), flushBeforeEnd: { timeoutMs: 50 } },
    );
    for (let i = 0; i < 2; i++) assert.equal(await (await fetch(`${t.url}/probe`)).text(), "ok");
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0] ?? "", /cause: flush-timeout;/);
  });
});

describe("tracing switched off", () => {
  test("the middleware passes through and the helpers add nothing, inside traceable too", async () => {
    const saved = { ...process.env };
    process.env.LANGSMITH_TRACING = "false";
    delete process.env.LANGSMITH_TRACING_V2;
    delete process.env.LANGCHAIN_TRACING;
    delete process.env.LANGCHAIN_TRACING_V2;
    try {
      const step = traceable(async () => plain(injectTraceHeaders({ accept: "text/plain" })), { name: "step" });
      const t = await tracedApp(
        (app) => {
          app.get("/probe", async (req, res) => {
            res.json({
              run: getRequestRun(req) ?? null,
              current: currentRun() ?? null,
              headers: plain(injectTraceHeaders()),
              insideTraceable: await step(),
            });
          });
        },
        { enabled: undefined, projectName: "switched-off" },
      );
      const response = await fetch(`${t.url}/probe`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-trace-id"), null);
      assert.deepEqual(await response.json(), { run: null, current: null, headers: {}, insideTraceable: { accept: "text/plain" } });
      await client.awaitPendingTraceBatches();
      assert.equal(await client.hasProject({ projectName: "switched-off" }), false);
    } finally {
      process.env = saved;
    }
  });
});

describe("outbound propagation", () => {
  test("outside a traced context injectTraceHeaders returns the headers unchanged", () => {
    assert.deepEqual(plain(injectTraceHeaders({ baggage: "vendor=1", accept: "*/*" })), { baggage: "vendor=1", accept: "*/*" });
  });

  test("keeps other vendors' baggage, replaces stale langsmith members, leaves this service's name behind", async () => {
    const run = new RunTree({
      name: "caller",
      client,
      project_name: "middleware",
      tracingEnabled: true,
      metadata: { tenant: "acme", LANGSMITH_SERVICE: "edge" },
      tags: ["beta"],
    });
    const headers = await withRunTree(run, () => injectTraceHeaders({ baggage: "vendor=1,langsmith-trace-stale=x,langsmith-tags=stale", "langsmith-trace": segment() }));
    assert.equal(headers.get("langsmith-trace"), run.dotted_order);
    const members = (headers.get("baggage") ?? "").split(",");
    assert.ok(members.includes("vendor=1"));
    assert.ok(!members.includes("langsmith-tags=stale"));
    assert.ok(members.includes("langsmith-tags=beta"));
    const metadata = members.find((m) => m.startsWith("langsmith-metadata="));
    assert.deepEqual(JSON.parse(decodeURIComponent(metadata?.split("=")[1] ?? "")), { tenant: "acme" });
  });

  test("oversized baggage: metadata, then tags, then other vendors' members are dropped; the trace header is always sent", async () => {
    // The warning is once per process, and this is the first test in this file to go over the limit.
    const warnings: string[] = [];
    const originalWarn = console.warn;
    console.warn = (message: string) => warnings.push(message);
    const sent = async (run: RunTree, foreign: string): Promise<{ trace: string | null; members: string[] }> => {
      const headers = await withRunTree(run, () => injectTraceHeaders({ baggage: foreign }));
      return { trace: headers.get("langsmith-trace"), members: (headers.get("baggage") ?? "").split(",") };
    };
    const caller = (metadata: Record<string, string>): RunTree =>
      new RunTree({ name: "caller", client, project_name: "middleware", tracingEnabled: true, metadata, tags: ["beta"] });
    try {
      const small = await sent(caller({ tenant: "acme" }), "vendor=1");
      assert.ok(small.members.includes("vendor=1") && small.members.includes("langsmith-tags=beta"));
      assert.ok(small.members.some((m) => m.startsWith("langsmith-metadata=")));

      // The metadata would fit alone, and so would the other vendor's member: together they do not.
      const vendor = `vendor=${"v".repeat(DEFAULT_LIMITS.maxBaggageBytes - 100)}`;
      const run = caller({ blob: "x".repeat(200) });
      const merged = await sent(run, vendor);
      assert.equal(merged.trace, run.dotted_order);
      assert.ok(merged.members.includes(vendor), "the other vendor's member is kept");
      assert.ok(merged.members.includes("langsmith-tags=beta"), "the tags fit once the metadata is gone");
      assert.ok(!merged.members.some((m) => m.startsWith("langsmith-metadata=")));

      const own = caller({ blob: "x".repeat(10_000) });
      const ownOnly = await sent(own, "");
      assert.equal(ownOnly.trace, own.dotted_order);
      assert.deepEqual(ownOnly.members.sort(), ["langsmith-project=middleware", "langsmith-tags=beta"]);

      const huge = await sent(caller({ tenant: "acme" }), `vendor=${"v".repeat(DEFAULT_LIMITS.maxBaggageBytes)}`);
      assert.deepEqual(huge.members, ["langsmith-project=middleware"]);

      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0] ?? "", /dropped langsmith-metadata to fit/);
    } finally {
      console.warn = originalWarn;
    }
  });

  test("another vendor's baggage plus large metadata: the receiver still continues the trace", async () => {
    const originalWarn = console.warn;
    console.warn = () => undefined;
    try {
      const downstream = await tracedApp(
        (app) => {
          app.get("/inner", (req, res) => {
            res.send(req.get("baggage") ?? "");
          });
        },
        { trust: "mesh", service: "inner-service" },
      );
      // 28 values of 250 characters: within every per-entry limit, about 7.6 KB encoded.
      const metadata = Object.fromEntries(Array.from({ length: 28 }, (_, i) => [`k${i}`, "v".repeat(250)]));
      const vendor = `vendor=${"x".repeat(3000)}`;
      const upstream = await tracedApp(
        (app) => {
          app.get("/outer", async (_req, res) => {
            const inner = await tracedFetch(`${downstream.url}/inner`, { headers: { baggage: vendor } });
            res.send(await inner.text());
          });
        },
        { trust: "edge", metadata },
      );
      const innerEnded = downstream.nextRunEnd();
      const outerEnded = upstream.nextRunEnd();
      const received = (await (await fetch(`${upstream.url}/outer`)).text()).split(",");
      assert.ok(received.includes(vendor));
      assert.ok(!received.some((m) => m.startsWith("langsmith-metadata=")));
      const outer = await upstream.read(await outerEnded);
      const inner = await downstream.read(await innerEnded);
      assert.equal(inner.parent_run_id, outer.id);
      assert.equal(inner.extra?.metadata?.["trace.inbound"], "continued");
      assert.deepEqual(downstream.warnings, []);
    } finally {
      console.warn = originalWarn;
    }
  });

  test("tracedFetch sends the request without trace headers when they cannot be built, and warns", async () => {
    const seen: Array<string | undefined> = [];
    const app = express();
    app.get("/echo", (req, res) => {
      seen.push(req.get("langsmith-trace"));
      res.send(req.get("x-caller") ?? "");
    });
    const target = await listen(app);
    open.push(target);
    const run = new RunTree({ name: "caller", client, project_name: "middleware", tracingEnabled: true });
    run.toHeaders = () => {
      throw new Error("toHeaders refused");
    };
    const warnings: string[] = [];
    const originalWarn = console.warn;
    console.warn = (message: string) => warnings.push(message);
    let call: Promise<Response> | undefined;
    try {
      await withRunTree(run, async () => {
        assert.doesNotThrow(() => {
          call = tracedFetch(`${target.url}/echo`, { headers: { "x-caller": "kept" } });
        });
        await call;
      });
    } finally {
      console.warn = originalWarn;
    }
    const response = await call;
    assert.equal(response?.status, 200);
    assert.equal(await response?.text(), "kept");
    assert.deepEqual(seen, [undefined]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /Could not build trace headers.*toHeaders refused/);
  });

  test("tracedFetch continues the trace in the called service, which keeps its own service name", async () => {
    const downstream = await tracedApp(
      (app) => {
        app.get("/inner", (_req, res) => {
          res.send("inner");
        });
      },
      { trust: "mesh", service: "inner-service" },
    );
    const upstream = await tracedApp(
      (app) => {
        app.get("/outer", async (_req, res) => {
          const inner = await tracedFetch(`${downstream.url}/inner`, { headers: { baggage: "vendor=kept" } });
          res.send(`outer+${await inner.text()}`);
        });
      },
      { trust: "edge", service: "outer-service", metadata: { tenant: "acme" } },
    );
    const innerEnded = downstream.nextRunEnd();
    const outerEnded = upstream.nextRunEnd();
    const response = await fetch(`${upstream.url}/outer`);
    assert.equal(await response.text(), "outer+inner");
    const outer = await upstream.read(await outerEnded);
    const inner = await downstream.read(await innerEnded);
    assert.equal(inner.parent_run_id, outer.id);
    assert.equal(inner.trace_id, outer.trace_id);
    assert.equal(response.headers.get("x-trace-id"), outer.trace_id);
    assert.equal(outer.extra?.metadata?.LANGSMITH_SERVICE, "outer-service");
    assert.equal(inner.extra?.metadata?.LANGSMITH_SERVICE, "inner-service");
    assert.equal(inner.extra?.metadata?.tenant, "acme");
    // The SDK's baggage names the sender's project; it is this service's too, so nothing was overridden.
    assert.deepEqual(downstream.warnings, []);
    assert.equal(inner.extra?.metadata?.["trace.baggage_adjusted"], undefined);
  });
});
