import { chooseOption } from "./choose.js";
import type { JsonSchema } from "./wire.js";

// Builds a JSON value that satisfies a JSON Schema (the subset used for OpenAI
// tool parameters and structured outputs), filling fields from the user's text
// where a field name says what it wants, and from schema defaults otherwise.

const MAX_DEPTH = 8;

/**
 * Work allowed for all the schemas one request fills: one step per value
 * generated and per schema entry read (property, enum option, variant, allOf
 * part, key of a merged schema). Without a bound `minItems` multiplies through
 * nested arrays: a 300-byte schema asking for 1000 x 1000 strings took 975 MB,
 * 3000 x 3000 exhausted the heap, and the server runs inside notebook kernels.
 * A real model cannot answer with more than its output tokens (16,384 for
 * gpt-4o-mini, about 64 KB), so an honest schema stays far below both limits.
 */
export const MAX_FILL_STEPS = 100_000;
/** Characters of strings, keys and copied `const`/`default`/`enum` values one request may generate. */
export const MAX_FILL_CHARS = 1_000_000;

/** A schema that asks for more than one request may generate; `param` names the request field holding it, once known. */
export class SchemaTooLargeError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** What the schemas filled for one request have used; shared by every tool call and choice of that request. */
export class FillBudget {
  private steps = 0;
  private chars = 0;
  /**
   * What the request's text yields (its numbers, a proper noun, an id ...), by kind, read once per
   * request: every tool call and choice fills from the same text, and reading it per call cost
   * tool calls times the message.
   */
  readonly fromText = new Map<string, { text: string; value: unknown }>();

  step(count = 1): void {
    this.steps += count;
    if (this.steps > MAX_FILL_STEPS) {
      throw new SchemaTooLargeError(`filling it takes more than ${MAX_FILL_STEPS} steps (values generated plus schema entries read); minItems multiplies through nested arrays`);
    }
  }

  text(length: number): void {
    this.chars += length;
    if (this.chars > MAX_FILL_CHARS) {
      throw new SchemaTooLargeError(`filling it generates more than ${MAX_FILL_CHARS} characters (strings, keys and copied const/default/enum values)`);
    }
  }
}

