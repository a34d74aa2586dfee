// Generated hostile requests to the kit's express middleware: mutated and arbitrary
// `langsmith-trace`, `baggage` and signature headers, duplicated, huge and non-ASCII values, and
// bodies the JSON parser after the middleware refuses. Each goes to one of the three trust
// policies of kit-app.ts. Use:
//   const cases = kitCaseArb();  const verdict = await runKitCase(targets, c, seen);
// Judged: the process stays up; no 5xx; a refusal by node's own parser (400/431, before any app
// code) is counted apart; otherwise the handler ran inside the request's run, `x-trace-id` names
// that run's trace, and a trace is continued only where the policy allows it (never at the edge,
// behind signed trust only with a signature made with the key).
import fc from "fast-check";
import { SIGNATURE_HEADER, signContext } from "../../../examples/kit/signing.js";
import { anyJsonArb, applyEdit, dottedOrderArb, hostileStringArb, hugeString, mutated, stringEditArb, type StringEdit } from "./arbitraries.js";
import type { Verdict } from "./runner.js";
import { KIT_MAX_HEADER_BYTES, type Targets } from "./targets.js";
import { exchange, nodeRefusal, nodeResetBucket, type RawRequest } from "./wire.js";

export type Trust = "edge" | "mesh" | "signed";

type Signature =
  | { kind: "none" }
  | { kind: "keyed"; skewSeconds: number; edit?: StringEdit }
  | { kind: "wrong-key"; key: string }
  | { kind: "raw"; value: string };

export interface KitCase {
  trust: Trust;
  method: "GET" | "POST";
  trace: string[];
  baggage: string[];
  signature: Signature;
  extra: Array<[string, string]>;
  headerEncoding: "latin1" | "utf8";
  /** Keep CR, LF, NUL and other control characters in header values; node's parser refuses most of them (400) before any app code. */
  controlChars: boolean;
  body?: string;
}

/** A run the middleware answered for, to look up in the trace server once the app has flushed. */
export interface ServedRun {
  runId: string;
  traceId: string;
}

const enc = encodeURIComponent;

const traceValueArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: dottedOrderArb().map((d) => d.dottedOrder) },
  { weight: 4, arbitrary: mutated(dottedOrderArb().map((d) => d.dottedOrder)) },
  { weight: 2, arbitrary: hostileStringArb },
  { weight: 1, arbitrary: fc.integer({ min: 8_000, max: 400_000 }).map((n) => hugeString(n, "20250102T030405678000Z")) },
);

const memberArb: fc.Arbitrary<string> = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 12 }), anyJsonArb, { maxKeys: 40 }).map((m) => `langsmith-metadata=${enc(JSON.stringify(m))}`),
  anyJsonArb.map((v) => `langsmith-metadata=${enc(JSON.stringify(v) ?? "")}`),
  fc.jsonValue({ maxDepth: 2 }).map((v) => `langsmith-metadata=${JSON.stringify(v)}`),
  fc.array(fc.string({ maxLength: 300 }), { maxLength: 60 }).map((t) => `langsmith-tags=${enc(t.join(","))}`),
  fc.string({ maxLength: 300 }).map((p) => `langsmith-project=${enc(p)}`),
  anyJsonArb.map((v) => `langsmith-replicas=${enc(JSON.stringify(v) ?? "")}`),
  fc.array(fc.oneof(fc.record({ projectName: fc.string() }), fc.tuple(fc.string(), anyJsonArb)), { maxLength: 8 }).map((r) => `langsmith-replicas=${enc(JSON.stringify(r))}`),
  hostileStringArb.map((a) => `langsmith-address=${a}`),
  fc.tuple(fc.constantFrom("langsmith-metadata", "langsmith-tags", "langsmith-project", "vendor", "langsmith-"), hostileStringArb).map(([k, v]) => `${k}=${v}`),
  hostileStringArb,
  fc.integer({ min: 100, max: 20_000 }).map((n) => `vendor=${hugeString(n, "v")}`),
);

const baggageLineArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(memberArb, { maxLength: 6 }).map((m) => m.join(",")) },
  { weight: 1, arbitrary: mutated(fc.array(memberArb, { minLength: 1, maxLength: 4 }).map((m) => m.join(","))) },
);

