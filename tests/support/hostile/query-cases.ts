// Generated hostile read queries to the trace server: v1 (`POST /runs/query`, `GET /runs/{id}`,
// `/api/traces`, `/api/rejections`, `/feedback`, `/sessions`) and v2 (`/api/v2/runs/query`,
// `/api/v2/runs/{id}`, `/api/v2/traces/{id}/runs`, threads and traces queries), with bodies and
// query strings of wrong types, unknown keys, bad UUIDs and times, malformed percent-escapes, and
// run filters from LangSmith's filter grammar, valid and mutated. Ids of stored runs and projects
// are substituted at send time ("$run", "$trace", "$project"). Use:
//   const verdict = await runQueryCase(targets, c, await queryContext(targets));
// Judged: no 5xx but the documented 501 (a LangSmith feature the local server does not have);
// a refusal is a 4xx whose JSON `detail` says why.
import { maxHeaderSize } from "node:http";
import fc from "fast-check";
import { anyJsonArb, hostileStringArb, mutated, uuidArb } from "./arbitraries.js";
import { judgeStatus, type Verdict } from "./runner.js";
import type { Targets } from "./targets.js";
import { applicationAnswer, exchange, type RawRequest } from "./wire.js";

export interface QueryCase {
  method: "GET" | "POST";
  path: string;
  /** Query string pairs; `raw` ones go out unencoded. */
  query: Array<{ key: string; value: string; raw: boolean }>;
  body?: Record<string, unknown> | string;
}

const REFS = ["$run", "$trace", "$project"] as const;
const FILTER_FIELDS = ["id", "name", "run_type", "status", "error", "trace_id", "parent_run_id", "session_id", "start_time", "end_time", "latency", "total_tokens", "tags", "is_root", "thread_id", "metadata_key", "metadata_value", "dotted_order", "inputs", "bogus"];

const literalArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.double({ noNaN: true }).map(String),
  fc.constantFrom("true", "false", "null", '"2025-01-01T00:00:00Z"', "'single'", '"$run"', "1e400", "-"),
);

const filterArb: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.tuple(fc.constantFrom("eq", "neq", "gt", "gte", "lt", "lte", "has", "like", "in"), fc.constantFrom(...FILTER_FIELDS), literalArb).map(([fn, field, value]) => `${fn}(${field}, ${value})`),
    literalArb.map((v) => `search(${v})`),
    fc.tuple(fc.constantFrom("and", "or"), fc.array(tie("node"), { minLength: 1, maxLength: 4 })).map(([fn, args]) => `${fn}(${args.join(", ")})`),
    tie("node").map((n) => `not(${n})`),
  ),
})).node;

const filterValueArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: filterArb },
  { weight: 3, arbitrary: mutated(filterArb) },
  { weight: 1, arbitrary: hostileStringArb },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 3000 }).map((n) => `${"and(".repeat(n)}eq(name, "x")${")".repeat(n)}`) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 2000 }).map((n) => `or(${Array.from({ length: n }, (_, i) => `search("${i}")`).join(",")})`) },
);

/** A value for a parameter: right type, wrong type, a reference to stored data, or hostile. */
const paramValueArb: fc.Arbitrary<unknown> = fc.oneof(
  anyJsonArb,
  fc.constantFrom(...REFS),
  fc.array(fc.oneof(fc.constantFrom(...REFS), uuidArb, hostileStringArb), { maxLength: 4 }),
  uuidArb,
  filterValueArb,
  fc.constantFrom("2025-01-01T00:00:00Z", "2025-13-45T99:99:99Z", "yesterday", "1e21", "-1", "0x10", "9007199254740993", "asc", "desc", "LLM", "chain"),
  fc.constantFrom(["ID", "NAME", "INPUTS", "SHARE_URL", "FEEDBACK_STATS"], ["BOGUS"], "ID"),
);

const bodyKeys = {
  "/runs/query": ["session", "id", "reference_example", "trace", "parent_run", "is_root", "error", "run_type", "start_time", "filter", "trace_filter", "tree_filter", "query", "cursor", "order", "limit", "select", "execution_order"],
  "/api/v2/runs/query": ["project_ids", "ids", "trace_id", "is_root", "has_error", "run_type", "filter", "trace_filter", "tree_filter", "cursor", "page_size", "selects", "min_start_time", "max_start_time", "include_subtree_usage", "reference_examples", "ai_search", "reference_dataset_id"],
  "/api/v2/threads/query": ["project_id", "filter", "thread_filter", "trace_filter", "tree_filter", "cursor", "page_size", "min_start_time", "max_start_time"],
  "/api/v2/traces/query": ["project_id", "project_ids", "filter", "trace_filter", "cursor", "page_size", "min_start_time", "max_start_time", "selects"],
  "/runs/stats": ["session", "id", "trace", "filter", "trace_filter", "tree_filter", "is_root", "error", "run_type", "start_time", "group_by"],
} as const;

const queryKeys = {
  "/api/traces": ["limit", "offset", "project", "service", "since"],
  "/api/rejections": ["limit", "trace_id", "run_id", "rule", "after"],
  "/feedback": ["run", "key", "limit", "offset"],
  "/sessions": ["name", "limit", "offset", "id", "reference_dataset"],
  "/api/v2/runs/$run": ["project_id", "selects", "start_time"],
  "/api/v2/traces/$trace/runs": ["project_id", "filter", "min_start_time", "max_start_time", "selects"],
  "/api/traces/$trace": ["limit", "offset"],
  "/runs/$run": [],
  "/api/otel/pending": ["limit"],
  "/sessions/$project": [],
  "/api/v2/threads/$run/traces": ["project_id", "filter", "selects", "cursor", "page_size"],
} as const;

