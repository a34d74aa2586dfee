// Bad input to the trace server's OTLP ingest: malformed protobuf and JSON, wrong content types
// and encodings, oversized and compressed-bomb bodies, missing keys, and bad spans among good
// ones. Each gets a 4xx (or a partial success) in OTLP's response shape, the server keeps
// serving, and the good spans of a request are stored.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { promisify } from "node:util";
import zlib from "node:zlib";
import protobuf from "protobufjs";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { MAX_SPANS_PER_REQUEST, requestType, responseType } from "../setup/src/trace-server/otlp/decode.js";
import { otlpIngestFor } from "../setup/src/trace-server/otlp/ingest.js";
import { spanIdToRunId } from "../setup/src/trace-server/otlp/mapping.js";
import { DERIVE_BUDGET, MAX_SPAN_DEPTH } from "../setup/src/trace-server/otlp/plan.js";
import { eventually } from "./fixtures/otlp/helpers.js";
import { LOCAL_KEY, serverFor } from "./fixtures/trace-server/helpers.js";

const statusType = protobuf.Root.fromJSON({
  nested: { google: { nested: { rpc: { nested: { Status: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } } } } } } },
}).lookupType("google.rpc.Status");

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");

interface JsonSpanSpec {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name: string;
  attributes?: Record<string, string | number>;
}

/** An OTLP/JSON span as the JSON exporter writes it: hex ids, nanosecond strings, typed values. */
function jsonSpan(spec: JsonSpanSpec): Record<string, unknown> {
  const start = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId: spec.traceId ?? hex(16),
    spanId: spec.spanId ?? hex(8),
    ...(spec.parentSpanId ? { parentSpanId: spec.parentSpanId } : {}),
    name: spec.name,
    kind: 1,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 1_000_000n),
    attributes: Object.entries(spec.attributes ?? {}).map(([key, v]) => ({ key, value: typeof v === "number" ? { intValue: String(v) } : { stringValue: v } })),
    status: {},
  };
}

function jsonRequest(spans: ReadonlyArray<Record<string, unknown>>, service = "input-tests"): Record<string, unknown> {
  return { resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: "t" }, spans }] }] };
}

async function post(server: TraceServerHandle, body: Uint8Array | string, headers: Record<string, string>, path = "/otel/v1/traces"): Promise<{ status: number; type: string; body: Buffer }> {
  const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "x-api-key": LOCAL_KEY, ...headers }, body: typeof body === "string" ? body : Buffer.from(body) });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: Buffer.from(await res.arrayBuffer()) };
}

const postJson = (server: TraceServerHandle, value: unknown): ReturnType<typeof post> => post(server, JSON.stringify(value), { "content-type": "application/json" });

/** The server still answers and still stores spans. */
async function assertServing(server: TraceServerHandle): Promise<void> {
  const span = jsonSpan({ name: "still-serving" });
  const res = await postJson(server, jsonRequest([span]));
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(server.store.getRun(spanIdToRunId(String(span.spanId)))?.name, "still-serving");
}

