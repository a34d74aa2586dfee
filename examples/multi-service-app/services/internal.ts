// Who may call the internal services, and with which trace context. The
// services share one key (TRACE_CONTEXT_KEY; the launcher makes a random one
// per run when it is unset). Callers (the gateway, the orchestrator) send a
// token derived from it and sign the trace context they forward; orchestrator,
// retrieval and llm refuse any other caller (401/403 JSON) and continue only
// signed context. So POST /answer from outside cannot skip the gateway's API
// key and rate limit, nor write into another tenant's trace.
//
//   const key = contextKeyFromEnv();
//   app.use(langsmithTracing({ trust: { signedBy: key } }));   // first: refused callers are traced too, as new roots
//   app.use(requireInternalCaller(key));
import { createHmac, timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { assertSigningKey } from "@tracing-patterns/kit";

export const CONTEXT_KEY_ENV = "TRACE_CONTEXT_KEY";
export const INTERNAL_TOKEN_HEADER = "x-internal-token";

/** TRACE_CONTEXT_KEY, checked; a service without one refuses to start rather than trust everyone. */
export function contextKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const key = env[CONTEXT_KEY_ENV];
  assertSigningKey(key, `${CONTEXT_KEY_ENV} (the key the services share; the launcher sets a random one)`);
  return key;
}

/**
 * The caller token: derived from the key with HMAC, so the key itself never
 * travels in a header (a captured token lets one call a service, never sign
 * a trace context).
 */
export function callerToken(key: string): string {
  return createHmac("sha256", key).update("multi-service-app internal caller v1").digest("base64url");
}

/** Refuses requests without the caller token (401) or with a wrong one (403), as JSON with the trace id. */
export function requireInternalCaller(key: string): RequestHandler {
  const expected = Buffer.from(callerToken(key));
  return (req, res, next) => {
    const presented = req.get(INTERNAL_TOKEN_HEADER);
    const traceId = res.get("x-trace-id");
    if (presented === undefined || presented === "") {
      res.status(401).json({ error: `missing ${INTERNAL_TOKEN_HEADER}: only the gateway and the orchestrator call this service`, traceId });
      return;
    }
    const given = Buffer.from(presented);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.status(403).json({ error: `invalid ${INTERNAL_TOKEN_HEADER}`, traceId });
      return;
    }
    next();
  };
}
