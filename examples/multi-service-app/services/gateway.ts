// The public edge. It authenticates, rate-limits and validates each request
// before anything else runs, and traces each of those steps: edge latency and
// edge rejections land in the same trace as the LLM call, instead of being
// invisible (they happen before most LLM tracing starts).
//
//   client --POST /chat--> gateway --POST /answer--> orchestrator --> retrieval, llm
import { fileURLToPath } from "node:url";
import express from "express";
import { getRequestRun, jsonErrors, langsmithTracing, traced, type Sampler } from "@tracing-patterns/kit";
import { AnswerResponseSchema } from "./contracts.js";
import { isDownstreamError, postJson } from "./downstream.js";
import { ApiKeys, DEMO_API_KEYS, EdgeRejection, TokenBuckets, parseApiKeys, textBody, type RateLimit } from "./edge.js";
import { numberFromEnv, urlOf } from "./env.js";
import { contextKeyFromEnv } from "./internal.js";
import { samplerFromEnv } from "./sampling.js";
import { serve } from "./serve.js";

export interface GatewayOptions {
  orchestratorUrl: URL;
  /** API key -> tenant. */
  apiKeys: ReadonlyMap<string, string>;
  rateLimit: RateLimit;
  maxMessageLength: number;
  /** Shared with the internal services: signs the forwarded trace context and derives the caller token. */
  contextKey: string;
  /** Which requests are traced (sampling.ts); the gateway decides for every service. Default: all. */
  sampling?: Sampler;
}

/** Larger bodies get a 413 before any step runs. */
export const MAX_BODY_BYTES = 16 * 1024;

export function createGatewayApp(options: GatewayOptions): express.Express {
  const keys = new ApiKeys(options.apiKeys);
  const buckets = new TokenBuckets(options.rateLimit);

  const authenticate = traced(
    async (apiKey: string | undefined): Promise<{ tenant: string }> => {
      if (!apiKey) throw new EdgeRejection(401, "missing x-api-key header");
      const tenant = keys.tenantOf(apiKey);
      if (tenant === undefined) throw new EdgeRejection(401, "unknown API key");
      return { tenant };
    },
    // The key itself must not reach the trace.
    { name: "authenticate", processInputs: (inputs) => ({ api_key: inputs.input ? "(redacted)" : "(missing)" }) },
  );

  const rateLimit = traced(
    async (input: { tenant: string }) => {
      const decision = buckets.take(input.tenant);
      if (!decision.allowed) {
        throw new EdgeRejection(429, `rate limit exceeded for tenant ${input.tenant}`, { "retry-after": String(decision.retryAfterSeconds) });
      }
      return { remaining: decision.remaining, burst: options.rateLimit.burst, per_second: options.rateLimit.perSecond };
    },
    { name: "rate_limit" },
  );

  const validate = traced(
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
  const callOrchestrator = traced(
    (input: { message: string }) => postJson("orchestrator", new URL("/answer", options.orchestratorUrl), input, AnswerResponseSchema, options.contextKey),
    { name: "call_orchestrator" },
  );

  const app = express();
  // First, so that requests rejected below are traced too.
  app.use(langsmithTracing({ trust: "edge", sampling: options.sampling }));
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "gateway" });
  });
  // Read as text so that bad JSON is a traced validation failure, not the body parser's 400.
  app.post("/chat", textBody(MAX_BODY_BYTES), async (req, res) => {
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
      // A rejection is the gateway doing its job: the step that refused carries the error, not the request's run.
      if (!(err instanceof EdgeRejection)) throw err;
      res.set(err.headers).status(err.status).json({ error: err.message, traceId });
    }
  });
  // A body over the limit and every failure (a DownstreamError from the orchestrator included) reach
  // the request's run as its error; the client gets JSON that does not relay internal messages.
  app.use(jsonErrors({ service: "gateway", exposeFailures: false, upstreamFailure: isDownstreamError }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Labels every run of this process (the SDK copies LANGSMITH_* variables into run metadata); the launcher sets it too.
  process.env.LANGSMITH_SERVICE ??= "gateway";
  const app = createGatewayApp({
    orchestratorUrl: urlOf("orchestrator"),
    apiKeys: parseApiKeys(process.env.GATEWAY_API_KEYS ?? DEMO_API_KEYS),
    rateLimit: { burst: numberFromEnv("RATE_LIMIT_BURST", 10), perSecond: numberFromEnv("RATE_LIMIT_PER_SECOND", 2) },
    maxMessageLength: numberFromEnv("MAX_MESSAGE_LENGTH", 2000),
    contextKey: contextKeyFromEnv(),
    sampling: samplerFromEnv(contextKeyFromEnv()),
  });
  await serve(app, "gateway");
}
