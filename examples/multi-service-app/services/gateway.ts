// The public edge. It authenticates, rate-limits and validates each request
// before anything else runs, and traces each of those steps: edge latency and
// edge rejections land in the same trace as the LLM call, instead of being
// invisible (they happen before most LLM tracing starts).
//
//   client --POST /chat--> gateway --POST /answer--> orchestrator --> retrieval, llm
import { createHash, timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";
import express from "express";
import { traceable } from "langsmith/traceable";
import { getRequestRun, langsmithTracing } from "@tracing-patterns/example-express-middleware";
import { configure, setServiceName } from "@tracing-patterns/setup";
import { DownstreamError, numberFromEnv, postJson, serve, urlOf } from "./common.js";

/** An answer the gateway gives without asking the orchestrator. */
export class EdgeRejection extends Error {
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

export interface GatewayOptions {
  orchestratorUrl: URL;
  /** API key -> tenant. */
  apiKeys: ReadonlyMap<string, string>;
  rateLimit: RateLimit;
  maxMessageLength: number;
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

interface OrchestratorAnswer {
  answer: string;
  sources: Array<{ id: string; title: string }>;
  model: string;
}

export function createGatewayApp(options: GatewayOptions): express.Express {
  // Keys are compared as hashes of equal length, in constant time, and never kept in clear.
  const keyHashes = [...options.apiKeys].map(([key, tenant]) => ({ hash: sha256(key), tenant }));
  const buckets = new TokenBuckets(options.rateLimit);

  const authenticate = traceable(
    async (apiKey: string | undefined): Promise<{ tenant: string }> => {
      if (!apiKey) throw new EdgeRejection(401, "missing x-api-key header");
      const presented = sha256(apiKey);
      let tenant: string | undefined;
      for (const candidate of keyHashes) if (timingSafeEqual(candidate.hash, presented)) tenant = candidate.tenant;
      if (tenant === undefined) throw new EdgeRejection(401, "unknown API key");
      return { tenant };
    },
    // The key itself must not reach the trace.
    { name: "authenticate", processInputs: (inputs) => ({ api_key: inputs.input ? "(redacted)" : "(missing)" }) },
  );

  const rateLimit = traceable(
    async (input: { tenant: string }) => {
      const decision = buckets.take(input.tenant);
      if (!decision.allowed) {
        throw new EdgeRejection(429, `rate limit exceeded for tenant ${input.tenant}`, { "retry-after": String(decision.retryAfterSeconds) });
      }
      return { remaining: decision.remaining, burst: options.rateLimit.burst, per_second: options.rateLimit.perSecond };
    },
    { name: "rate_limit" },
  );

  const validate = traceable(
    async (input: { contentType: string; body: string }): Promise<{ message: string }> => {
      if (!/^application\/json\b/i.test(input.contentType)) throw new EdgeRejection(400, "expected content-type application/json");
      let parsed: unknown;
      try {
        parsed = JSON.parse(input.body);
      } catch {
        throw new EdgeRejection(400, "body is not valid JSON");
      }
      const message = typeof parsed === "object" && parsed !== null && "message" in parsed ? parsed.message : undefined;
      if (typeof message !== "string" || message.trim().length === 0) throw new EdgeRejection(400, 'expected {"message": "<non-empty string>"}');
      if (message.length > options.maxMessageLength) throw new EdgeRejection(400, `message longer than ${options.maxMessageLength} characters`);
      return { message: message.trim() };
    },
    { name: "validate_request" },
  );

  // The client side of the hop: its duration minus the orchestrator's server run
  // is what the network and the orchestrator's queue cost.
  const callOrchestrator = traceable(
    (input: { message: string }) => postJson<OrchestratorAnswer>("orchestrator", new URL("/answer", options.orchestratorUrl), input),
    { name: "call_orchestrator" },
  );

  const app = express();
  // First, so that requests rejected below are traced too.
  app.use(langsmithTracing({ trust: "edge" }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "gateway" });
  });
  // Parsed as text so that bad JSON is a traced validation failure, not the body parser's 400.
  app.post("/chat", express.text({ type: () => true, limit: "16kb" }), async (req, res) => {
    const run = getRequestRun(req);
    const traceId = run?.trace_id;
    try {
      const { tenant } = await authenticate(req.get("x-api-key"));
      // Runs created from here on inherit the tenant, and it travels to the
      // other services in baggage: every run of the request can be filtered by it.
      if (run) run.metadata = { tenant };
      const quota = await rateLimit({ tenant });
      res.setHeader("x-ratelimit-remaining", String(quota.remaining));
      const { message } = await validate({ contentType: req.get("content-type") ?? "", body: typeof req.body === "string" ? req.body : "" });
      const answer = await callOrchestrator({ message });
      res.json({ ...answer, traceId });
    } catch (err) {
      if (err instanceof EdgeRejection) {
        res.set(err.headers).status(err.status).json({ error: err.message, traceId });
      } else if (err instanceof DownstreamError) {
        res.status(502).json({ error: err.message, traceId });
      } else {
        throw err;
      }
    }
  });
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  setServiceName("gateway");
  configure();
  const app = createGatewayApp({
    orchestratorUrl: urlOf("orchestrator"),
    apiKeys: parseApiKeys(process.env.GATEWAY_API_KEYS ?? DEMO_API_KEYS),
    rateLimit: { burst: numberFromEnv("RATE_LIMIT_BURST", 10), perSecond: numberFromEnv("RATE_LIMIT_PER_SECOND", 2) },
    maxMessageLength: numberFromEnv("MAX_MESSAGE_LENGTH", 2000),
  });
  await serve(app, "gateway");
}
