import type { Request } from "express";
import { HttpError } from "./body.js";
import { isUuid } from "./validate.js";

/** A query parameter as a list: express gives a string for one occurrence, an array for several. */
export function queryList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string");
}

export function queryString(value: unknown): string | undefined {
  return queryList(value)[0];
}

export function queryInt(value: unknown, name: string, fallback: number): number {
  const s = queryString(value);
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(422, `${name} must be a non-negative integer, got ${JSON.stringify(s)}`);
  return n;
}

export function requireUuidParam(value: unknown, what: string): string {
  if (!isUuid(value)) throw new HttpError(422, `${what} must be a UUID, got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

/** `http://host:port` as the client addressed this server, the prefix for attachment URLs. */
export function urlBase(req: Request): string {
  return `${req.protocol}://${req.get("host") ?? "127.0.0.1"}`;
}
