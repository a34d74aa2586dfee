// OTLP ingest of the local trace server, driven by the official OpenTelemetry exporters: spans
// read back through the langsmith SDK's Client as runs with LangSmith's mapping, late parents,
// mixed native/OTel traces, and spans whose parent never arrives (kept, flagged as orphans).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { SpanKind, SpanStatusCode, type Span } from "@opentelemetry/api";
import type { Run } from "langsmith/schemas";
import { RunTree } from "langsmith/run_trees";
import { otlpIngestFor } from "../setup/src/trace-server/otlp/ingest.js";
import { verifyTrace } from "../setup/src/traces/index.js";
import { collect, sdkClient, serverFor } from "./fixtures/trace-server/helpers.js";
import { eventually, otelTracer, runIdOf, under } from "./fixtures/otlp/helpers.js";

const msOf = (span: Span): number => {
  const [s, ns] = (span as unknown as { startTime: [number, number] }).startTime;
  return s * 1000 + ns / 1e6;
};

function byName(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  assert.ok(run, `no run named ${name} among ${runs.map((r) => r.name).join(", ")}`);
  return run;
}

for (const variant of [
  { format: "protobuf", path: "/otel/v1/traces", gzip: true, processor: "simple" },
  { format: "json", path: "/api/v1/otel/v1/traces", gzip: false, processor: "batch" },
] as const) {
  test(`spans from the official OTLP ${variant.format} exporter (${variant.processor} processor, ${variant.path}) read back through the SDK as one tree`, async (t) => {
    const log: string[] = [];
    const server = await serverFor(t, { log: (line) => log.push(line) });
    const project = `otlp-${variant.format}-${randomUUID().slice(0, 8)}`;
    const otel = otelTracer(server, { ...variant, project, service: "checkout-api" });
    const { tracer } = otel;

    const root = tracer.startSpan("POST /checkout", { kind: SpanKind.SERVER, attributes: { "http.request.method": "POST", "http.route": "/checkout" } });
    const retrieve = tracer.startSpan(
      "retrieve_docs",
      { attributes: { "langsmith.span.kind": "retriever", "input.value": JSON.stringify({ query: "refund policy" }), "output.value": JSON.stringify({ documents: ["doc-1", "doc-2"] }) } },
      under(root),
    );
    retrieve.end();
    const llm = tracer.startSpan(
      "ChatOpenAI",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "gen_ai.system": "openai",
          "gen_ai.operation.name": "chat",
          "gen_ai.request.model": "gpt-4o-mini",
          "gen_ai.request.temperature": 0.2,
          "gen_ai.prompt.0.role": "system",
          "gen_ai.prompt.0.content": "Be brief.",
          "gen_ai.prompt.1.role": "user",
          "gen_ai.prompt.1.content": "Can I get a refund?",
          "gen_ai.completion.0.role": "assistant",
          "gen_ai.completion.0.content": "Within 30 days.",
          "gen_ai.usage.input_tokens": 12,
          "gen_ai.usage.output_tokens": 5,
          "langsmith.metadata.user_id": "u-7",
          "langsmith.span.tags": "checkout, llm",
        },
      },
      under(root),
    );
    llm.end();
    const tool = tracer.startSpan("charge_card", { attributes: { "langsmith.span.kind": "tool", "gen_ai.tool.name": "charge_card" } }, under(root));
    tool.recordException(new Error("card declined"));
    tool.setStatus({ code: SpanStatusCode.ERROR, message: "card declined" });
    tool.end();
    root.end();
    await otel.provider.forceFlush();
    await otel.provider.shutdown();

    const client = sdkClient(server);
    const runs = await collect(client.listRuns({ projectName: project }));
    assert.equal(runs.length, 4, JSON.stringify(runs.map((r) => r.name)));
    const rootRun = byName(runs, "POST /checkout");
    assert.equal(rootRun.id, runIdOf(root));
    assert.equal(rootRun.parent_run_id ?? null, null);
    assert.equal(rootRun.run_type, "chain");
    assert.equal(rootRun.trace_id, rootRun.id);
    assert.equal(rootRun.extra?.metadata?.["service.name"], "checkout-api");
    assert.equal(rootRun.extra?.metadata?.["http.route"], "/checkout");
    assert.equal(rootRun.extra?.otel?.kind, "SERVER");
    assert.equal(rootRun.extra?.otel?.trace_id, root.spanContext().traceId);
    assert.ok(Math.abs(Date.parse(String(rootRun.start_time)) - msOf(root)) < 1, `start ${String(rootRun.start_time)} vs ${msOf(root)}`);
    for (const run of runs) {
      assert.equal(run.trace_id, rootRun.id, `${run.name} is in another trace`);
      if (run !== rootRun) assert.equal(run.parent_run_id, rootRun.id, `${run.name}'s parent`);
      assert.ok(run.end_time, `${run.name} has no end time`);
    }

    const retriever = byName(runs, "retrieve_docs");
    assert.equal(retriever.id, runIdOf(retrieve));
    assert.equal(retriever.run_type, "retriever");
    assert.deepEqual(retriever.inputs, { query: "refund policy" });
    assert.deepEqual(retriever.outputs, { documents: ["doc-1", "doc-2"] });

    const model = await client.readRun(runIdOf(llm));
    assert.equal(model.run_type, "llm");
    assert.deepEqual(model.inputs, { messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Can I get a refund?" }] });
    assert.deepEqual(model.outputs?.messages, [{ role: "assistant", content: "Within 30 days." }]);
    assert.deepEqual([model.prompt_tokens, model.completion_tokens, model.total_tokens], [12, 5, 17]);
    assert.deepEqual(model.extra?.invocation_params, { model: "gpt-4o-mini", temperature: 0.2 });
    assert.equal(model.extra?.metadata?.ls_provider, "openai");
    assert.equal(model.extra?.metadata?.user_id, "u-7");
    assert.deepEqual(model.tags, ["checkout", "llm"]);

    const charge = byName(runs, "charge_card");
    assert.equal(charge.run_type, "tool");
    assert.equal(charge.status, "error");
    assert.match(String(charge.error), /card declined/);
    assert.equal(charge.extra?.invocation_params?.tool_name, "charge_card");

    const report = verifyTrace(runs, { services: ["checkout-api"], rootName: "POST /checkout", traceId: rootRun.id });
    assert.ok(report.ok, report.problems.join("; "));
    assert.deepEqual(server.store.listTraces({ projectName: project })[0]?.services, ["checkout-api"]);
    const exports = log.filter((l) => l.startsWith(`POST ${variant.path} 200 `));
    assert.ok(exports.length > 0, log.join("\n"));
    for (const line of exports) assert.ok(line.includes(variant.gzip ? `(${variant.format}, gzip)` : `(${variant.format})`), line);
  });
}

