// The hostile header corpus: every case is sent over a raw socket to one app
// that trusts nobody ("edge") and one that trusts everybody ("mesh"), then the
// resulting run is read back from the local trace server through the SDK.
// Required for every case: a response below 500 from a handler that ran inside
// the request's run; at the edge a root run whose trace is not the claimed one;
// in the mesh either the caller's run as parent or a fresh root plus a warning.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import express, { type Request } from "express";
import { Client, type Run } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { currentRun, getRequestRun, langsmithTracing, type InboundRejection, type TrustPolicy } from "../index.js";
import { countdown, isolateFromLangSmithEnv, listen, rawRequest, segment, type Listening, type RawResponse } from "./helpers.js";

isolateFromLangSmithEnv();

type Expect =
  | { inbound: "none" }
  | { inbound: "continued"; check?: (run: Run, client: Client) => void | Promise<void> }
  | { inbound: "restarted"; reason: InboundRejection };

interface Case {
  name: string;
  headers: Array<readonly [string, string]>;
  /** The caller's run as a well-formed header claims it; absent when the header is not one. */
  claimed?: { traceId: string; parentRunId: string };
  mesh: Expect;
}

function trace(): { value: string; traceId: string; parentRunId: string } {
  const id = randomUUID();
  return { value: segment(id), traceId: id, parentRunId: id };
}

/** A valid caller context plus the given baggage lines. */
function withBaggage(name: string, baggage: string[], mesh: Expect): Case {
  const t = trace();
  return {
    name,
    headers: [["langsmith-trace", t.value], ...baggage.map((b) => ["baggage", b] as const)],
    claimed: { traceId: t.traceId, parentRunId: t.parentRunId },
    mesh,
  };
}

function malformed(name: string, value: string, reason: InboundRejection = "trace-header-malformed"): Case {
  return { name, headers: [["langsmith-trace", value]], mesh: { inbound: "restarted", reason } };
}

const enc = encodeURIComponent;
const meta = (value: unknown): string => `langsmith-metadata=${enc(JSON.stringify(value))}`;
const id = randomUUID();
const ts = "20250102T030405678000Z";

