// Generated hostile requests to the trace server's native ingest (`/runs/batch`, `/runs/multipart`,
// `/runs`, `PATCH /runs/{id}`, `/feedback`): valid SDK-shaped traces side by side with runs mutated
// one field at a time (wrong types, huge strings, deep nesting, bad dotted orders and UUIDs), bodies
// broken at the byte level, multipart boundary tricks, and bad or mislabelled compression. Use:
//   const verdict = await runNativeCase(targets, c);
// Judged: no 5xx; a refusal is a 4xx whose JSON `detail` says why, and each refused operation of a
// 422 names its rule and has a message; when the request itself is well formed, it is 202 or 422
// and every valid run sent in it is stored (the server refuses per operation, not per request).
import { maxHeaderSize } from "node:http";
import { promisify } from "node:util";
import zlib from "node:zlib";
import fc from "fast-check";
import { anyJsonArb, applyEdit, dateArb, deepJson, hostileStringArb, hugeString, isoMicros, stringEditArb, timestamp, uuidArb, type StringEdit } from "./arbitraries.js";
import { judgeStatus, type Verdict } from "./runner.js";
import type { Targets } from "./targets.js";
import { applicationAnswer, exchange, type RawRequest } from "./wire.js";

type Run = Record<string, unknown>;

type RunMutation =
  | { kind: "set"; field: string; value: unknown }
  | { kind: "delete"; field: string }
  | { kind: "edit"; field: "dotted_order" | "id" | "trace_id" | "start_time"; edit: StringEdit }
  | { kind: "huge"; field: "name" | "inputs" | "tags" | "session_name" | "error"; size: number }
  | { kind: "deep"; field: "inputs" | "outputs" | "extra" | "events"; depth: number; shape: "array" | "object" }
  | { kind: "not-an-object"; value: unknown };

type Encoding = "identity" | "gzip" | "zstd" | "deflate" | "br";
type Framing =
  | { kind: "none" }
  | { kind: "bytes"; edits: StringEdit[] }
  | { kind: "content-type"; value: string }
  | { kind: "encoding"; broken: "corrupt" | "truncated" | "unknown" | "mislabelled" }
  | { kind: "boundary"; trick: "missing" | "twice" | "other" | "quoted-mismatch" | "no-closing" };

export interface NativeCase {
  route: "batch" | "multipart" | "runs" | "patch" | "feedback";
  good: Run[][];
  bad: Array<{ op: "post" | "patch"; mutations: RunMutation[]; base: Run }>;
  feedback: unknown[];
  encoding: Encoding;
  framing: Framing;
}

const FIELDS = ["id", "trace_id", "parent_run_id", "dotted_order", "name", "run_type", "start_time", "end_time", "inputs", "outputs", "extra", "tags", "session_name", "session_id", "error", "events", "serialized", "reference_example_id", "__proto__", "unknown_field"];
const DEEP = "__hostile_deep__";

const goodTraceArb: fc.Arbitrary<Run[]> = fc
  .tuple(dateArb, fc.uniqueArray(uuidArb, { minLength: 1, maxLength: 4 }), fc.string({ maxLength: 30 }), fc.jsonValue({ maxDepth: 3 }), fc.constantFrom("chain", "llm", "tool", "retriever"))
  .map(([date, ids, name, inputs, runType]) => {
    const [rootId] = ids as [string];
    const seg = (i: number): string => `${timestamp(new Date(date.getTime() + i))}${ids[i]}`;
    return ids.map((id, i) => ({
      id,
      trace_id: rootId,
      ...(i === 0 ? {} : { parent_run_id: rootId }),
      dotted_order: i === 0 ? seg(0) : `${seg(0)}.${seg(i)}`,
      name: `good-${name}`,
      run_type: runType,
      start_time: isoMicros(new Date(date.getTime() + i)),
      end_time: isoMicros(new Date(date.getTime() + 10)),
      inputs: { value: inputs },
      outputs: { ok: true },
      session_name: "hostile-native",
    }));
  });

const mutationArb: fc.Arbitrary<RunMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), field: fc.constantFrom(...FIELDS), value: anyJsonArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), field: fc.constantFrom(...FIELDS) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("edit" as const), field: fc.constantFrom("dotted_order" as const, "id" as const, "trace_id" as const, "start_time" as const), edit: stringEditArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("huge" as const), field: fc.constantFrom("name" as const, "inputs" as const, "tags" as const, "session_name" as const, "error" as const), size: fc.integer({ min: 4_000, max: 2_000_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deep" as const), field: fc.constantFrom("inputs" as const, "outputs" as const, "extra" as const, "events" as const), depth: fc.integer({ min: 200, max: 20_000 }), shape: fc.constantFrom("array" as const, "object" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("not-an-object" as const), value: anyJsonArb }) },
);

const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("bytes" as const), edits: fc.array(stringEditArb, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("content-type" as const), value: fc.oneof(fc.constantFrom("text/plain", "", "application/json; charset=utf-16", "multipart/form-data", "application/x-www-form-urlencoded", "application/json, multipart/form-data"), hostileStringArb) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("encoding" as const), broken: fc.constantFrom("corrupt" as const, "truncated" as const, "unknown" as const, "mislabelled" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("boundary" as const), trick: fc.constantFrom("missing" as const, "twice" as const, "other" as const, "quoted-mismatch" as const, "no-closing" as const) }) },
);