test("a trace mixing native SDK runs and OTel spans is one tree wherever the ids link, in either direction", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const project = `mixed-${randomUUID().slice(0, 8)}`;
  const otel = otelTracer(server, { format: "protobuf", project, service: "gateway", processor: "simple" });

  // An OTel HTTP span is the root; a native run continues it from its dotted order, as from a langsmith-trace header.
  const gateway = otel.tracer.startSpan("GET /answer", { kind: SpanKind.SERVER });
  gateway.end();
  await otel.provider.forceFlush();
  const gatewayRun = await client.readRun(runIdOf(gateway));
  const continued = RunTree.fromHeaders({ "langsmith-trace": String(gatewayRun.dotted_order) }, { client, project_name: project });
  assert.ok(continued);
  const native = continued.createChild({ name: "answer", run_type: "chain", inputs: { q: "hi" } });
  await native.postRun();
  await client.awaitPendingTraceBatches();

  // An OTel span naming the stored native run as its parent through langsmith.span.parent_id,
  // sent before the native run ends: it is stored at once, under the native run.
  const llm = otel.tracer.startSpan("llm-call", { attributes: { "langsmith.span.parent_id": native.id, "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2 } });
  llm.end();
  await otel.provider.forceFlush();
  assert.equal(server.store.getRun(runIdOf(llm))?.parent_run_id, native.id);
  await native.end({ answer: "hello" });
  await native.patchRun();
  await client.awaitPendingTraceBatches();

  // And one whose native parent arrives only after it: it waits, then joins the tree.
  const lateParent = new RunTree({ name: "late-native", run_type: "chain", inputs: {}, client, project_name: project, parent_run: native });
  const early = otel.tracer.startSpan("early-span", { attributes: { "langsmith.span.parent_id": lateParent.id } });
  early.end();
  await otel.provider.forceFlush();
  assert.deepEqual(otlpIngestFor(server.store).listPending().map((p) => p.run_id), [runIdOf(early)]);
  await lateParent.postRun();
  await client.awaitPendingTraceBatches();
  otlpIngestFor(server.store).sweep();
  assert.deepEqual(otlpIngestFor(server.store).listPending(), []);

  const runs = await collect(client.listRuns({ projectName: project }));
  assert.deepEqual(runs.map((r) => r.name).sort(), ["GET /answer", "answer", "early-span", "late-native", "llm-call"]);
  for (const run of runs) assert.equal(run.trace_id, gatewayRun.id, `${run.name} is in another trace`);
  assert.equal(byName(runs, "answer").parent_run_id, gatewayRun.id);
  assert.equal(byName(runs, "llm-call").parent_run_id, native.id);
  assert.equal(byName(runs, "llm-call").total_tokens, 5);
  assert.equal(byName(runs, "early-span").parent_run_id, lateParent.id);
  const report = verifyTrace(runs, { traceId: gatewayRun.id, rootName: "GET /answer", services: ["gateway"] });
  assert.equal(report.orphanCount, 0, report.problems.join("; "));
  assert.equal(report.rootCount, 1);
  await otel.provider.shutdown();
});

test("a span whose parent never arrives is stored as an orphan in its trace once the wait is over", async (t) => {
  const server = await serverFor(t);
  const client = sdkClient(server);
  const project = `orphans-${randomUUID().slice(0, 8)}`;
  const otel = otelTracer(server, { format: "json", project, service: "worker", processor: "simple" });

  const root = otel.tracer.startSpan("job");
  const lost = otel.tracer.startSpan("lost-parent", {}, under(root));
  const child = otel.tracer.startSpan("orphan-child", { attributes: { "langsmith.span.kind": "tool" } }, under(lost));
  const grandchild = otel.tracer.startSpan("orphan-grandchild", {}, under(child));
  grandchild.end();
  child.end();
  root.end();
  // lost-parent never ends, so it is never exported: its children wait for it.
  await otel.provider.forceFlush();

  const ingest = otlpIngestFor(server.store);
  assert.deepEqual(ingest.listPending().map((p) => p.name).sort(), ["orphan-child", "orphan-grandchild"]);
  await assert.rejects(client.readRun(runIdOf(child)), /not found|404/i);

  // LangSmith would drop them when its buffer expires; here the wait ends and they are kept.
  ingest.sweep(Date.now() + 61_000);
  assert.deepEqual(ingest.listPending(), []);
  const orphan = await client.readRun(runIdOf(child));
  assert.equal(orphan.parent_run_id, runIdOf(lost));
  assert.equal(orphan.trace_id, runIdOf(root), "the orphan stays in its OTel trace's LangSmith trace");
  assert.equal(orphan.extra?.otel?.orphan?.missing_parent_run_id, runIdOf(lost));
  const below = await client.readRun(runIdOf(grandchild));
  assert.equal(below.parent_run_id, orphan.id);
  assert.equal(below.trace_id, runIdOf(root));

  const runs = await collect(client.listRuns({ projectName: project }));
  const report = verifyTrace(runs, { traceId: runIdOf(root) });
  assert.equal(report.ok, false);
  assert.equal(report.orphanCount, 1, report.problems.join("; "));
  const [summary] = server.store.listTraces({ projectName: project });
  assert.equal(summary?.orphan_count, 1);
  assert.equal(summary?.run_count, 3);
  await otel.provider.shutdown();
});

test("without a stored root, an orphan lands in a trace named after its OTel trace id, and the timer stores it unprompted", async (t) => {
  const server = await serverFor(t, { otlp: { orphanAfterMs: 200 } });
  const client = sdkClient(server);
  const otel = otelTracer(server, { format: "protobuf", project: "timer-orphans", service: "worker", processor: "simple" });
  const parent = otel.tracer.startSpan("never-sent");
  const child = otel.tracer.startSpan("waits", {}, under(parent));
  child.end();
  await otel.provider.forceFlush();
  const run = await eventually(() => server.store.getRun(runIdOf(child)), "the orphan to be stored by the timer");
  const otelTraceId = child.spanContext().traceId;
  const expectedTrace = `${otelTraceId.slice(0, 8)}-${otelTraceId.slice(8, 12)}-${otelTraceId.slice(12, 16)}-${otelTraceId.slice(16, 20)}-${otelTraceId.slice(20)}`;
  assert.equal(run.trace_id, expectedTrace);
  assert.equal(run.parent_run_id, runIdOf(parent));
  assert.equal((await client.readRun(run.id)).name, "waits");
  const [summary] = server.store.listTraces({ projectName: "timer-orphans" });
  assert.equal(summary?.root_run_id, null);
  assert.equal(summary?.orphan_count, 1);
  await otel.provider.shutdown();
});

test("the viewer draws OTel HTTP spans as chains in their service's colour, and a hop between services as W3C context", async (t) => {
  const server = await serverFor(t);
  const frontend = otelTracer(server, { format: "protobuf", project: "viewer-otel", service: "frontend" });
  const backend = otelTracer(server, { format: "json", project: "viewer-otel", service: "backend" });
  const root = frontend.tracer.startSpan("GET /search", { kind: SpanKind.SERVER });
  const call = frontend.tracer.startSpan("GET backend", { kind: SpanKind.CLIENT }, under(root));
  const served = backend.tracer.startSpan("GET /lookup", { kind: SpanKind.SERVER }, under(call));
  served.end();
  call.end();
  root.end();
  await Promise.all([frontend.provider.shutdown(), backend.provider.shutdown()]);

  const traceId = runIdOf(root);
  const res = await fetch(`${server.url}/traces/${traceId}?run=${runIdOf(served)}`);
  assert.equal(res.status, 200);
  const html = await res.text();
  for (const [span, service] of [[root, "frontend"], [call, "frontend"], [served, "backend"]] as const) {
    assert.match(html, new RegExp(`data-run-id="${runIdOf(span)}"[^>]*data-service="${service}"`), `${runIdOf(span)} labelled ${service}`);
  }
  assert.match(html, /class="legend-item" data-service="backend"/);
  assert.match(html, /class="legend-item" data-service="frontend"/);
  assert.ok(!/\(inherited\)/.test(html), "each span names its own service");
  assert.match(html, /continued by <b>backend<\/b> from <b>frontend<\/b>, through propagated OpenTelemetry context \(W3C <code>traceparent<\/code>\)/);
  assert.deepEqual(server.store.getTraceRuns(traceId).map((r) => r.run_type), ["chain", "chain", "chain"]);
  assert.deepEqual(server.store.listTraces({ projectName: "viewer-otel" })[0]?.services, ["backend", "frontend"]);
});
