// The gateway's edge plumbing: API keys, token buckets, the request body, and
// the rejection they raise. gateway.ts wraps each decision in a traced step.
import { createHash, timingSafeEqual } from "node:crypto";
import express, { type RequestHandler } from "express";

/** An answer the gateway gives without asking the orchestrator. */
export class EdgeRejection extends Error {
  readonly expose = true;

  constructor(
    readonly status: 400 | 401 | 413 | 429,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "EdgeRejection";
  }
}

export interface RateLimit {
  /** Requests a key may make at once. */
  burst: number;
  /** Tokens added back per second. */
  perSecond: number;
}

/** A token bucket per tenant: `burst` tokens, refilled continuously at `perSecond`. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
  ) {}

  take(key: string): { allowed: boolean; remaining: number; retryAfterSeconds: number } {
    const at = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.limit.burst, at };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((at - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = at;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, remaining: Math.floor(bucket.tokens), retryAfterSeconds: 0 };
    }
    const wait = this.limit.perSecond > 0 ? Math.ceil((1 - bucket.tokens) / this.limit.perSecond) : 3600;
    return { allowed: false, remaining: 0, retryAfterSeconds: wait };
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** API key -> tenant. Keys are compared as hashes of equal length, in constant time, and never kept in clear. */
export class ApiKeys {
  private readonly entries: Array<{ hash: Buffer; tenant: string }>;

  constructor(keys: ReadonlyMap<string, string>) {
    this.entries = [...keys].map(([key, tenant]) => ({ hash: sha256(key), tenant }));
  }

  tenantOf(apiKey: string): string | undefined {
    const presented = sha256(apiKey);
    let tenant: string | undefined;
    for (const candidate of this.entries) if (timingSafeEqual(candidate.hash, presented)) tenant = candidate.tenant;
    return tenant;
  }
}

/** `key=tenant,key=tenant`. The demo keys are for trying the app; set GATEWAY_API_KEYS for anything else. */
export function parseApiKeys(spec: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of spec.split(",").map((e) => e.trim()).filter((e) => e.length > 0)) {
    const eq = entry.indexOf("=");
    const key = entry.slice(0, Math.max(eq, 0));
    const tenant = eq < 0 ? "" : entry.slice(eq + 1);
    // The tenant goes into run metadata, baggage and error messages, so a bare key must never
    // become its own tenant name; the message does not echo the entry either, since it holds a key.
    if (key.length === 0 || tenant.length === 0) throw new Error(`GATEWAY_API_KEYS entry number ${keys.size + 1} is not key=tenant`);
    keys.set(key, tenant);
  }
  return keys;
}

export const DEMO_API_KEYS = "demo-key-alice=alice,demo-key-bob=bob";

/**
 * Reads the body as text (whatever the content type, so that bad JSON is the
 * traced validation step's to refuse), at most `limitBytes`. A larger body is
 * refused with an EdgeRejection(413) that names the limit, passed to the
 * error handler before any gateway step runs. The body parser reads the rest
 * of the request and discards it before that, so the client gets the 413
 * instead of a connection closed under its upload.
 */
export function textBody(limitBytes: number): RequestHandler {
  const parse = express.text({ type: () => true, limit: limitBytes });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      const tooLarge = typeof err === "object" && err !== null && (err as { type?: unknown }).type === "entity.too.large";
      next(tooLarge ? new EdgeRejection(413, `request body larger than ${limitBytes} bytes`) : err);
    });
  };
}
