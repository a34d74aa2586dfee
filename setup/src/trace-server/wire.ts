import { normalizeTime } from "./time.js";
import type { JsonObject, RawJsonField, RejectionRule, RunUpsert } from "./types.js";
import { isUuid } from "./validate.js";

/** A run operation that could not be decoded, with the rule it broke. */
export interface DecodeFailure {
  op: "post" | "patch";
  run_id: string | null;
  trace_id: string | null;
  rule: RejectionRule;
  message: string;
  payload: unknown;
}

export type Decoded = { ok: true; runs: RunUpsert[] } | { ok: false; failure: DecodeFailure };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Levels of objects and arrays a run field may nest. JSON.parse takes any
 * depth, but JSON.stringify (every read answer) recurses and overflows the
 * stack somewhere past a few thousand levels, less deep inside a request
 * handler: one such run, once stored, would fail every read that includes it.
 * SDK payloads nest far less (a chat model's messages about 6 levels, a
 * tool's JSON schema a few more); 256 is far above them and far below the
 * overflow.
 */
export const MAX_NESTING = 256;

/**
 * Whether a parsed JSON value nests objects/arrays more than `levels` deep.
 * It stops as soon as the budget is spent, so its own recursion stays within
 * `levels` however deep the value goes.
 */
function nestsDeeperThan(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestsDeeperThan(item, levels - 1)) return true;
    return false;
  }
  const object = value as JsonObject;
  for (const key in object) if (nestsDeeperThan(object[key], levels - 1)) return true;
  return false;
}

/** The first field of `object` whose value nests deeper than MAX_NESTING, if any. */
export function tooDeepField(object: JsonObject): string | undefined {
  for (const key in object) if (nestsDeeperThan(object[key], MAX_NESTING)) return key;
  return undefined;
}

class FieldError extends Error {
  constructor(
    readonly rule: RejectionRule,
    message: string,
  ) {
    super(message);
  }
}

const present = (v: unknown): boolean => v !== undefined && v !== null;

function optString(body: JsonObject, key: string): string | undefined {
  const v = body[key];
  if (!present(v)) return undefined;
  if (typeof v !== "string") throw new FieldError("invalid_field", `${key} must be a string, got ${typeof v}`);
  return v;
}

function optUuid(body: JsonObject, key: string): string | undefined {
  const v = body[key];
  if (!present(v)) return undefined;
  if (!isUuid(v)) throw new FieldError("invalid_uuid", `${key} must be a UUID, got ${JSON.stringify(v)}`);
  return v.toLowerCase();
}

function optObject(body: JsonObject, key: string): JsonObject | undefined {
  const v = body[key];
  if (!present(v)) return undefined;
  if (!isJsonObject(v)) throw new FieldError("invalid_field", `${key} must be a JSON object`);
  return v;
}

function optTime(body: JsonObject, key: string): string | undefined {
  const v = body[key];
  if (!present(v)) return undefined;
  const t = normalizeTime(v);
  if (t === undefined) {
    throw new FieldError("invalid_field", `${key} must be an ISO-8601 time or epoch milliseconds, got ${JSON.stringify(v)}`);
  }
  return t;
}

function optError(body: JsonObject): string | undefined {
  const v = body.error;
  if (!present(v)) return undefined;
  // LangSmith stores errors as text; structured errors are kept rather than refused.
  return typeof v === "string" ? v : JSON.stringify(v);
}

function optEvents(body: JsonObject): JsonObject[] | undefined {
  const v = body.events;
  if (!present(v)) return undefined;
  if (!Array.isArray(v) || !v.every(isJsonObject)) throw new FieldError("invalid_field", "events must be an array of objects");
  return v;
}

function optTags(body: JsonObject): string[] | undefined {
  const v = body.tags;
  if (!present(v)) return undefined;
  if (!Array.isArray(v) || !v.every((t) => typeof t === "string")) {
    throw new FieldError("invalid_field", "tags must be an array of strings");
  }
  return v;
}

/**
 * Decode one run create/update as the SDK serializes it (JSON batch, single
 * run, or the main part of a multipart operation with its field parts merged
 * in). Legacy nested `child_runs` are flattened into further creates.
 */
