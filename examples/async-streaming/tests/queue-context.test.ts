// The broker-agnostic half of the queue pattern, in one process: what goes
// into a message's metadata, what comes out of any metadata a consumer may
// receive (never an exception), and the consumer's run for each case.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { continueTrace, extractTraceContext, injectTraceContext, type TraceCarrier } from "../index.js";
import { byName, isolateEnv, metadataOf, readProjectTraces, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;
let client: Client;

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("producer", "queue-context"));
  client = new Client({ apiUrl: stack.traces.url, apiKey: "local" });
});

after(async () => {
  await stack?.close();
});

const VALID = "20250101T000000000000Z0193f1e2-7a6b-7c3d-8e9f-0123456789ab";

describe("injectTraceContext", () => {
  test("outside a trace it adds nothing; inside, the run's dotted order and baggage without the service label", async () => {
    assert.deepEqual(injectTraceContext({ "x-other": "kept" }), { "x-other": "kept" });
    let carrier: TraceCarrier = {};
    let run: RunTree | undefined;
    await traceable(
      async () => {
        carrier = injectTraceContext({ "x-other": "kept" });
      },
      { name: "produce", metadata: { tenant: "acme", LANGSMITH_SERVICE: "producer" }, on_start: (r) => (run = r) },
    )();
    assert.ok(run);
    assert.equal(carrier["x-other"], "kept");
    assert.equal(carrier["langsmith-trace"], run.dotted_order);
    assert.match(carrier.baggage ?? "", /langsmith-metadata=/);
    assert.match(decodeURIComponent(carrier.baggage ?? ""), /"tenant":"acme"/);
    assert.doesNotMatch(decodeURIComponent(carrier.baggage ?? ""), /LANGSMITH_SERVICE/);
  });
});

describe("extractTraceContext never throws", () => {
  const cases: Array<[string, unknown, string]> = [
    ["undefined", undefined, "none"],
    ["null", null, "none"],
    ["empty object", {}, "none"],
    ["a string", VALID, "restarted:metadata-not-an-object"],
    ["an array", [VALID], "restarted:metadata-not-an-object"],
    ["a number as trace", { "langsmith-trace": 7 }, "restarted:trace-context-not-a-string"],
    ["an object as baggage", { "langsmith-trace": VALID, baggage: { a: 1 } }, "restarted:baggage-not-a-string"],
    ["garbage trace", { "langsmith-trace": "x" }, "restarted:trace-header-malformed"],
    ["path-like trace", { "langsmith-trace": "Z../../etc" }, "restarted:trace-header-malformed"],
    ["impossible date", { "langsmith-trace": "20251399T000000000000Z0193f1e2-7a6b-7c3d-8e9f-0123456789ab" }, "restarted:trace-header-malformed"],
    ["too long", { "langsmith-trace": `${VALID}.`.repeat(200) }, "restarted:trace-header-too-long"],
    ["bad percent-encoding", { "langsmith-trace": VALID, baggage: "langsmith-metadata=%E0%A4%A" }, "restarted:baggage-bad-encoding"],
    ["metadata not JSON", { "langsmith-trace": VALID, baggage: "langsmith-metadata=%7Bnope" }, "restarted:baggage-bad-metadata"],
    ["valid", { "langsmith-trace": VALID }, "continued"],
    ["valid, in capitals", { "langsmith-trace": VALID.toUpperCase() }, "continued"],
    ["a project override", { "langsmith-trace": VALID, baggage: "langsmith-project=attacker" }, "continued"],
  ];
  for (const [label, carrier, expected] of cases) {
    test(label, () => {
      const result = extractTraceContext(carrier);
      assert.equal(result.kind === "restarted" ? `restarted:${result.reason}` : result.kind, expected);
      if (result.kind === "continued") {
        assert.equal(result.parent.trace_id, "0193f1e2-7a6b-7c3d-8e9f-0123456789ab");
        // A message cannot choose where the consumer writes.
        assert.notEqual(result.parent.project_name, "attacker");
      }
    });
  }
});

describe("continueTrace", () => {
  test("continues, starts roots, warns once per cause, and rethrows the handler's error after recording it", async () => {
    process.env.LANGSMITH_PROJECT = "continue-trace";
    const warnings: string[] = [];
    const logger = { warn: (m: string) => warnings.push(m) };
    let carrier: TraceCarrier = {};
    let producerTrace = "";
    await traceable(
      async () => {
        carrier = injectTraceContext();
      },
      { name: "produce", on_start: (r) => (producerTrace = r?.trace_id ?? "") },
    )();
    const step = traceable(async (n: number) => n * 2, { name: "step" });

    assert.equal(await continueTrace(carrier, { name: "consume", logger }, () => step(21)), 42);
    assert.deepEqual(await continueTrace(undefined, { name: "consume-untraced", logger }, () => ({ ok: true })), { ok: true });
    for (let i = 0; i < 3; i++) await continueTrace({ "langsmith-trace": "garbage" }, { name: "consume-malformed", logger }, () => i);
    await assert.rejects(continueTrace(carrier, { name: "consume-failing", logger }, () => Promise.reject(new Error("handler failed"))), /handler failed/);
    // Tracing off: the handler still runs, with no run, and nothing is sent.
    assert.equal(await continueTrace(carrier, { name: "consume-tracing-off", logger, enabled: false }, (run) => (run === undefined ? "untraced" : "traced")), "untraced");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /\[langsmith-queue\] Started a new trace .*trace-header-malformed/);

    await RunTree.getSharedClient().awaitPendingTraceBatches();
    const traces = await readProjectTraces(client, "continue-trace");
    const producer = traces.get(producerTrace) ?? [];
    const consume = byName(producer, "consume");
    assert.equal(consume.parent_run_id, byName(producer, "produce").id);
    assert.equal(metadataOf(consume)["trace.inbound"], "continued");
    assert.deepEqual(consume.outputs, { output: 42 });
    assert.equal(byName(producer, "step").parent_run_id, consume.id);
    const failing = byName(producer, "consume-failing");
    assert.match(failing.error ?? "", /^Error: handler failed/);

    assert.ok(![...traces.values()].flat().some((r) => r.name === "consume-tracing-off"));
    const roots = [...traces.values()].flat().filter((r) => !r.parent_run_id && r.name !== "produce");
    assert.deepEqual(roots.map((r) => r.name).sort(), ["consume-malformed", "consume-malformed", "consume-malformed", "consume-untraced"]);
    for (const root of roots) assert.equal(metadataOf(root)["trace.inbound"], root.name === "consume-untraced" ? "none" : "restarted");
  });

  test("a continued run keeps the producer's tags from baggage, merged with its own", async () => {
    process.env.LANGSMITH_PROJECT = "continue-trace-tags";
    let carrier: TraceCarrier = {};
    let producerTrace = "";
    await traceable(
      async () => {
        carrier = injectTraceContext();
      },
      { name: "produce", tags: ["tier:gold", "shared"], on_start: (r) => (producerTrace = r?.trace_id ?? "") },
    )();
    assert.equal(extractTraceContext(carrier).kind, "continued");
    await continueTrace(carrier, { name: "consume-tagged", tags: ["consumer", "shared"] }, () => "done");

    await RunTree.getSharedClient().awaitPendingTraceBatches();
    const consume = byName((await readProjectTraces(client, "continue-trace-tags")).get(producerTrace) ?? [], "consume-tagged");
    assert.deepEqual([...(consume.tags ?? [])].sort(), ["consumer", "shared", "tier:gold"]);
  });
});
