// fast-check building blocks shared by the hostile-input campaign's targets: valid dotted orders
// and UUIDs to start from, edits that mutate a valid string the way a broken proxy, a truncating
// log pipeline or an attacker would, hostile strings, and JSON values of any type. Use:
//   fc.sample(mutated(dottedOrderArb()), { seed: 1, numRuns: 10 });
import fc from "fast-check";

/** `YYYYMMDDTHHMMSSffffffZ` for a time, as the SDK writes a dotted-order timestamp. */
export function timestamp(date: Date, micros = 0): string {
  return `${date.toISOString().replace(/[-:]/g, "").replace(/\.(\d{3})Z$/, "")}${String(date.getUTCMilliseconds()).padStart(3, "0")}${String(micros).padStart(3, "0")}Z`;
}

/** ISO time with microseconds, the form a run's start_time takes. */
export function isoMicros(date: Date, micros = 0): string {
  return date.toISOString().replace("Z", `${String(micros).padStart(3, "0")}Z`);
}

export const dateArb = fc.date({ min: new Date("2001-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true });

/** A UUID in the lower case the SDK writes. */
export const uuidArb = fc.uuid();

/** Strings a parser should survive: control characters, separators, lone surrogates, bad escapes. */
export const hostileStringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 24 }),
  fc.string({ unit: "grapheme", maxLength: 24 }),
  fc.string({ unit: fc.constantFrom("a", "%", ".", "Z", "-", ",", "=", ";", "0", "T", " ", "\t"), maxLength: 40 }),
  fc.constantFrom(
    "", " ", "\r\n", "\u0000", "%", "%ZZ", "%E0%A4%A", "..", ".", "Z", ",", ";", "=", "\u00ff\u00fe", "\ud800", "\udfff\ud800", "\u2028", "\ufeff",
    "null", "[]", "{}", "NaN", "-0", "1e400", "__proto__", "constructor", "' OR 1=1; --", "../../etc/passwd", "<script>", "${x}",
  ),
);

export type StringEdit =
  | { op: "insert"; at: number; text: string }
  | { op: "delete"; at: number; count: number }
  | { op: "replace"; at: number; text: string }
  | { op: "truncate"; at: number }
  | { op: "repeat"; times: number; joiner: string }
  | { op: "case"; upper: boolean }
  | { op: "pad"; text: string };

export const stringEditArb: fc.Arbitrary<StringEdit> = fc.oneof(
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: hostileStringArb }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: hostileStringArb }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("repeat" as const), times: fc.integer({ min: 2, max: 200 }), joiner: fc.constantFrom(".", ",", "", " ", ";") }),
  fc.record({ op: fc.constant("case" as const), upper: fc.boolean() }),
  fc.record({ op: fc.constant("pad" as const), text: fc.constantFrom(" ", "\t", "  \t ", ".", ",") }),
);

export function applyEdit(value: string, edit: StringEdit): string {
  const at = value.length === 0 ? 0 : ("at" in edit ? edit.at % (value.length + 1) : 0);
  switch (edit.op) {
    case "insert":
      return value.slice(0, at) + edit.text + value.slice(at);
    case "delete":
      return value.slice(0, at) + value.slice(at + edit.count);
    case "replace":
      return value.slice(0, at) + edit.text + value.slice(at + edit.text.length);
    case "truncate":
      return value.slice(0, at);
    case "repeat": {
      // At most about 8 MB: past that the harness, not the server, runs out of string length.
      const times = Math.max(1, Math.min(edit.times, Math.floor(8_000_000 / Math.max(1, value.length + edit.joiner.length))));
      return Array.from({ length: times }, () => value).join(edit.joiner);
    }
    case "case":
      return edit.upper ? value.toUpperCase() : value.toLowerCase();
    case "pad":
      return `${edit.text}${value}${edit.text}`;
  }
}

/** `base`, edited one to three times. */
export function mutated(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(base, fc.array(stringEditArb, { minLength: 1, maxLength: 3 })).map(([value, edits]) => edits.reduce(applyEdit, value));
}

/** A valid dotted order of 1-6 segments, ids distinct, times increasing. */
export function dottedOrderArb(): fc.Arbitrary<{ dottedOrder: string; ids: string[] }> {
  return fc.tuple(dateArb, fc.uniqueArray(uuidArb, { minLength: 1, maxLength: 6 })).map(([date, ids]) => ({
    ids,
    dottedOrder: ids.map((id, i) => `${timestamp(new Date(date.getTime() + i))}${id}`).join("."),
  }));
}

/** A value of about `bytes` characters: the size a body or header limit is about. */
export function hugeString(bytes: number, fill = "x"): string {
  return fill.repeat(Math.max(1, Math.floor(bytes / fill.length)));
}

/** JSON text nested `depth` levels deep, written out because JSON.stringify cannot go that deep. */
export function deepJson(depth: number, kind: "array" | "object"): string {
  return kind === "array" ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}

/** Any JSON-ish value, including the ones a schema does not expect: wrong types, lone surrogates, big numbers. */
export const anyJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileStringArb,
  fc.constantFrom(null, true, false, 0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 0.1, [], {}, [[[]]], ""),
  fc.double(),
);
