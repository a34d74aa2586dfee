import type { Request } from "express";
import { HttpError } from "./body.js";
import { MAX_OFFSET } from "./limits.js";
import { isUuid } from "./validate.js";

/**
 * The app's query parser: each parameter is a string, or a list of strings
 * when it repeats, however often. Express's "extended" parser (qs) stops
 * making lists after 20 repeats (an object then, which read as no values: the
 * SDK's 21st project id silently widened a filter), and both it and "simple"
 * drop parameters past the 1000th. Brackets mean nothing here: `a[b]=c` is a
 * parameter named `a[b]`, which the routes that check names refuse.
 */
export function parseQuery(search: string | null | undefined): Record<string, string | string[]> {
  // No prototype: a parameter named __proto__ or constructor is just a name.
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of new URLSearchParams(search ?? "")) {
    const seen = query[name];
    if (seen === undefined) query[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else query[name] = [seen, value];
  }
  return query;
}

type Query = Request["query"];

/** Every value of a query parameter, in order. */
export function queryList(query: Query, name: string): string[] {
  const value = query[name];
  if (value === undefined) return [];
  if (typeof value === "string") return [value];
  // parseQuery makes nothing else; another parser's nested object is refused rather than read as no filter.
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
  throw new HttpError(422, `query parameter ${name} must be ${name}=<value>, repeated for a list; got ${JSON.stringify(value)}`);
}

/** The first value of a query parameter. */
export function queryString(query: Query, name: string): string | undefined {
  return queryList(query, name)[0];
}

/** A non-negative integer parameter in decimal digits, at most MAX_OFFSET (SQLite refuses an OFFSET past 2^63). */
export function queryInt(query: Query, name: string, fallback: number): number {
  const s = queryString(query, name);
  if (s === undefined) return fallback;
  const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!(n <= MAX_OFFSET)) throw new HttpError(422, `${name} must be a non-negative integer of at most ${MAX_OFFSET}, got ${JSON.stringify(s.slice(0, 100))}`);
  return n;
}

export function requireUuidParam(value: unknown, what: string): string {
  if (!isUuid(value)) throw new HttpError(422, `${what} must be a UUID, got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

/**
 * `http://address:port` of this server as the connection reached it, the prefix for attachment
 * URLs. Never the Host header: whoever sends the request chooses that, and a URL built from it
 * (`Host: 127.0.0.1:1984@evil.example`) would send the next client elsewhere.
 */
export function urlBase(req: Request): string {
  const socket = req.socket;
  const address = (socket.localAddress ?? "127.0.0.1").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
  const host = address.includes(":") ? `[${address}]` : address;
  return `${req.protocol}://${host}:${socket.localPort ?? 0}`;
}

/** Query parameters whose value is a credential: the viewer takes the API key as `?key=`. */
const SECRET_PARAMS = new Set(["key", "api_key", "api-key", "apikey", "x-api-key", "x_api_key", "token", "access_token"]);

/** A request URL fit for a log: the values of credential-like query parameters replaced. */
export function redactUrl(url: string): string {
  const at = url.indexOf("?");
  if (at === -1) return url;
  const pairs = url.slice(at + 1).split("&").map((pair) => {
    const eq = pair.indexOf("=");
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    return SECRET_PARAMS.has(decodedName(rawName).toLowerCase()) ? `${rawName}=[redacted]` : pair;
  });
  return `${url.slice(0, at)}?${pairs.join("&")}`;
}

function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}