function buildCorpus(): Case[] {
  const cases: Case[] = [];
  {
    const t = trace();
    cases.push({ name: "valid single-segment trace", headers: [["langsmith-trace", t.value]], claimed: t, mesh: { inbound: "continued" } });
  }
  {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    cases.push({
      name: "valid three-level dotted order: the last segment is the parent",
      headers: [["langsmith-trace", `${segment(a)}.${segment(b)}.${segment(c)}`]],
      claimed: { traceId: a, parentRunId: c },
      mesh: { inbound: "continued" },
    });
  }
  {
    const t = trace();
    cases.push({ name: "valid, padded with spaces and a tab", headers: [["langsmith-trace", ` \t${t.value}  `]], claimed: t, mesh: { inbound: "continued" } });
  }
  {
    const t = trace();
    cases.push({ name: "valid, header name in mixed case", headers: [["LangSmith-Trace", t.value]], claimed: t, mesh: { inbound: "continued" } });
  }

  {
    const t = trace();
    cases.push({
      name: "valid, run id in capitals (another tracer's spelling)",
      headers: [["langsmith-trace", t.value.toUpperCase()]],
      claimed: t,
      mesh: { inbound: "continued" },
    });
  }

  cases.push(
    malformed("empty value", ""),
    malformed("whitespace only", "   "),
    malformed("plain garbage", "garbage"),
    malformed("run id without timestamp", id),
    malformed("timestamp without run id", ts),
    malformed("run id one digit short", `${ts}${id.slice(0, -1)}`),
    malformed("run id with non-hex digits", `${ts}${id.replace(/[0-9a-f]/g, "z")}`),
    malformed("month 13", `20251302T030405678000Z${id}`),
    malformed("February 30", `20250230T030405678000Z${id}`),
    malformed("hour 24", `20250102T240405678000Z${id}`),
    malformed("millisecond precision only", `20250102T030405678Z${id}`),
    malformed("ISO punctuation left in", `2025-01-02T03:04:05.678000Z${id}`),
    malformed("trailing dot", `${segment()}.`),
    malformed("leading dot", `.${segment()}`),
    malformed("empty segment between dots", `${segment()}..${segment()}`),
    malformed("a run that is its own ancestor", `${segment(id)}.${segment(randomUUID())}.${segment(id)}`),
    malformed(
      "129 segments",
      Array.from({ length: 129 }, () => segment()).join("."),
      "trace-header-too-deep",
    ),
    malformed("9000 characters", `${segment()}${"a".repeat(9000)}`, "trace-header-too-long"),
    malformed("100 KiB", "x".repeat(100 * 1024), "trace-header-too-long"),
    malformed("two dotted orders joined by a comma", `${segment()},${segment()}`),
    malformed("path traversal after the Z", `${ts}../../../etc/passwd`),
    malformed("SQL injection", "' OR 1=1; DROP TABLE runs; --"),
    malformed("a JSON object", JSON.stringify({ trace_id: id, parent: id })),
    malformed("fully percent-encoded dotted order", [...segment()].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("")),
    malformed("raw latin1 bytes", `${ts}\xff\xfe\xe9${id.slice(3)}`),
    malformed("percent-encoded CRLF and a header", `${segment()}%0D%0AX-Injected:%201`),
    malformed("a W3C traceparent instead", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
  );
  {
    const [a, b] = [trace(), trace()];
    cases.push({
      name: "two langsmith-trace header lines",
      headers: [["langsmith-trace", a.value], ["langsmith-trace", b.value]],
      mesh: { inbound: "restarted", reason: "trace-header-duplicate" },
    });
  }

  cases.push(
    withBaggage("metadata and tags from a trusted caller", [`${meta({ tenant: "acme" })},langsmith-tags=${enc("beta,canary")}`], {
      inbound: "continued",
      check: (run) => {
        assert.equal(run.extra?.metadata?.tenant, "acme");
        assert.deepEqual([...(run.tags ?? [])].sort(), ["beta", "canary"]);
      },
    }),
    withBaggage("truncated escape in langsmith-metadata", ["langsmith-metadata=%E0%A4%A"], { inbound: "restarted", reason: "baggage-bad-encoding" }),
    withBaggage("lone percent sign in langsmith-tags", ["langsmith-tags=50%"], { inbound: "restarted", reason: "baggage-bad-encoding" }),
    withBaggage("bad escape in another vendor's member (the SDK alone throws)", ["vendor=%ZZ", `${meta({ ok: 1 })}`], {
      inbound: "continued",
      check: (run) => assert.equal(run.extra?.metadata?.ok, 1),
    }),
    withBaggage("langsmith-metadata that is not JSON", [`langsmith-metadata=${enc("{tenant: acme}")}`], { inbound: "restarted", reason: "baggage-bad-metadata" }),
    withBaggage("langsmith-metadata that is a JSON array", [meta([1, 2, 3])], { inbound: "restarted", reason: "baggage-bad-metadata" }),
    withBaggage("langsmith-metadata that is JSON null", [meta(null)], { inbound: "restarted", reason: "baggage-bad-metadata" }),
    withBaggage("langsmith-metadata cut off mid-object", [`langsmith-metadata=${enc('{"a":"b"')}`], { inbound: "restarted", reason: "baggage-bad-metadata" }),
    withBaggage("9 KiB of baggage", [`vendor=${"v".repeat(9 * 1024)}`], { inbound: "restarted", reason: "baggage-too-large" }),
    withBaggage("1 MiB of baggage", [`vendor=${"v".repeat(1024 * 1024)}`], { inbound: "restarted", reason: "baggage-too-large" }),
    withBaggage("two baggage lines that only together exceed 8 KiB", [`a=${"v".repeat(4500)}`, `b=${"v".repeat(4500)}`], {
      inbound: "restarted",
      reason: "baggage-too-large",
    }),
    withBaggage("langsmith-project redirecting the run", ["langsmith-project=attacker"], {
      inbound: "continued",
      check: async (run, client) => {
        assert.equal(run.extra?.metadata?.["trace.baggage_adjusted"], "project-override-ignored");
        assert.equal(await client.hasProject({ projectName: "attacker" }), false);
      },
    }),
    withBaggage("langsmith-replicas copying the run elsewhere", [`langsmith-replicas=${enc(JSON.stringify([{ projectName: "exfil" }, ["exfil2", null]]))}`], {
      inbound: "continued",
      check: async (run, client) => {
        assert.equal(run.extra?.metadata?.["trace.baggage_adjusted"], "replicas-ignored");
        assert.equal(await client.hasProject({ projectName: "exfil" }), false);
        assert.equal(await client.hasProject({ projectName: "exfil2" }), false);
      },
    }),
    withBaggage("langsmith-replicas that is not even JSON (ignored unread)", ["langsmith-replicas=%7B%7B%7B"], { inbound: "continued" }),
    withBaggage("langsmith-address redirecting to an agent", [`langsmith-address=${enc("lrn:agents/evil/environments/production")}`], {
      inbound: "continued",
      check: (run) => assert.equal(run.extra?.metadata?.["trace.baggage_adjusted"], "address-override-ignored"),
    }),
    withBaggage("100 metadata entries", [meta(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])))], {
      inbound: "continued",
      check: (run) => {
        const fromCaller = Object.keys(run.extra?.metadata ?? {}).filter((k) => /^k\d+$/.test(k));
        assert.equal(fromCaller.length, 32);
        assert.equal(run.extra?.metadata?.["trace.baggage_adjusted"], "metadata-trimmed");
      },
    }),
    withBaggage("__proto__ in metadata", [`langsmith-metadata=${enc('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')}`], {
      inbound: "continued",
      check: () => assert.equal(({} as Record<string, unknown>).polluted, undefined),
    }),
    withBaggage("metadata spoofing the service and the middleware's own keys", [meta({ LANGSMITH_SERVICE: "spoofed", untrusted_parent_trace_id: id, "trace.inbound": "none", "http.route": "/admin" })], {
      inbound: "continued",
      check: (run) => {
        const m = run.extra?.metadata ?? {};
        assert.equal(m.LANGSMITH_SERVICE, "corpus");
        assert.equal(m.untrusted_parent_trace_id, undefined);
        assert.equal(m["trace.inbound"], "continued");
        assert.equal(m["http.route"], "/probe");
      },
    }),
    withBaggage("a 1000-character metadata value", [meta({ big: "b".repeat(1000), small: "s" })], {
      inbound: "continued",
      check: (run) => {
        assert.equal(run.extra?.metadata?.big, undefined);
        assert.equal(run.extra?.metadata?.small, "s");
      },
    }),
    withBaggage("deeply nested metadata", [`langsmith-metadata=${enc(`${'{"a":'.repeat(500)}1${"}".repeat(500)}`)}`], {
      inbound: "continued",
      check: (run) => assert.equal(run.extra?.metadata?.a, undefined),
    }),
    withBaggage("100 tags", [`langsmith-tags=${enc(Array.from({ length: 100 }, (_, i) => `t${i}`).join(","))}`], {
      inbound: "continued",
      check: (run) => assert.equal(run.tags?.length, 32),
    }),
    withBaggage("a tag carrying an encoded CRLF", [`langsmith-tags=${enc("ok,evil\r\nX-Injected: 1")}`], {
      inbound: "continued",
      check: (run) => assert.deepEqual(run.tags, ["ok"]),
    }),
    withBaggage("langsmith-project carrying an encoded CRLF", [`langsmith-project=${enc("p\r\nX-Injected: 1")}`], { inbound: "continued" }),
    withBaggage("langsmith-metadata twice in one header", [`${meta({ a: 1 })},${meta({ a: 2 })}`], { inbound: "restarted", reason: "baggage-duplicate-entry" }),
    withBaggage("two baggage lines with different members", [meta({ line: 1 }), "langsmith-tags=second-line"], {
      inbound: "continued",
      check: (run) => {
        assert.equal(run.extra?.metadata?.line, 1);
        assert.deepEqual(run.tags, ["second-line"]);
      },
    }),
    withBaggage("two baggage lines naming the same member", ["langsmith-tags=a", "langsmith-tags=b"], { inbound: "restarted", reason: "baggage-duplicate-entry" }),
    withBaggage("members without '=' and empty members", ["langsmith-tags,,,=,novalue"], { inbound: "continued" }),
    withBaggage("W3C member properties", ["langsmith-tags=propped;ttl=30;secret"], {
      inbound: "continued",
      check: (run) => assert.deepEqual(run.tags, ["propped"]),
    }),
    withBaggage("raw latin1 bytes in another vendor's member", ["vendor=caf\xe9\xff"], { inbound: "continued" }),
    withBaggage("unencoded JSON with '=' and ':' in it", [`langsmith-metadata={"q":"a=b"}`], {
      inbound: "continued",
      check: (run) => assert.equal(run.extra?.metadata?.q, "a=b"),
    }),
    withBaggage("whitespace around members", [`  ${meta({ spaced: true })}  ,  langsmith-tags=x  `], {
      inbound: "continued",
      check: (run) => assert.equal(run.extra?.metadata?.spaced, true),
    }),
  );

  cases.push(
    { name: "no tracing headers at all", headers: [], mesh: { inbound: "none" } },
    { name: "baggage without langsmith-trace", headers: [["baggage", `langsmith-project=attacker,${meta({ a: 1 })}`]], mesh: { inbound: "none" } },
    { name: "a caller-supplied x-trace-id", headers: [["x-trace-id", id]], mesh: { inbound: "none" } },
    { name: "traceparent only", headers: [["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]], mesh: { inbound: "none" } },
  );
  return cases;
}

interface Outcome {
  response: RawResponse;
  body: { ran?: boolean; runId?: string; currentRunId?: string };
  /** Read back by id from the trace server; a string says why it could not be. */
  run: Run | string;
}

interface Deployment {
  app: Listening;
  warnings: string[];
  outcomes: Map<string, Outcome>;
}

const corpus = buildCorpus();
let traceServer: TraceServerHandle;
let client: Client;
const deployments = new Map<"edge" | "mesh", Deployment>();

async function deploy(trust: TrustPolicy<Request>, project: string): Promise<Deployment> {
  const warnings: string[] = [];
  const ended = countdown<RunTree>(corpus.length);
  const app = express();
  app.use(
    langsmithTracing({
      trust,
      client,
      projectName: project,
      service: "corpus",
      enabled: true,
      logger: { warn: (message) => warnings.push(message) },
      onRunEnd: (run) => ended.tick(run),
    }),
  );
  app.get("/probe", (req, res) => {
    res.json({ ran: true, runId: getRequestRun(req)?.id, currentRunId: currentRun()?.id });
  });
  const listening = await listen(app);
  const responses: Array<[Case, RawResponse]> = [];
  for (const c of corpus) responses.push([c, await rawRequest(listening.port, "/probe", c.headers)]);
  await ended.done;
  await client.awaitPendingTraceBatches();
  const outcomes = new Map<string, Outcome>();
  for (const [c, response] of responses) {
    let body: Outcome["body"] = {};
    let run: Run | string = "no run id in the response";
    try {
      body = JSON.parse(response.body) as Outcome["body"];
      if (body.runId) run = await client.readRun(body.runId);
    } catch (err) {
      run = String(err);
    }
    outcomes.set(c.name, { response, body, run });
  }
  return { app: listening, warnings, outcomes };
}

type ReadOutcome = Outcome & { run: Run };

function outcome(mode: "edge" | "mesh", c: Case): ReadOutcome {
  const found = deployments.get(mode)?.outcomes.get(c.name);
  assert.ok(found, `${mode}: no outcome for ${c.name}`);
  const { run } = found;
  assert.ok(typeof run !== "string", `${c.name}: run not found in the service's trace store: ${String(run)}`);
  return { ...found, run };
}

function assertServed(o: ReadOutcome, c: Case): void {
  assert.ok(o.response.status < 500, `${c.name}: status ${o.response.status}`);
  assert.equal(o.response.status, 200, `${c.name}: status ${o.response.status}`);
  assert.equal(o.body.ran, true);
  // The handler ran inside the request's run, so traceable() calls would nest under it.
  assert.equal(o.body.currentRunId, o.body.runId);
  assert.equal(o.response.headers["x-trace-id"], o.run.trace_id);
  assert.equal(o.run.end_time != null, true, `${c.name}: the run was not ended`);
  assert.equal(o.run.error ?? undefined, undefined);
}

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
  client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  deployments.set("edge", await deploy("edge", "corpus-edge"));
  deployments.set("mesh", await deploy("mesh", "corpus-mesh"));
});