export function nativeCaseArb(): fc.Arbitrary<NativeCase> {
  return fc.record({
    route: fc.constantFrom<NativeCase["route"]>("batch", "batch", "multipart", "multipart", "runs", "patch", "feedback"),
    good: fc.array(goodTraceArb, { maxLength: 3 }),
    bad: fc.array(fc.record({ op: fc.constantFrom<"post" | "patch">("post", "patch"), mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }), base: goodTraceArb.map((t) => t[t.length - 1] as Run) }), { maxLength: 4 }),
    feedback: fc.array(fc.oneof(fc.record({ run_id: fc.oneof(uuidArb, hostileStringArb), key: fc.oneof(fc.string({ maxLength: 20 }), hostileStringArb), score: anyJsonArb }), anyJsonArb), { maxLength: 2 }),
    encoding: fc.constantFrom<Encoding>("identity", "identity", "gzip", "zstd", "deflate", "br"),
    framing: framingArb,
  });
}

/** The run after its mutations, as JSON text (deep values are spliced in as text: JSON.stringify cannot write them). */
function mutate(base: Run, mutations: readonly RunMutation[]): string {
  let run: unknown = { ...base };
  const deep: string[] = [];
  for (const m of mutations) {
    if (typeof run !== "object" || run === null || Array.isArray(run)) break;
    const obj = run as Run;
    if (m.kind === "set") Object.defineProperty(obj, m.field, { value: m.value, enumerable: true, configurable: true, writable: true });
    else if (m.kind === "delete") delete obj[m.field];
    else if (m.kind === "edit") obj[m.field] = applyEdit(String(obj[m.field] ?? ""), m.edit);
    else if (m.kind === "huge") obj[m.field] = m.field === "inputs" ? { text: hugeString(m.size) } : m.field === "tags" ? [hugeString(m.size)] : hugeString(m.size);
    else if (m.kind === "deep") {
      obj[m.field] = DEEP;
      deep.push(deepJson(m.depth, m.shape));
    } else run = m.value;
  }
  let text = JSON.stringify(run) ?? "null";
  for (const d of deep) text = text.replace(`"${DEEP}"`, d);
  return text;
}

interface Built {
  path: string;
  method: string;
  contentType: string | undefined;
  body: Buffer;
}