test("malformed protobuf and JSON, wrong content types and encodings: a 4xx google.rpc.Status in the request's encoding, server alive", async (t) => {
  const server = await serverFor(t);
  const valid = Buffer.from(requestType.encode(requestType.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: "x", startTimeUnixNano: "1700000000000000000" }] }] }] })).finish());
  const protobufCases: Array<[string, Uint8Array]> = [
    ["a length beyond the body", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
    ["a truncated message", valid.subarray(0, valid.length - 5)],
    ["an invalid wire type", Buffer.from([0x0f, 0x01])],
  ];
  for (const [what, body] of protobufCases) {
    const res = await post(server, body, { "content-type": "application/x-protobuf" });
    assert.equal(res.status, 400, what);
    assert.equal(res.type, "application/x-protobuf", what);
    const status = statusType.toObject(statusType.decode(res.body)) as { code: number; message: string };
    assert.equal(status.code, 3, what);
    assert.match(status.message, /not an OTLP ExportTraceServiceRequest in protobuf/, what);
  }
  const jsonCases: Array<[string, string, RegExp]> = [
    ["broken JSON", '{"resourceSpans": [', /not valid JSON/],
    ["an empty body", "", /empty/],
    ["a list instead of an object", "[]", /must be a JSON object/],
    ["resourceSpans not a list", '{"resourceSpans": "x"}', /resourceSpans must be a list/],
  ];
  for (const [what, body, message] of jsonCases) {
    const res = await post(server, body, { "content-type": "application/json; charset=utf-8" });
    assert.equal(res.status, 400, what);
    assert.match(res.type, /^application\/json/, what);
    const status = JSON.parse(res.body.toString()) as { code: number; message: string };
    assert.equal(status.code, 3, what);
    assert.match(status.message, message, what);
  }
  for (const contentType of ["text/plain", "application/x-www-form-urlencoded", ""]) {
    const res = await post(server, JSON.stringify(jsonRequest([])), contentType ? { "content-type": contentType } : {});
    assert.equal(res.status, 415, contentType);
    assert.match((JSON.parse(res.body.toString()) as { message: string }).message, /application\/x-protobuf or application\/json/);
  }
  const unknownEncoding = await post(server, valid, { "content-type": "application/x-protobuf", "content-encoding": "compress" });
  assert.equal(unknownEncoding.status, 415);
  assert.match((statusType.toObject(statusType.decode(unknownEncoding.body)) as { message: string }).message, /Content-Encoding/);
  const corruptGzip = await post(server, randomBytes(64), { "content-type": "application/x-protobuf", "content-encoding": "gzip" });
  assert.equal(corruptGzip.status, 400);
  // Only the OTLP route answers in OTLP's shape: the app's usual 404 elsewhere.
  const wrongPath = await post(server, valid, { "content-type": "application/x-protobuf" }, "/v1/traces");
  assert.equal(wrongPath.status, 404);
  await assertServing(server);
});

test("oversized bodies are refused with 413 and compression bombs are cut at the limit; the server keeps serving", async (t) => {
  const server = await serverFor(t, { maxBodyBytes: 64 * 1024 });
  const big = JSON.stringify(jsonRequest([jsonSpan({ name: "big", attributes: { blob: "x".repeat(200 * 1024) } })]));
  const oversized = await post(server, big, { "content-type": "application/json" });
  assert.equal(oversized.status, 413);
  assert.match((JSON.parse(oversized.body.toString()) as { message: string }).message, /exceeds the limit of 65536 bytes/);
  const bomb = await promisify(zlib.gzip)(Buffer.alloc(20 * 1024 * 1024));
  assert.ok(bomb.length < 64 * 1024);
  const bombed = await post(server, bomb, { "content-type": "application/x-protobuf", "content-encoding": "gzip" });
  assert.equal(bombed.status, 413);
  assert.match((statusType.toObject(statusType.decode(bombed.body)) as { message: string }).message, /decompressed \(gzip\) request body exceeds/);
  await assertServing(server);
});

test("a request of more than MAX_SPANS_PER_REQUEST spans is refused whole with 413 before any is stored (one request must not hold the server); at the limit it is stored", async (t) => {
  const server = await serverFor(t, { maxBodyBytes: 16 * 1024 * 1024 });
  const spans = (n: number): Array<Record<string, unknown>> => Array.from({ length: n }, (_, i) => jsonSpan({ name: `s${i}` }));
  const over = spans(MAX_SPANS_PER_REQUEST + 1);
  const refused = await postJson(server, jsonRequest(over));
  assert.equal(refused.status, 413, refused.body.toString());
  assert.match((JSON.parse(refused.body.toString()) as { message: string }).message, new RegExp(`holds ${MAX_SPANS_PER_REQUEST + 1} spans, over the limit of ${MAX_SPANS_PER_REQUEST}`));
  assert.equal(server.store.getRun(spanIdToRunId(String(over[0]?.spanId))), undefined);
  const atLimit = spans(MAX_SPANS_PER_REQUEST);
  const stored = await postJson(server, jsonRequest(atLimit));
  assert.equal(stored.status, 200, stored.body.toString());
  assert.equal(server.store.getRun(spanIdToRunId(String(atLimit.at(-1)?.spanId)))?.name, `s${MAX_SPANS_PER_REQUEST - 1}`);
  await assertServing(server);
});