const postCaseArb: fc.Arbitrary<QueryCase> = fc.constantFrom(...(Object.keys(bodyKeys) as Array<keyof typeof bodyKeys>)).chain((path) =>
  fc.record({
    method: fc.constant("POST" as const),
    path: fc.constant(path),
    query: fc.constant([]),
    body: fc.oneof(
      { weight: 6, arbitrary: fc.dictionary(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...bodyKeys[path]) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }), paramValueArb, { maxKeys: 6 }) },
      { weight: 1, arbitrary: fc.oneof(hostileStringArb, anyJsonArb.map((v) => JSON.stringify(v) ?? "")) },
    ),
  }),
);

const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...(Object.keys(queryKeys) as string[])) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...(Object.keys(queryKeys) as string[])), fc.constantFrom("%E0%A4%A", "%00", "..%2F..", "x", "%ZZ", "00000000-0000-0000-0000-000000000000", "/", "%2e%2e")).map(([p, s]) => p.replace(/\$(run|trace|project)/, s)) },
);

const getCaseArb: fc.Arbitrary<QueryCase> = pathArb.chain((path) =>
  fc.record({
    method: fc.constant("GET" as const),
    path: fc.constant(path),
    query: fc.array(
      fc.record({
        key: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...((queryKeys as Record<string, readonly string[]>)[path] ?? ["limit"]), "limit") }, { weight: 1, arbitrary: hostileStringArb }),
        value: paramValueArb.map((v) => (typeof v === "string" ? v : JSON.stringify(v) ?? "")),
        raw: fc.boolean(),
      }),
      { maxLength: 5 },
    ),
  }),
);

export function queryCaseArb(): fc.Arbitrary<QueryCase> {
  return fc.oneof(postCaseArb, getCaseArb);
}

export interface QueryContext {
  run: string;
  trace: string;
  project: string;
}

/** Ids of stored data, for the references in cases: the latest trace, its root run, its project. */
export async function queryContext(targets: Targets): Promise<QueryContext> {
  const answer = await exchange(targets.traceServer.port, { method: "GET", path: "/api/traces?limit=1", headers: [["x-api-key", "local"]] });
  const fallback = crypto.randomUUID();
  if (answer.kind !== "answered" || answer.status !== 200) return { run: fallback, trace: fallback, project: fallback };
  const trace = (JSON.parse(answer.body.toString("utf8")) as { traces: Array<{ trace_id: string; root_run_id: string | null; project_ids: string[] }> }).traces[0];
  return { run: trace?.root_run_id ?? fallback, trace: trace?.trace_id ?? fallback, project: trace?.project_ids[0] ?? fallback };
}

function substitute(text: string, ctx: QueryContext): string {
  return text.replace(/\$(run|trace|project)/g, (_m, ref: keyof QueryContext) => ctx[ref]);
}

export function describeQueryCase(c: QueryCase): string {
  const query = c.query.map((q) => `${q.key}=${q.value.slice(0, 80)}${q.raw ? "(raw)" : ""}`).join("&");
  return `${c.method} ${c.path}${query ? `?${query}` : ""}${c.body === undefined ? "" : ` body=${(typeof c.body === "string" ? c.body : JSON.stringify(c.body)).slice(0, 300)}`}`;
}

/** Every byte but the unreserved ones as %XX (UTF-8; a lone surrogate becomes U+FFFD, as a browser sends it). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, "utf8")].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0").toUpperCase()}`)).join("");
}

/** A raw value may hold what no request line can (spaces, control characters, '#'): only those are escaped. */
function escapeUnsafe(path: string): string {
  return [...path].map((ch) => (ch > " " && ch < "\u007f" && ch !== "#" ? ch : percentEncode(ch))).join("");
}

// Looked up once per pair of processes, at its first query case, when the other targets have stored data.
const contexts = new WeakMap<Targets, QueryContext>();

export async function runQueryCase(targets: Targets, c: QueryCase): Promise<Verdict> {
  const ctx = contexts.get(targets) ?? (await queryContext(targets));
  contexts.set(targets, ctx);
  const query = c.query.map((q) => `${q.raw ? q.key : percentEncode(q.key)}=${q.raw ? substitute(q.value, ctx) : percentEncode(substitute(q.value, ctx))}`).join("&");
  const path = escapeUnsafe(`${substitute(c.path, ctx)}${query ? `?${query}` : ""}`);
  const body = c.body === undefined ? undefined : Buffer.from(substitute(typeof c.body === "string" ? c.body : JSON.stringify(c.body), ctx));
  const headers: Array<[string, string]> = [["x-api-key", "local"]];
  if (body !== undefined) headers.push(["content-type", "application/json"]);
  const request: RawRequest = { method: c.method, path, headers, body };
  // The trace server keeps node's default header limit, which a long query string passes.
  const answer = await applicationAnswer(targets.traceServer.port, request, maxHeaderSize);
  if ("bucket" in answer) return answer;
  let detail: string | undefined;
  if (answer.status >= 400) {
    try {
      const json = JSON.parse(answer.body.toString("utf8")) as { detail?: unknown };
      detail = typeof json.detail === "string" ? json.detail : undefined;
    } catch {
      return { bucket: String(answer.status), violation: `answered ${answer.status} with a body that is not JSON` };
    }
  }
  return judgeStatus(answer.status, detail, [501]);
}
