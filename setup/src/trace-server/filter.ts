import { MAX_FILTER_CALLS, MAX_FILTER_CHARS, MAX_FILTER_DEPTH } from "./limits.js";
import { normalizeTime, timeToMs } from "./time.js";
import type { JsonObject, StoredRun } from "./types.js";

/**
 * A subset of LangSmith's run filter language, enough for the queries the
 * notebooks and the SDK itself issue (`readThread` filters on thread_id):
 *
 *   and(...), or(...), not(x)
 *   eq, neq, gt, gte, lt, lte  (field, value)
 *   has(tags, "x"), search("text") / search(field, "text")
 *   and(eq(metadata_key, "k"), eq(metadata_value, "v"))  -- metadata k equals v
 *
 * Fields: id, name, run_type, status, error, trace_id, parent_run_id,
 * session_id, reference_example_id, start_time, end_time, latency (seconds),
 * total_tokens, prompt_tokens, completion_tokens, tags, is_root, thread_id,
 * metadata_key, metadata_value, dotted_order.
 */
export class FilterError extends Error {}

type Literal = string | number | boolean | null;
type Node = { fn: string; args: Arg[] };
type Arg = Node | { literal: Literal } | { field: string };

const FIELDS = new Set([
  "id", "name", "run_type", "status", "error", "trace_id", "parent_run_id", "session_id", "reference_example_id",
  "start_time", "end_time", "latency", "total_tokens", "prompt_tokens", "completion_tokens", "tags", "is_root",
  "thread_id", "metadata_key", "metadata_value", "dotted_order",
]);
const COMPARATORS = new Set(["eq", "neq", "gt", "gte", "lt", "lte"]);
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * A compiled filter. `cost` is the number of function calls in it: what testing one run costs,
 * which the query budget charges per run scanned (limits.ts).
 */
export type RunPredicate = ((run: StoredRun) => boolean) & { cost?: number };

/**
 * Compile a filter, or throw FilterError (a 400) naming what is wrong. A filter longer than
 * MAX_FILTER_CHARS, with more than MAX_FILTER_CALLS calls, or nesting calls deeper than
 * MAX_FILTER_DEPTH is refused before any run is tested: one `or()` of 6,000 `search()` terms
 * blocked the server for seconds per query.
 */
export function compileFilter(source: string): RunPredicate {
  if (source.length > MAX_FILTER_CHARS) throw new FilterError(`invalid filter: it is ${source.length} characters, over the limit of ${MAX_FILTER_CHARS}`);
  const parser = new Parser(source);
  const node = parser.parseTop();
  // search() serializes the run; with several search terms, once per run is enough.
  const haystacks = new WeakMap<StoredRun, string>();
  const predicate: RunPredicate = (run) => evaluate(node, run, haystacks);
  predicate.cost = parser.calls;
  return predicate;
}

class Parser {
  private pos = 0;
  private depth = 0;
  /** Function calls parsed so far. */
  calls = 0;
  constructor(private readonly src: string) {}

  parseTop(): Node {
    const arg = this.parseArg();
    this.skipWs();
    if (this.pos !== this.src.length) this.fail("unexpected trailing text");
    if (!("fn" in arg)) this.fail("a filter must be a function call such as eq(name, \"x\")");
    return arg;
  }

  private fail(message: string): never {
    const shown = this.src.length > 200 ? `${this.src.slice(0, 200)}...` : this.src;
    throw new FilterError(`invalid filter at position ${this.pos}: ${message}: ${shown}`);
  }

  private skipWs(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos] ?? "")) this.pos++;
  }

  /** `re` (sticky) matched at the current position, consumed; never a copy of the rest of the source. */
  private take(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.src);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  private parseArg(): Arg {
    this.skipWs();
    const ch = this.src[this.pos];
    if (ch === '"' || ch === "'") return { literal: this.parseString(ch) };
    const num = this.take(NUMBER);
    if (num !== undefined) return { literal: Number(num) };
    const ident = this.take(IDENT);
    if (ident === undefined) this.fail("expected a function, field, string or number");
    this.skipWs();
    if (this.src[this.pos] === "(") {
      this.pos++;
      this.calls += 1;
      if (this.calls > MAX_FILTER_CALLS) this.fail(`more than ${MAX_FILTER_CALLS} function calls, the limit per filter`);
      this.depth += 1;
      if (this.depth > MAX_FILTER_DEPTH) this.fail(`calls nested more than ${MAX_FILTER_DEPTH} deep, the limit per filter`);
      const args: Arg[] = [];
      this.skipWs();
      if (this.src[this.pos] !== ")") {
        for (;;) {
          args.push(this.parseArg());
          this.skipWs();
          if (this.src[this.pos] === ",") {
            this.pos++;
            continue;
          }
          if (this.src[this.pos] === ")") break;
          this.fail("expected ',' or ')'");
        }
      }
      this.pos++;
      this.depth -= 1;
      return this.checkCall({ fn: ident, args });
    }
    const word = ident;
    if (word === "null") return { literal: null };
    if (word === "true") return { literal: true };
    if (word === "false") return { literal: false };
    if (!FIELDS.has(word)) this.fail(`unknown field ${word}`);
    return { field: word };
  }

  private parseString(quote: string): string {
    let out = "";
    this.pos++;
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos++];
      if (ch === quote) return out;
      if (ch === "\\") {
        const next = this.src[this.pos++];
        out += next === "n" ? "\n" : next === "t" ? "\t" : next ?? "";
        continue;
      }
      out += ch;
    }
    this.fail("unterminated string");
  }

  private checkCall(node: Node): Node {
    const { fn, args } = node;
    if (fn === "and" || fn === "or") {
      if (args.length === 0 || !args.every((a) => "fn" in a)) this.fail(`${fn}() takes one or more conditions`);
    } else if (fn === "not") {
      if (args.length !== 1 || !("fn" in args[0]!)) this.fail("not() takes exactly one condition");
    } else if (COMPARATORS.has(fn) || fn === "has") {
      if (args.length !== 2 || !("field" in args[0]!) || !("literal" in args[1]!)) this.fail(`${fn}() takes a field and a value`);
    } else if (fn === "search") {
      const ok = (args.length === 1 && "literal" in args[0]!) || (args.length === 2 && "field" in args[0]! && "literal" in args[1]!);
      if (!ok) this.fail("search() takes a string, or a field and a string");
    } else {
      this.fail(`unsupported function ${fn}()`);
    }
    return node;
  }
}