export function decodeRun(op: "post" | "patch", body: unknown, pathId?: string, raw?: Partial<Record<RawJsonField, string>>): Decoded {
  if (!isJsonObject(body) && nestsDeeperThan(body, MAX_NESTING)) {
    // Refused alone, as any other malformed operation: its neighbours in the batch are still stored.
    return { ok: false, failure: failureOf(op, body, pathId, "invalid_field", `a run ${op} must be a JSON object, and this value nests deeper than ${MAX_NESTING} levels`, `<nested deeper than ${MAX_NESTING} levels>`) };
  }
  if (isJsonObject(body)) {
    // The whole body, legacy child_runs included, is checked once, before anything else walks it.
    const deep = tooDeepField(body);
    if (deep !== undefined) {
      // The stored rejection keeps its payload as JSON text, which the deep field would not serialize to.
      const payload = { ...body, [deep]: `<nested deeper than ${MAX_NESTING} levels>` };
      return { ok: false, failure: failureOf(op, body, pathId, "invalid_field", `${deep} nests objects/arrays deeper than ${MAX_NESTING} levels`, payload) };
    }
  }
  return decodeChecked(op, body, pathId, raw);
}

function failureOf(op: "post" | "patch", body: unknown, pathId: string | undefined, rule: RejectionRule, message: string, payload: unknown = body): DecodeFailure {
  const runId = isJsonObject(body) && isUuid(body.id) ? body.id.toLowerCase() : pathId ?? null;
  const traceId = isJsonObject(body) && isUuid(body.trace_id) ? body.trace_id.toLowerCase() : null;
  return { op, run_id: runId, trace_id: traceId, rule, message, payload };
}

function decodeChecked(op: "post" | "patch", body: unknown, pathId?: string, raw?: Partial<Record<RawJsonField, string>>): Decoded {
  const fail = (rule: RejectionRule, message: string): Decoded => ({ ok: false, failure: failureOf(op, body, pathId, rule, message) });
  if (!isJsonObject(body)) return fail("invalid_field", `a run ${op} must be a JSON object`);
  try {
    let id = optUuid(body, "id");
    if (pathId !== undefined) {
      if (id !== undefined && id !== pathId) {
        return fail("conflict", `body id ${id} differs from the id in the URL ${pathId}`);
      }
      id = pathId;
    }
    if (id === undefined) {
      return fail(present(body.id) ? "invalid_uuid" : "missing_field", present(body.id) ? `id must be a UUID, got ${JSON.stringify(body.id)}` : "id is required");
    }
    const run: RunUpsert = { op, id, source: "sdk" };
    const assign = <K extends keyof RunUpsert>(key: K, value: RunUpsert[K] | undefined): void => {
      if (value !== undefined) run[key] = value;
    };
    assign("trace_id", optUuid(body, "trace_id"));
    assign("dotted_order", optString(body, "dotted_order"));
    assign("parent_run_id", optUuid(body, "parent_run_id"));
    assign("session_name", optString(body, "session_name"));
    assign("session_id", optUuid(body, "session_id"));
    assign("name", optString(body, "name"));
    assign("run_type", optString(body, "run_type"));
    assign("start_time", optTime(body, "start_time"));
    assign("end_time", optTime(body, "end_time"));
    assign("inputs", optObject(body, "inputs"));
    assign("outputs", optObject(body, "outputs"));
    assign("error", optError(body));
    assign("extra", optObject(body, "extra"));
    assign("events", optEvents(body));
    assign("tags", optTags(body));
    assign("serialized", optObject(body, "serialized"));
    assign("reference_example_id", optUuid(body, "reference_example_id"));
    assign("address", optString(body, "address"));
    if (raw) {
      for (const field of Object.keys(raw) as RawJsonField[]) {
        if (run[field] !== undefined) (run.raw ??= {})[field] = raw[field] as string;
      }
    }
    const runs = [run];
    const children = body.child_runs;
    if (Array.isArray(children)) {
      for (const child of children) {
        const decoded = decodeChecked("post", isJsonObject(child) && run.session_name !== undefined && !present(child.session_name) ? { ...child, session_name: run.session_name } : child);
        if (!decoded.ok) return decoded;
        runs.push(...decoded.runs);
      }
    }
    return { ok: true, runs };
  } catch (e) {
    if (e instanceof FieldError) return fail(e.rule, e.message);
    throw e;
  }
}