test("bad spans among good ones: 200 with partialSuccess counting them, the good ones stored, the reasons recorded", async (t) => {
  const server = await serverFor(t);
  const good = jsonSpan({ name: "good" });
  const loopA = hex(8);
  const loopB = hex(8);
  const deepList = `${"[".repeat(5000)}${"]".repeat(5000)}`;
  const spans = [
    jsonSpan({ name: "short-id", spanId: "abc" }),
    jsonSpan({ name: "bad-override", attributes: { "langsmith.span.id": "not-a-uuid" } }),
    jsonSpan({ name: "unknown-project", attributes: { "langsmith.trace.session_id": "6f1f2c43-9d7e-4f57-a5a5-1d0c8f2b9e11" } }),
    jsonSpan({ name: "loop-a", spanId: loopA, parentSpanId: loopB }),
    jsonSpan({ name: "loop-b", spanId: loopB, parentSpanId: loopA }),
    { ...jsonSpan({ name: "nesting-bomb" }), attributes: [{ key: "deep", value: nested(400) }] },
    jsonSpan({ name: "deep-prompt", attributes: { "gen_ai.prompt": deepList } }),
    good,
  ];
  const res = await postJson(server, jsonRequest(spans));
  assert.equal(res.status, 200, res.body.toString());
  const answer = JSON.parse(res.body.toString()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
  assert.equal(answer.partialSuccess?.rejectedSpans, "6", res.body.toString());
  assert.match(answer.partialSuccess?.errorMessage ?? "", /spanId must be 8 bytes/);
  assert.equal(server.store.getRun(spanIdToRunId(String(good.spanId)))?.name, "good");
  // A prompt too deeply nested to store as JSON is kept as its text, not refused.
  const deep = server.store.getRun(spanIdToRunId(String(spans[6]?.spanId)));
  assert.deepEqual(deep?.inputs, { input: deepList });

  const rejections = await (await fetch(`${server.url}/api/rejections`, { headers: { "x-api-key": LOCAL_KEY } })).json() as { rejections: Array<{ rule: string; message: string; route: string }> };
  const rules = rejections.rejections.map((r) => `${r.rule}: ${r.message}`);
  assert.equal(rules.length, 6, rules.join("\n"));
  assert.ok(rejections.rejections.every((r) => r.route === "/otel/v1/traces"));
  for (const expected of [/invalid_field: .*spanId must be 8 bytes/, /invalid_uuid: .*langsmith\.span\.id must be a UUID/, /unknown_project: .*names no project/, /invalid_field: .*loops back to itself/, /invalid_field: .*deeper than/]) {
    assert.ok(rules.some((r) => expected.test(r)), `${expected} not among\n${rules.join("\n")}`);
  }

  // The same in protobuf: the partial success is an ExportTraceServiceResponse.
  const request = requestType.fromObject({
    resourceSpans: [{ scopeSpans: [{ spans: [
      { traceId: randomBytes(16), spanId: randomBytes(3), name: "short", startTimeUnixNano: "1700000000000000000" },
      { traceId: randomBytes(16), spanId: randomBytes(8), name: "fine", startTimeUnixNano: "1700000000000000000" },
    ] }] }],
  });
  const proto = await post(server, requestType.encode(request).finish(), { "content-type": "application/x-protobuf" });
  assert.equal(proto.status, 200);
  assert.equal(proto.type, "application/x-protobuf");
  const decoded = responseType.toObject(responseType.decode(proto.body), { longs: String, bytes: String, enums: Number, arrays: true, defaults: false }) as { partialSuccess?: { rejectedSpans?: string } };
  assert.equal(decoded.partialSuccess?.rejectedSpans, "1");
  assert.equal(server.store.listTraces({ limit: 100 }).filter((s) => s.root_name === "fine").length, 1);
  await assertServing(server);
});

test("with an API key configured, an export without it is refused with 401 in OTLP's shape and stores nothing", async (t) => {
  const server = await serverFor(t, { apiKey: "s3cret" });
  const span = jsonSpan({ name: "keyed" });
  const body = JSON.stringify(jsonRequest([span]));
  const refused = await fetch(`${server.url}/otel/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body });
  assert.equal(refused.status, 401);
  assert.match(((await refused.json()) as { message: string }).message, /missing API key/);
  assert.equal(server.store.getRun(spanIdToRunId(String(span.spanId))), undefined);
  const accepted = await fetch(`${server.url}/otel/v1/traces`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": "s3cret" }, body });
  assert.equal(accepted.status, 200);
  assert.equal(server.store.getRun(spanIdToRunId(String(span.spanId)))?.name, "keyed");
});

/** An AnyValue nesting `levels` kvlists deep. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { stringValue: "bottom" };
  for (let i = 0; i < levels; i++) value = { kvlistValue: { values: [{ key: "k", value }] } };
  return value;
}

test("a chain of spans nests at most MAX_SPAN_DEPTH levels, whether it arrives in one request or waits for its root", async (t) => {
  const server = await serverFor(t);
  const chain = (traceId: string, rootId: string, length: number): Array<Record<string, unknown>> => {
    const ids = [rootId, ...Array.from({ length }, () => hex(8))];
    return ids.map((spanId, i) => jsonSpan({ traceId, spanId, parentSpanId: i === 0 ? undefined : ids[i - 1], name: `level-${i + 1}` }));
  };
  const levels = MAX_SPAN_DEPTH + 4;

  // One request, deepest span first, as a BatchSpanProcessor orders spans that end inside out.
  const whole = chain(hex(16), hex(8), levels - 1).reverse();
  const res = await postJson(server, jsonRequest(whole));
  assert.equal(res.status, 200);
  const answer = JSON.parse(res.body.toString()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
  assert.equal(answer.partialSuccess?.rejectedSpans, "4");
  assert.match(answer.partialSuccess?.errorMessage ?? "", new RegExp(`would be ${MAX_SPAN_DEPTH + 1} levels deep`));
  const deepest = whole.find((s) => s.name === `level-${MAX_SPAN_DEPTH}`);
  assert.equal(server.store.getRun(spanIdToRunId(String(deepest?.spanId)))?.dotted_order.split(".").length, MAX_SPAN_DEPTH);
  assert.equal(server.store.getRun(spanIdToRunId(String(whole[0]?.spanId))), undefined);

  // The chain first, its root later: released level by level, the same levels refused.
  const rootId = hex(8);
  const late = chain(hex(16), rootId, levels - 1);
  const [root, ...below] = late;
  assert.equal((await postJson(server, jsonRequest(below))).status, 200);
  assert.equal(otlpIngestFor(server.store).listPending(2000).length, levels - 1);
  assert.equal((await postJson(server, jsonRequest([root as Record<string, unknown>]))).status, 200);
  assert.deepEqual(otlpIngestFor(server.store).listPending(), []);
  const stored = server.store.getTraceRuns(spanIdToRunId(rootId));
  assert.equal(stored.length, MAX_SPAN_DEPTH);
  const refused = server.store.listRejections({ limit: 1000 }).filter((r) => /levels deep/.test(r.message));
  assert.equal(refused.length, 8);
  assert.ok(refused.some((r) => r.message.includes(`would be ${levels} levels deep`)), "the spans below a refused one are refused too, not left to become orphans");
  await assertServing(server);
});

test("a request whose spans would derive more than DERIVE_BUDGET dotted_order segments is cut there; waiting spans past it are released a sweep later, none lost", async (t) => {
  const log: string[] = [];
  const server = await serverFor(t, { log: (line) => log.push(line) });
  const chain = (rootId: string): Array<Record<string, unknown>> => {
    const traceId = hex(16);
    const ids = [rootId, ...Array.from({ length: MAX_SPAN_DEPTH - 1 }, () => hex(8))];
    return ids.map((spanId, i) => jsonSpan({ traceId, spanId, parentSpanId: i === 0 ? undefined : ids[i - 1], name: `c-${i + 1}` }));
  };
  const perChain = (MAX_SPAN_DEPTH * (MAX_SPAN_DEPTH + 1)) / 2;
  const chains = Math.ceil(DERIVE_BUDGET / perChain) + 1;

  const roots = Array.from({ length: chains }, () => hex(8));
  const all = roots.map(chain);
  const res = await postJson(server, jsonRequest(all.flat()));
  assert.equal(res.status, 200);
  const answer = JSON.parse(res.body.toString()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
  assert.ok(Number(answer.partialSuccess?.rejectedSpans) > 0, res.body.toString());
  assert.match(answer.partialSuccess?.errorMessage ?? "", /would derive more than 250000 dotted_order segments/);
  const stored = roots.reduce((n, id) => n + server.store.getTraceRuns(spanIdToRunId(id)).length, 0);
  assert.equal(stored + Number(answer.partialSuccess?.rejectedSpans), chains * MAX_SPAN_DEPTH);
  assert.ok(roots.every((id) => server.store.getRun(spanIdToRunId(id))), "shallow spans go first: every root is stored");

  // The same shape waiting for its roots: released up to the budget at once, the rest by later sweeps.
  const lateRoots = Array.from({ length: chains }, () => hex(8));
  const late = lateRoots.map(chain);
  assert.equal((await postJson(server, jsonRequest(late.flatMap((c) => c.slice(1))))).status, 200);
  assert.equal((await postJson(server, jsonRequest(late.map((c) => c[0] as Record<string, unknown>)))).status, 200);
  const ingest = otlpIngestFor(server.store);
  assert.ok(log.some((l) => l.startsWith("OTLP: released waiting spans up to 250000")), "part of the release is deferred");
  await eventually(() => (ingest.listPending(1).length === 0 ? true : undefined), "the deferred spans to be released");
  for (const id of lateRoots) assert.equal(server.store.getTraceRuns(spanIdToRunId(id)).length, MAX_SPAN_DEPTH);
  await assertServing(server);
});

test("a span whose start time is a value nested 10,000 levels, or a 1 MB string, is refused alone with a short message; the good span beside it is stored (found by the hostile-input campaign)", async (t) => {
  const server = await serverFor(t);
  const good = jsonSpan({ name: "good-beside-bad-time" });
  const deepTime = jsonSpan({ name: "deep-time" });
  const hugeTime = jsonSpan({ name: "huge-time" });
  // JSON.parse takes any depth; written as text because JSON.stringify cannot write it.
  const text = JSON.stringify(jsonRequest([good, { ...deepTime, startTimeUnixNano: "__deep__" }, { ...hugeTime, startTimeUnixNano: "9".repeat(1_000_000) }]))
    .replace('"__deep__"', `${"[".repeat(10_000)}${"]".repeat(10_000)}`);
  const res = await post(server, text, { "content-type": "application/json" });
  assert.equal(res.status, 200, res.body.toString().slice(0, 300));
  const answer = JSON.parse(res.body.toString()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
  assert.equal(answer.partialSuccess?.rejectedSpans, "2");
  assert.match(answer.partialSuccess?.errorMessage ?? "", /startTimeUnixNano must be nanoseconds since the epoch .*got a list/);
  assert.match(answer.partialSuccess?.errorMessage ?? "", /got "9{80}"\.\.\. \(1000000 characters\)/);
  assert.equal(server.store.getRun(spanIdToRunId(String(good.spanId)))?.name, "good-beside-bad-time");
  const recorded = server.store.listRejections({ limit: 10 });
  assert.ok(recorded.every((r) => r.message.length < 1000), "no rejection quotes the value whole");
});