const signatureArb: fc.Arbitrary<Signature> = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({ kind: fc.constant("keyed" as const), skewSeconds: fc.constantFrom(0, 0, 0, -3600, 3600, 61) }),
  fc.record({ kind: fc.constant("keyed" as const), skewSeconds: fc.constant(0), edit: stringEditArb }),
  fc.record({ kind: fc.constant("wrong-key" as const), key: fc.string({ minLength: 32, maxLength: 40 }) }),
  fc.oneof(hostileStringArb, fc.integer().map((t) => `v1,t=${t},s=${"A".repeat(43)}`)).map((value) => ({ kind: "raw" as const, value })),
);

const extraHeaderArb: fc.Arbitrary<[string, string]> = fc.tuple(
  fc.oneof(
    fc.constantFrom("x-request-id", "user-agent", "accept", "LangSmith-Trace", "BAGGAGE", SIGNATURE_HEADER, "traceparent", "x-trace-id", "authorization", "cookie"),
    fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9-]{0,30}$/),
  ),
  fc.oneof(hostileStringArb, fc.string({ maxLength: 200 }), fc.integer({ min: 1000, max: 100_000 }).map((n) => hugeString(n))),
);

const bodyArb: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  hostileStringArb,
  fc.integer({ min: 1, max: 20_000 }).map((d) => `${"[".repeat(d)}${"]".repeat(d)}`),
  fc.integer({ min: 70_000, max: 200_000 }).map((n) => JSON.stringify({ big: hugeString(n) })),
);