function build(c: NativeCase): Built {
  const good = c.good.flat();
  const bad = c.bad.map((b) => ({ op: b.op, id: String(b.base.id), text: mutate(b.base, b.mutations) }));
  if (c.route === "batch") {
    const post = [...good.map((r) => JSON.stringify(r)), ...bad.filter((b) => b.op === "post").map((b) => b.text)];
    const patch = bad.filter((b) => b.op === "patch").map((b) => b.text);
    return { path: "/runs/batch", method: "POST", contentType: "application/json", body: Buffer.from(`{"post":[${post.join(",")}],"patch":[${patch.join(",")}]}`) };
  }
  if (c.route === "multipart") {
    const boundary = `hostile${good.length}x${bad.length}`;
    const parts: Array<[string, string]> = [];
    for (const run of good) {
      const { inputs, outputs, ...rest } = run;
      parts.push([`post.${String(run.id)}`, JSON.stringify(rest)], [`post.${String(run.id)}.inputs`, JSON.stringify(inputs)], [`post.${String(run.id)}.outputs`, JSON.stringify(outputs)]);
    }
    for (const b of bad) parts.push([`${b.op}.${b.id}`, b.text]);
    for (const f of c.feedback) parts.push([`feedback.${crypto.randomUUID()}`, JSON.stringify(f) ?? "null"]);
    const body = parts.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\nContent-Type: application/json\r\n\r\n${value}\r\n`).join("") + `--${boundary}--\r\n`;
    return { path: "/runs/multipart", method: "POST", contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.from(body) };
  }
  if (c.route === "runs") {
    const text = bad[0]?.text ?? JSON.stringify(good[0] ?? {});
    return { path: "/runs", method: "POST", contentType: "application/json", body: Buffer.from(text) };
  }
  if (c.route === "patch") {
    const target = bad[0];
    const id = target ? (target.text.match(/"id":"([^"]*)"/)?.[1] ?? target.id) : String(good[0]?.id ?? "x");
    return { path: `/runs/${encodeURIComponent(id)}`, method: "PATCH", contentType: "application/json", body: Buffer.from(target?.text ?? JSON.stringify(good[0] ?? {})) };
  }
  return { path: "/feedback", method: "POST", contentType: "application/json", body: Buffer.from(JSON.stringify(c.feedback[0] ?? bad[0]?.text ?? {}) ?? "null") };
}

const compressors: Record<Exclude<Encoding, "identity">, (b: Buffer) => Promise<Buffer>> = {
  gzip: promisify(zlib.gzip),
  zstd: promisify(zlib.zstdCompress),
  deflate: promisify(zlib.deflate),
  br: promisify(zlib.brotliCompress),
};

export function describeNativeCase(c: NativeCase): string {
  const mutations = c.bad.map((b) => `${b.op}:${b.mutations.map((m) => `${m.kind}${"field" in m ? `(${m.field})` : ""}${m.kind === "set" ? `=${(JSON.stringify(m.value) ?? "undefined").slice(0, 60)}` : ""}${m.kind === "edit" ? `=${JSON.stringify(m.edit).slice(0, 80)}` : ""}`).join("+")}`);
  return `${c.route} good=${c.good.map((t) => t.length).join("+") || 0} bad=[${mutations.join(", ")}] feedback=${c.feedback.length} ${c.encoding} framing=${JSON.stringify(c.framing).slice(0, 160)}`;
}

export async function runNativeCase(targets: Targets, c: NativeCase): Promise<Verdict> {
  const built = build(c);
  let body = built.body;
  let contentType = built.contentType;
  const f = c.framing;
  if (f.kind === "bytes") body = Buffer.from(f.edits.reduce(applyEdit, body.toString("latin1")), "latin1");
  if (f.kind === "content-type") contentType = f.value;
  if (f.kind === "boundary" && contentType?.startsWith("multipart/")) {
    const boundary = contentType.split("boundary=")[1] ?? "";
    contentType = { missing: "multipart/form-data", twice: `${contentType}; boundary=other`, other: "multipart/form-data; boundary=other", "quoted-mismatch": `multipart/form-data; boundary="${boundary}x"`, "no-closing": contentType }[f.trick];
    if (f.trick === "no-closing") body = body.subarray(0, body.length - boundary.length - 6);
  }
  const headers: Array<[string, string]> = [["x-api-key", "local"]];
  if (contentType !== undefined) headers.push(["content-type", contentType]);
  if (c.encoding !== "identity") {
    body = await compressors[c.encoding](body);
    headers.push(["content-encoding", c.encoding]);
  }
  if (f.kind === "encoding") {
    if (f.broken === "corrupt") body = Buffer.from(body.map((b, i) => (i % 7 === 3 ? b ^ 0x5a : b)));
    if (f.broken === "truncated") body = body.subarray(0, Math.floor(body.length / 2));
    if (f.broken === "unknown") headers.push(["content-encoding", "compress"]);
    if (f.broken === "mislabelled") headers.push(["content-encoding", c.encoding === "gzip" ? "zstd" : "gzip"]);
  }
  const request: RawRequest = { method: built.method, path: built.path, headers, body };
  // An arbitrary content type can carry a CR or another control byte, which node refuses itself.
  const answer = await applicationAnswer(targets.traceServer.port, request, maxHeaderSize);
  if ("bucket" in answer) return answer;
  let json: { detail?: unknown; accepted?: unknown; rejected?: Array<{ rule?: unknown; message?: unknown }> } = {};
  try {
    json = JSON.parse(answer.body.toString("utf8")) as typeof json;
  } catch {
    return { bucket: String(answer.status), violation: `answered ${answer.status} with a body that is not JSON: ${answer.body.toString("utf8").slice(0, 200)}` };
  }
  const verdict = judgeStatus(answer.status, typeof json.detail === "string" ? json.detail : answer.status >= 400 ? undefined : "");
  if (verdict.violation) return verdict;
  if (answer.status === 422 && Array.isArray(json.rejected)) {
    const unclear = json.rejected.find((r) => typeof r.rule !== "string" || typeof r.message !== "string" || r.message === "");
    if (unclear) return { ...verdict, violation: `a refused operation without a rule and message: ${JSON.stringify(unclear).slice(0, 200)}` };
  }
  const intact = f.kind === "none" && (c.route === "batch" || c.route === "multipart");
  if (intact && answer.status !== 202 && answer.status !== 422) {
    return { ...verdict, violation: `a well-formed request refused whole (${answer.status}: ${String(json.detail).slice(0, 200)}); its valid runs were not stored` };
  }
  // With the bytes intact, every valid run must be there (a byte edit may have changed one).
  if (intact) {
    for (const run of c.good.flat()) {
      const stored = await exchange(targets.traceServer.port, { method: "GET", path: `/runs/${String(run.id)}`, headers: [["x-api-key", "local"]] });
      if (stored.kind !== "answered" || stored.status !== 200) return { ...verdict, violation: `valid run ${String(run.id)} sent beside bad ones was not stored (answer ${answer.status}: ${String(json.detail).slice(0, 300)})` };
    }
    return { ...verdict, verified: c.good.flat().length };
  }
  return verdict;
}
