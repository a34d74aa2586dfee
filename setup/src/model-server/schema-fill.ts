import { chooseOption } from "./choose.js";
import type { JsonSchema } from "./wire.js";

// Builds a JSON value that satisfies a JSON Schema (the subset used for OpenAI
// tool parameters and structured outputs), filling fields from the user's text
// where a field name says what it wants, and from schema defaults otherwise.

const MAX_DEPTH = 8;

const LOCATION_FIELD = /^(city|location|place|country|region|destination|origin|address|town|where|area)$/i;
const NAME_FIELD = /^(name|person|user|username|customer|author|who|recipient)$/i;

interface Context {
  text: string;
  numbers: number[];
  root: JsonSchema;
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveRef(ref: string, root: JsonSchema): JsonSchema | undefined {
  if (!ref.startsWith("#")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").filter((part) => part !== "")) {
    const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (!isSchema(node)) return undefined;
    node = node[key];
  }
  return isSchema(node) ? node : undefined;
}

function schemaTypes(schema: JsonSchema): string[] {
  const { type } = schema;
  if (typeof type === "string") return [type];
  if (Array.isArray(type)) return type.filter((entry): entry is string => typeof entry === "string");
  if (isSchema(schema.properties)) return ["object"];
  if (schema.items !== undefined) return ["array"];
  return [];
}

function properNoun(text: string): string | undefined {
  const afterPreposition = /\b(?:in|at|for|to|from|near|of|about)\s+((?:[A-Z][\p{L}'-]*)(?:\s+[A-Z][\p{L}'-]*)*)/u.exec(text);
  if (afterPreposition?.[1]) return afterPreposition[1];
  const words = text.split(/\s+/u);
  return words.slice(1).find((word) => /^[A-Z][\p{L}'-]+$/u.test(word));
}

function stringFor(field: string, schema: JsonSchema, context: Context): string {
  const { text } = context;
  const format = typeof schema.format === "string" ? schema.format : "";
  let value: string | undefined;
  if (format === "email" || /email/i.test(field)) value = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/.exec(text)?.[0] ?? "user@example.com";
  else if (format === "uri" || format === "url" || /^(url|uri|link|website)$/i.test(field)) value = /https?:\/\/\S+/.exec(text)?.[0] ?? "https://example.com/";
  else if (format === "date") value = /\d{4}-\d{2}-\d{2}/.exec(text)?.[0] ?? "2025-01-01";
  else if (format === "date-time") value = /\d{4}-\d{2}-\d{2}T[\d:.]+Z?/.exec(text)?.[0] ?? "2025-01-01T00:00:00Z";
  else if (format === "uuid") value = "00000000-0000-4000-8000-000000000000";
  else if (LOCATION_FIELD.test(field) || NAME_FIELD.test(field)) value = properNoun(text);
  else if (/(^id$|_id$|Id$|^(sku|code|ticket|order|invoice|reference))/i.test(field)) value = /\b[A-Za-z]*[-_#]?\d[\w-]*\b/.exec(text)?.[0];
  value ??= text.trim() || field || "text";
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : undefined;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  if (maxLength !== undefined && value.length > maxLength) value = value.slice(0, maxLength);
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
  const fromText = context.numbers.shift();
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

function fill(schemaIn: JsonSchema, field: string, context: Context, depth: number): unknown {
  // Self-referencing schemas (anyOf: [{$ref: "#"}]) would otherwise recurse forever.
  if (depth > MAX_DEPTH * 2) return null;
  let schema = schemaIn;
  for (let hops = 0; typeof schema.$ref === "string" && hops < 16; hops += 1) {
    const target = resolveRef(schema.$ref, context.root);
    if (!target) break;
    const { $ref: _ref, ...rest } = schema;
    schema = { ...target, ...rest };
  }
  if ("const" in schema) return schema.const;
  if ("default" in schema && schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    const labels = schema.enum.map((entry) => (typeof entry === "string" ? entry : JSON.stringify(entry)));
    return schema.enum[chooseOption(labels.map((label) => ({ label })), context.text)];
  }
  if (Array.isArray(schema.examples) && schema.examples.length > 0 && schemaTypes(schema).includes("string")) return schema.examples[0];
  const variants = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined;
  if (variants) {
    const candidate = variants.find((variant) => isSchema(variant) && !schemaTypes(variant).every((type) => type === "null")) ?? variants[0];
    return isSchema(candidate) ? fill(candidate, field, context, depth + 1) : null;
  }
  if (Array.isArray(schema.allOf)) {
    const merged: JsonSchema = {};
    const properties: JsonSchema = {};
    const required: string[] = [];
    for (const part of schema.allOf) {
      if (!isSchema(part)) continue;
      Object.assign(merged, part);
      if (isSchema(part.properties)) Object.assign(properties, part.properties);
      if (Array.isArray(part.required)) required.push(...part.required.filter((key): key is string => typeof key === "string"));
    }
    const objectParts = Object.keys(properties).length > 0 ? { type: "object", properties, required } : {};
    return fill({ ...merged, ...objectParts }, field, context, depth + 1);
  }
  const types = schemaTypes(schema);
  const type = types.find((entry) => entry !== "null") ?? types[0];
  switch (type) {
    case "object":
      return depth >= MAX_DEPTH ? {} : fillObject(schema, context, depth);
    case "array": {
      if (depth >= MAX_DEPTH) return [];
      const items = isSchema(schema.items) ? schema.items : {};
      const count = Math.max(1, typeof schema.minItems === "number" ? schema.minItems : 0);
      const limited = typeof schema.maxItems === "number" ? Math.min(count, schema.maxItems) : count;
      return Array.from({ length: limited }, () => fill(items, field, context, depth + 1));
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
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required)
    ? new Set(schema.required.filter((key): key is string => typeof key === "string"))
    : new Set(Object.keys(properties));
  const result: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(properties)) {
    if (!required.has(key) || !isSchema(property)) continue;
    result[key] = fill(property, key, context, depth + 1);
  }
  return result;
}

/**
 * A value valid against `schema`, derived deterministically from `text`:
 * location/name fields take a capitalised phrase, id fields an id-looking
 * token, numeric fields the numbers in the text in order, enums the label that
 * best matches the text, free-text fields the text itself.
 */
export function valueForSchema(schema: JsonSchema, text: string): unknown {
  const numbers = (text.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number);
  return fill(schema, "", { text, numbers, root: schema }, 0);
}