export function kitCaseArb(): fc.Arbitrary<KitCase> {
  return fc.record({
    trust: fc.constantFrom<Trust>("edge", "mesh", "signed"),
    method: fc.constantFrom<"GET" | "POST">("GET", "GET", "POST"),
    trace: fc.oneof({ weight: 1, arbitrary: fc.constant<string[]>([]) }, { weight: 6, arbitrary: fc.array(traceValueArb, { minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: fc.array(traceValueArb, { minLength: 2, maxLength: 4 }) }),
    baggage: fc.array(baggageLineArb, { maxLength: 3 }),
    signature: signatureArb,
    extra: fc.array(extraHeaderArb, { maxLength: 3 }),
    headerEncoding: fc.constantFrom<"latin1" | "utf8">("latin1", "utf8"),
    controlChars: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    body: fc.option(bodyArb, { nil: undefined }),
  });
}

/** The trace ids a well-formed first segment of each `langsmith-trace` line would name. */
function claimedTraceIds(trace: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const line of trace) {
    const m = /^\s*\d{8}T\d{12}Z([0-9a-fA-F-]{36})/.exec(line);
    if (m?.[1]) ids.add(m[1].toLowerCase());
  }
  return ids;
}

function signatureValue(c: KitCase, key: string): string | undefined {
  const s = c.signature;
  if (s.kind === "none") return undefined;
  if (s.kind === "raw") return s.value;
  const trace = c.trace.join(",");
  const baggage = c.baggage.length > 0 ? c.baggage.join(",") : undefined;
  if (s.kind === "wrong-key") return signContext(trace, baggage, s.key);
  const value = signContext(trace, baggage, key, Date.now() + s.skewSeconds * 1000);
  return s.edit ? applyEdit(value, s.edit) : value;
}

export function describeKitCase(c: KitCase): string {
  const cut = (s: string): string => (s.length > 120 ? `${JSON.stringify(s.slice(0, 120))}...(${s.length} chars)` : JSON.stringify(s));
  return `${c.method} /${c.trust}/probe trace=[${c.trace.map(cut).join(", ")}] baggage=[${c.baggage.map(cut).join(", ")}] signature=${JSON.stringify(c.signature).slice(0, 120)} extra=[${c.extra.map(([n, v]) => `${n}: ${cut(v)}`).join(", ")}] ${c.headerEncoding}${c.controlChars ? " control-chars" : ""}${c.body === undefined ? "" : ` body=${cut(c.body)}`}`;
}

// eslint-disable-next-line no-control-regex -- control characters are what is removed
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/g;
// eslint-disable-next-line no-control-regex -- the latin1 range starts at NUL
const NOT_LATIN1 = /[^\u0000-\u00ff]/g;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function runKitCase(targets: Targets, c: KitCase, served: ServedRun[]): Promise<Verdict> {
  const signature = signatureValue(c, targets.kitApp.signingKey);
  const lines: Array<[string, string]> = [
    ...c.trace.map((v): [string, string] => ["langsmith-trace", v]),
    ...c.baggage.map((v): [string, string] => ["baggage", v]),
    ...(signature === undefined ? [] : [[SIGNATURE_HEADER, signature] as [string, string]]),
    ...c.extra,
  ];
  // Without control characters, a latin1 case also drops what latin1 cannot carry (a lone surrogate's low byte can be NUL).
  const clean = (value: string): string => (c.headerEncoding === "latin1" ? value.replace(NOT_LATIN1, "?") : value).replace(CONTROL, "");
  const headers = lines.map(([name, value]): [string, string] => [name, c.controlChars ? value : clean(value)]);
  if (c.method === "POST") headers.push(["content-type", "application/json"]);
  const body = c.method === "POST" ? Buffer.from(c.body ?? "{}", "utf8") : undefined;
  const request: RawRequest = { method: c.method, path: `/${c.trust}/probe`, headers, headerEncoding: c.headerEncoding, body };
  const answer = await exchange(targets.kitApp.port, request);
  if (answer.kind === "no-answer") {
    const reset = nodeResetBucket(request, KIT_MAX_HEADER_BYTES);
    return reset === undefined ? { bucket: "no answer", violation: `no answer: ${answer.error}` } : { bucket: reset };
  }
  const { status } = answer;
  const traceId = answer.headers["x-trace-id"];
  if (traceId === undefined) {
    const refused = nodeRefusal(answer);
    if (refused !== undefined) return { bucket: refused };
    return { bucket: String(status), violation: `answered ${status} without x-trace-id: the middleware did not run` };
  }
  if (status >= 500) return { bucket: String(status), violation: `answered ${status}: ${answer.body.toString("utf8").slice(0, 300)}` };
  if (!UUID.test(traceId)) return { bucket: String(status), violation: `x-trace-id ${JSON.stringify(traceId)} is not a UUID` };
  if (status !== 200) {
    // The JSON parser after the middleware refused the body: jsonErrors's answer, with the trace id to quote.
    let refusal: { error?: unknown; traceId?: unknown } = {};
    try {
      refusal = JSON.parse(answer.body.toString("utf8")) as typeof refusal;
    } catch {
      return { bucket: String(status), violation: `a ${status} whose body is not JSON` };
    }
    if (status < 400 || typeof refusal.error !== "string" || refusal.error === "") return { bucket: String(status), violation: `a ${status} without a message` };
    return refusal.traceId === traceId ? { bucket: String(status) } : { bucket: String(status), violation: `a ${status} quoting trace ${String(refusal.traceId)}, not ${traceId}` };
  }
  let parsed: { runId?: string | null; currentRunId?: string | null; childParentId?: string | null };
  try {
    parsed = JSON.parse(answer.body.toString("utf8")) as typeof parsed;
  } catch {
    return { bucket: "200", violation: "a 200 whose body is not the handler's JSON" };
  }
  const { runId, currentRunId, childParentId } = parsed;
  if (typeof runId !== "string") return { bucket: "200", violation: "the handler saw no request run" };
  if (currentRunId !== runId || childParentId !== runId) return { bucket: "200", violation: `the handler ran outside its request's run (run ${runId}, current ${String(currentRunId)}, child's parent ${String(childParentId)})` };
  served.push({ runId, traceId });
  if (traceId === runId) return { bucket: "200" };
  // Continued: the caller's trace. Allowed only where the policy trusts it.
  if (c.trust === "edge") return { bucket: "200", violation: `the edge continued trace ${traceId}` };
  if (!claimedTraceIds(c.trace).has(traceId)) return { bucket: "200", violation: `continued trace ${traceId}, which no langsmith-trace header named` };
  if (c.trust === "signed" && c.signature.kind !== "keyed") return { bucket: "200", violation: `signed trust continued trace ${traceId} without a signature made with the key` };
  return { bucket: "200" };
}