export function metadataOf(run: StoredRun): JsonObject {
  const m = run.extra.metadata;
  return typeof m === "object" && m !== null && !Array.isArray(m) ? (m as JsonObject) : {};
}

/** The conversation a run belongs to, from the metadata keys LangSmith reads it from. */
export function threadIdOf(run: StoredRun): unknown {
  const m = metadataOf(run);
  return m.thread_id ?? m.session_id ?? m.conversation_id ?? null;
}

function fieldValue(run: StoredRun, field: string): unknown {
  switch (field) {
    case "latency":
      return run.start_time && run.end_time ? (timeToMs(run.end_time) - timeToMs(run.start_time)) / 1000 : null;
    case "is_root":
      return run.parent_run_id === null;
    case "thread_id":
      return threadIdOf(run);
    case "metadata_key":
      return Object.keys(metadataOf(run));
    case "metadata_value":
      return Object.values(metadataOf(run));
    default:
      return (run as unknown as JsonObject)[field] ?? null;
  }
}

function compare(fn: string, actual: unknown, expected: Literal, field: string): boolean {
  if (Array.isArray(actual)) {
    // Multi-valued fields (tags, metadata keys/values) match if any element does.
    return fn === "neq" ? !actual.some((a) => compare("eq", a, expected, field)) : actual.some((a) => compare(fn, a, expected, field));
  }
  let a = actual;
  let e: unknown = expected;
  if ((field === "start_time" || field === "end_time") && typeof expected === "string") {
    e = normalizeTime(expected) ?? expected;
  }
  if (typeof a === "number" && typeof e === "string" && e.trim() !== "" && !Number.isNaN(Number(e))) e = Number(e);
  if (typeof a !== typeof e && a !== null && e !== null) {
    a = String(a);
    e = String(e);
  }
  switch (fn) {
    case "eq":
      return a === e;
    case "neq":
      return a !== e;
    default: {
      if (a === null || e === null) return false;
      const x = a as string | number;
      const y = e as string | number;
      return fn === "gt" ? x > y : fn === "gte" ? x >= y : fn === "lt" ? x < y : x <= y;
    }
  }
}

function evaluate(node: Node, run: StoredRun, haystacks: WeakMap<StoredRun, string>): boolean {
  const { fn, args } = node;
  if (fn === "and") {
    const rest = pairMetadata(args as Node[], run);
    return rest.ok && rest.remaining.every((a) => evaluate(a, run, haystacks));
  }
  if (fn === "or") return (args as Node[]).some((a) => evaluate(a, run, haystacks));
  if (fn === "not") return !evaluate(args[0] as Node, run, haystacks);
  if (fn === "search") {
    const needle = String((args[args.length - 1] as { literal: Literal }).literal).toLowerCase();
    let haystack: string | undefined;
    if (args.length === 2) {
      haystack = JSON.stringify(fieldValue(run, (args[0] as { field: string }).field) ?? "").toLowerCase();
    } else {
      haystack = haystacks.get(run);
      if (haystack === undefined) {
        haystack = JSON.stringify([run.name, run.inputs, run.outputs, run.error]).toLowerCase();
        haystacks.set(run, haystack);
      }
    }
    return haystack.includes(needle);
  }
  const field = (args[0] as { field: string }).field;
  const value = (args[1] as { literal: Literal }).literal;
  if (fn === "has") {
    const actual = fieldValue(run, field);
    return Array.isArray(actual) ? actual.includes(value) : actual === value;
  }
  return compare(fn, fieldValue(run, field), value, field);
}

/**
 * LangSmith pairs eq(metadata_key, k) with eq(metadata_value, v) inside one
 * and(): the run must have metadata k equal to v, not merely some key k and
 * some value v.
 */
function pairMetadata(args: Node[], run: StoredRun): { ok: boolean; remaining: Node[] } {
  const keyIdx = args.findIndex((a) => a.fn === "eq" && (a.args[0] as { field?: string }).field === "metadata_key");
  const valIdx = args.findIndex((a) => a.fn === "eq" && (a.args[0] as { field?: string }).field === "metadata_value");
  if (keyIdx < 0 || valIdx < 0) return { ok: true, remaining: args };
  const key = String((args[keyIdx]!.args[1] as { literal: Literal }).literal);
  const expected = (args[valIdx]!.args[1] as { literal: Literal }).literal;
  const actual = metadataOf(run)[key];
  const ok = actual !== undefined && compare("eq", actual, expected, "metadata_value");
  return { ok, remaining: args.filter((_, i) => i !== keyIdx && i !== valIdx) };
}