const LOCATION_FIELD = /^(city|location|place|country|region|destination|origin|address|town|where|area)$/i;
const NAME_FIELD = /^(name|person|user|username|customer|author|who|recipient)$/i;
// The lookbehind starts a match only where a run of address characters starts: without it a
// long run with no "@" is rescanned from every position (40 KB of text took 2 s).
const EMAIL = /(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+/;

interface Context {
  text: string;
  numbers: number[];
  /** Index of the next number of `numbers` to hand out. */
  nextNumber: number;
  root: JsonSchema;
  budget: FillBudget;
  /** The option each `enum` array resolves to, and each `$ref` target: both depend only on the request. */
  enumChoices: WeakMap<unknown[], number>;
  refs: Map<string, JsonSchema | undefined>;
  /** JSON length of copied object values, measured once each. */
  sizes: WeakMap<object, number>;
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveRef(ref: string, context: Context): JsonSchema | undefined {
  if (context.refs.has(ref)) return context.refs.get(ref);
  let target: JsonSchema | undefined;
  if (ref.startsWith("#")) {
    let node: unknown = context.root;
    const parts = ref.slice(1).split("/").filter((part) => part !== "");
    context.budget.step(parts.length);
    for (const raw of parts) {
      let key: string;
      try {
        key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      } catch {
        // Malformed percent-encoding: a $ref that points nowhere, like any other unresolvable one.
        node = undefined;
        break;
      }
      if (!isSchema(node)) break;
      node = node[key];
    }
    target = isSchema(node) ? node : undefined;
  }
  context.refs.set(ref, target);
  return target;
}

function schemaTypes(schema: JsonSchema, budget: FillBudget): string[] {
  const { type } = schema;
  if (typeof type === "string") return [type];
  if (Array.isArray(type)) {
    budget.step(type.length);
    return type.filter((entry): entry is string => typeof entry === "string");
  }
  if (isSchema(schema.properties)) return ["object"];
  if (schema.items !== undefined) return ["array"];
  return [];
}

/** Charges a value copied from the schema by its JSON length, and returns it. */
function copied(value: unknown, context: Context): unknown {
  if (typeof value === "string") context.budget.text(value.length);
  else if (typeof value === "object" && value !== null) {
    let size = context.sizes.get(value);
    if (size === undefined) {
      size = JSON.stringify(value).length;
      context.sizes.set(value, size);
    }
    context.budget.text(size);
  }
  return value;
}

function properNoun(text: string): string | undefined {
  const afterPreposition = /\b(?:in|at|for|to|from|near|of|about)\s+((?:[A-Z][\p{L}'-]*)(?:\s+[A-Z][\p{L}'-]*)*)/u.exec(text);
  if (afterPreposition?.[1]) return afterPreposition[1];
  const words = text.split(/\s+/u);
  return words.slice(1).find((word) => /^[A-Z][\p{L}'-]+$/u.test(word));
}

function fromText<T>(context: Context, kind: string, derive: (text: string) => T): T {
  const known = context.budget.fromText.get(kind);
  if (known?.text === context.text) return known.value as T;
  const value = derive(context.text);
  context.budget.fromText.set(kind, { text: context.text, value });
  return value;
}

function stringFor(field: string, schema: JsonSchema, context: Context): string {
  const format = typeof schema.format === "string" ? schema.format : "";
  let value: string | undefined;
  if (format === "email" || /email/i.test(field)) value = fromText(context, "email", (text) => EMAIL.exec(text)?.[0]) ?? "user@example.com";
  else if (format === "uri" || format === "url" || /^(url|uri|link|website)$/i.test(field)) value = fromText(context, "url", (text) => /https?:\/\/\S+/.exec(text)?.[0]) ?? "https://example.com/";
  else if (format === "date") value = fromText(context, "date", (text) => /\d{4}-\d{2}-\d{2}/.exec(text)?.[0]) ?? "2025-01-01";
  else if (format === "date-time") value = fromText(context, "date-time", (text) => /\d{4}-\d{2}-\d{2}T[\d:.]+Z?/.exec(text)?.[0]) ?? "2025-01-01T00:00:00Z";
  else if (format === "uuid") value = "00000000-0000-4000-8000-000000000000";
  else if (LOCATION_FIELD.test(field) || NAME_FIELD.test(field)) value = fromText(context, "proper-noun", properNoun);
  else if (/(^id$|_id$|Id$|^(sku|code|ticket|order|invoice|reference))/i.test(field)) value = fromText(context, "id", (text) => /\b[A-Za-z]*[-_#]?\d[\w-]*\b/.exec(text)?.[0]);
  value ??= fromText(context, "whole", (text) => text.trim()) || field || "text";
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : undefined;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  if (maxLength !== undefined && value.length > maxLength) value = value.slice(0, maxLength);
  // Charged before padding, so an absurd minLength is refused instead of allocated.
  context.budget.text(Math.max(value.length, minLength));
  if (value.length < minLength) value = value.padEnd(minLength, ".");
  return value;
}

function numberFor(schema: JsonSchema, integer: boolean, context: Context): number {
  const bound = (key: string): number | undefined => {
    const value = schema[key];
    return typeof value === "number" ? value : undefined;
  };
  const min = bound("minimum");
  const max = bound("maximum");
  const exclusiveMin = bound("exclusiveMinimum");
  const exclusiveMax = bound("exclusiveMaximum");
  const low = min ?? exclusiveMin;
  const high = max ?? exclusiveMax;
  const inside = (value: number): boolean =>
    (min === undefined || value >= min) &&
    (max === undefined || value <= max) &&
    (exclusiveMin === undefined || value > exclusiveMin) &&
    (exclusiveMax === undefined || value < exclusiveMax);
  const shape = (value: number): number => (integer ? Math.round(value) : value);
  const fromText = context.numbers[context.nextNumber];
  if (fromText !== undefined) context.nextNumber += 1;
  if (fromText !== undefined && inside(shape(fromText))) return shape(fromText);
  const candidates = [
    low !== undefined && high !== undefined ? (low + high) / 2 : undefined,
    min,
    max,
    exclusiveMin === undefined ? undefined : exclusiveMin + 1,
    exclusiveMax === undefined ? undefined : exclusiveMax - 1,
    1,
    0,
  ];
  for (const candidate of candidates) {
    if (candidate !== undefined && inside(shape(candidate))) return shape(candidate);
  }
  return shape(low ?? high ?? 0);
}

function enumChoice(options: unknown[], context: Context): unknown {
  let index = context.enumChoices.get(options);
  if (index === undefined) {
    context.budget.step(options.length);
    const labels = options.map((entry) => (typeof entry === "string" ? entry : JSON.stringify(entry)));
    index = chooseOption(labels.map((label) => ({ label })), context.text);
    context.enumChoices.set(options, index);
  }
  return copied(options[index], context);
}

function fill(schemaIn: JsonSchema, field: string, context: Context, depth: number): unknown {
  const { budget } = context;
  budget.step();
  // Self-referencing schemas (anyOf: [{$ref: "#"}]) would otherwise recurse forever.
  if (depth > MAX_DEPTH * 2) return null;
  let schema = schemaIn;
  for (let hops = 0; typeof schema.$ref === "string" && hops < 16; hops += 1) {
    const target = resolveRef(schema.$ref, context);
    if (!target) break;
    const { $ref: _ref, ...rest } = schema;
    budget.step(Object.keys(target).length);
    schema = { ...target, ...rest };
  }
  if ("const" in schema) return copied(schema.const, context);
  if ("default" in schema && schema.default !== undefined) return copied(schema.default, context);
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return enumChoice(schema.enum, context);
  if (Array.isArray(schema.examples) && schema.examples.length > 0 && schemaTypes(schema, budget).includes("string")) return copied(schema.examples[0], context);
  const variants = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (variants) {
    const candidate =
      variants.find((variant) => {
        budget.step();
        return isSchema(variant) && !schemaTypes(variant, budget).every((type) => type === "null");
      }) ?? variants[0];
    return isSchema(candidate) ? fill(candidate, field, context, depth + 1) : null;
  }
  if (Array.isArray(schema.allOf)) {
    const merged: JsonSchema = {};
    const properties: JsonSchema = {};
    const required: string[] = [];
    for (const part of schema.allOf) {
      budget.step();
      if (!isSchema(part)) continue;
      budget.step(Object.keys(part).length);
      Object.assign(merged, part);
      if (isSchema(part.properties)) {
        budget.step(Object.keys(part.properties).length);
        Object.assign(properties, part.properties);
      }
      if (Array.isArray(part.required)) {
        budget.step(part.required.length);
        required.push(...part.required.filter((key): key is string => typeof key === "string"));
      }
    }
    const objectParts = Object.keys(properties).length > 0 ? { type: "object", properties, required } : {};
    return fill({ ...merged, ...objectParts }, field, context, depth + 1);
  }
  const types = schemaTypes(schema, budget);
  const type = types.find((entry) => entry !== "null") ?? types[0];
  switch (type) {
    case "object":
      return depth >= MAX_DEPTH ? {} : fillObject(schema, context, depth);
    case "array": {
      if (depth >= MAX_DEPTH) return [];
      const items = isSchema(schema.items) ? schema.items : {};
      const count = Math.max(1, typeof schema.minItems === "number" ? schema.minItems : 0);
      const limited = typeof schema.maxItems === "number" ? Math.min(count, schema.maxItems) : count;
      // Grown one item at a time, so the budget stops a huge minItems before anything is allocated for it.
      const values: unknown[] = [];
      while (values.length < limited) values.push(fill(items, field, context, depth + 1));
      return values;
    }
    case "integer":
      return numberFor(schema, true, context);
    case "number":
      return numberFor(schema, false, context);
    case "boolean":
      return !/\b(no|not|never|false|disable|without)\b/i.test(context.text);
    case "null":
      return null;
    default:
      return stringFor(field, schema, context);
  }
}

function fillObject(schema: JsonSchema, context: Context, depth: number): Record<string, unknown> {
  const { budget } = context;
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const entries = Object.entries(properties);
  budget.step(entries.length);
  let required: Set<string>;
  if (Array.isArray(schema.required)) {
    budget.step(schema.required.length);
    required = new Set(schema.required.filter((key): key is string => typeof key === "string"));
  } else {
    required = new Set(Object.keys(properties));
  }
  const result: Record<string, unknown> = {};
  for (const [key, property] of entries) {
    if (!required.has(key) || !isSchema(property)) continue;
    budget.text(key.length);
    result[key] = fill(property, key, context, depth + 1);
  }
  return result;
}

/**
 * A value valid against `schema`, derived deterministically from `text`:
 * location/name fields take a capitalised phrase, id fields an id-looking
 * token, numeric fields the numbers in the text in order, enums the label that
 * best matches the text, free-text fields the text itself. Throws
 * SchemaTooLargeError once `budget` (pass one per request) is spent.
 */
export function valueForSchema(schema: JsonSchema, text: string, budget: FillBudget = new FillBudget()): unknown {
  const context: Context = { text, numbers: [], nextNumber: 0, root: schema, budget, enumChoices: new WeakMap(), refs: new Map(), sizes: new WeakMap() };
  context.numbers = fromText(context, "numbers", (all) => (all.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number));
  return fill(schema, "", context, 0);
}