after(async () => {
  for (const d of deployments.values()) await d.app.close();
  await traceServer?.close();
});

test(`the corpus has at least 50 cases (${corpus.length})`, () => {
  assert.ok(corpus.length >= 50);
  assert.equal(new Set(corpus.map((c) => c.name)).size, corpus.length, "case names are unique");
});

describe("edge: nothing inbound is trusted", () => {
  for (const c of corpus) {
    test(c.name, async () => {
      const o = outcome("edge", c);
      assertServed(o, c);
      assert.equal(o.run.parent_run_id ?? undefined, undefined, "a root run");
      assert.equal(o.run.trace_id, o.run.id);
      const m = o.run.extra?.metadata ?? {};
      const sentTrace = c.headers.some(([name]) => name.toLowerCase() === "langsmith-trace");
      assert.equal(m["trace.inbound"], sentTrace ? "restarted" : "none");
      if (c.claimed) {
        assert.notEqual(o.run.trace_id, c.claimed.traceId);
        assert.equal(m.untrusted_parent_trace_id, c.claimed.traceId);
        assert.equal(m.untrusted_parent_run_id, c.claimed.parentRunId);
      } else {
        assert.equal(m.untrusted_parent_trace_id, undefined);
      }
      // Baggage from an untrusted caller is not applied at all.
      assert.equal(m.tenant, undefined);
      assert.deepEqual(o.run.tags ?? [], []);
      const project = await client.readProject({ projectName: "corpus-edge" });
      assert.equal(o.run.session_id, project.id);
    });
  }
  test("no warnings: untrusted headers at a public edge are normal traffic", () => {
    assert.deepEqual(deployments.get("edge")?.warnings, []);
  });
});

