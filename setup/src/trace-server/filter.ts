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

export type RunPredicate = (run: StoredRun) => boolean;

export function compileFilter(source: string): RunPredicate {
  const node = new Parser(source).parseTop();
  return (run) => evaluate(node, run);
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parseTop(): Node {
    const arg = this.parseArg();
    this.skipWs();
    if (this.pos !== this.src.length) this.fail("unexpected trailing text");
    if (!("fn" in arg)) this.fail("a filter must be a function call such as eq(name, \"x\")");
    return arg;
  }

  private fail(message: string): never {
    throw new FilterError(`invalid filter at position ${this.pos}: ${message}: ${this.src}`);
  }

  private skipWs(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos] ?? "")) this.pos++;
  }

  private parseArg(): Arg {
    this.skipWs();
    const ch = this.src[this.pos];
    if (ch === '"' || ch === "'") return { literal: this.parseString(ch) };
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(this.src.slice(this.pos));
    if (num) {
      this.pos += num[0].length;
      return { literal: Number(num[0]) };
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos));
    if (!ident) this.fail("expected a function, field, string or number");
    this.pos += ident[0].length;
    this.skipWs();
    if (this.src[this.pos] === "(") {
      this.pos++;
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
      return this.checkCall({ fn: ident[0], args });
    }
    const word = ident[0];
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

function evaluate(node: Node, run: StoredRun): boolean {
  const { fn, args } = node;
  if (fn === "and") {
    const rest = pairMetadata(args as Node[], run);
    return rest.ok && rest.remaining.every((a) => evaluate(a, run));
  }
  if (fn === "or") return (args as Node[]).some((a) => evaluate(a, run));
  if (fn === "not") return !evaluate(args[0] as Node, run);
  if (fn === "search") {
    const needle = String((args[args.length - 1] as { literal: Literal }).literal).toLowerCase();
    const haystack = args.length === 2
      ? JSON.stringify(fieldValue(run, (args[0] as { field: string }).field) ?? "")
      : JSON.stringify([run.name, run.inputs, run.outputs, run.error]);
    return haystack.toLowerCase().includes(needle);
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
