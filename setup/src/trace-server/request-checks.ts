/**
 * Checks the API routes share before they write: the store quota (a 429, as LangSmith answers
 * when a usage limit is reached), the length limit on names and keys, and the nesting limit on
 * bodies stored as given. Each refusal is an HttpError naming the limit.
 *
 *   router.post("/sessions", requireApiKey, storeQuota(store, opts.maxStoreBytes), handler);
 *   refuseLong(value.name, "name"); refuseDeep(value, "project");
 */
import type { RequestHandler } from "express";
import { HttpError } from "./body.js";
import { MAX_NAME_CHARS } from "./limits.js";
import type { TraceStore } from "./store.js";
import type { JsonObject } from "./types.js";
import { MAX_NESTING, tooDeepField } from "./wire.js";

/** Refuses writes once the store uses more than `maxStoreBytes` (no quota when undefined). */
export function storeQuota(store: TraceStore, maxStoreBytes: number | undefined): RequestHandler {
  return (_req, _res, next) => {
    if (maxStoreBytes === undefined) return next();
    const used = store.sizeBytes();
    if (used <= maxStoreBytes) return next();
    next(new HttpError(429, `the store uses ${used} bytes, over its quota of ${maxStoreBytes} (maxStoreBytes); delete projects or start an empty store to write again`, {}, { "x-should-retry": "false" }));
  };
}

/** `value`, unless it is longer than a name may be (see MAX_NAME_CHARS). */
export function refuseLong(value: string, what: string): string {
  if (value.length > MAX_NAME_CHARS) throw new HttpError(422, `${what} is ${value.length} characters, over the limit of ${MAX_NAME_CHARS}`);
  return value;
}

/** Refuse a body that could be stored but not read back (see MAX_NESTING). */
export function refuseDeep(body: JsonObject, what: string): void {
  const deep = tooDeepField(body);
  if (deep !== undefined) throw new HttpError(422, `${what}: ${deep} nests objects/arrays deeper than ${MAX_NESTING} levels`);
}