describe("mesh: valid context is continued, anything malformed restarts with a warning", () => {
  for (const c of corpus) {
    test(c.name, async () => {
      const o = outcome("mesh", c);
      assertServed(o, c);
      const m = o.run.extra?.metadata ?? {};
      assert.equal(m["trace.inbound"], c.mesh.inbound);
      if (c.mesh.inbound === "continued") {
        assert.ok(c.claimed);
        assert.equal(o.run.parent_run_id, c.claimed.parentRunId);
        assert.equal(o.run.trace_id, c.claimed.traceId);
        assert.equal(o.response.headers["x-trace-id"], c.claimed.traceId);
        await c.mesh.check?.(o.run, client);
      } else {
        assert.equal(o.run.parent_run_id ?? undefined, undefined);
        assert.equal(o.run.trace_id, o.run.id);
        if (c.claimed) assert.notEqual(o.run.trace_id, c.claimed.traceId);
      }
      if (c.mesh.inbound === "restarted") {
        assert.equal(m["trace.inbound_reason"], c.mesh.reason);
        const warnings = deployments.get("mesh")?.warnings ?? [];
        assert.ok(warnings.some((w) => w.includes(`cause: ${c.mesh.inbound === "restarted" ? c.mesh.reason : ""};`)), `no warning for ${c.mesh.reason}`);
      }
      const project = await client.readProject({ projectName: "corpus-mesh" });
      assert.equal(o.run.session_id, project.id, "the run stays in the service's own project");
    });
  }
  test("each cause is reported once, however often it recurs", () => {
    const warnings = deployments.get("mesh")?.warnings ?? [];
    const causes = warnings.map((w) => /cause: ([a-z-]+);/.exec(w)?.[1]);
    assert.equal(new Set(causes).size, warnings.length);
    const restartedCases = corpus.filter((c) => c.mesh.inbound === "restarted").length;
    assert.ok(warnings.length < restartedCases, `${warnings.length} warnings for ${restartedCases} rejected cases`);
  });
});
