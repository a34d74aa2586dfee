// The sampling policy every service shares, from its environment:
//   TRACE_SAMPLE_RATE  share of requests traced in full, decided at the gateway (0 to 1, default 1)
//   TRACE_SLOW_MS      a request slower than this is kept (unset: no slow rule)
// The gateway decides; the other services follow its decision, which travels
// signed with the trace context (the kit's sampling.ts). Requests not sampled
// in are recorded and kept only if they fail (always) or are slow, by every
// service they crossed (the kit's tail.ts); the rest are discarded.
import { createSampler, type Sampler } from "@tracing-patterns/kit";

export const SAMPLE_RATE_ENV = "TRACE_SAMPLE_RATE";
export const SLOW_MS_ENV = "TRACE_SLOW_MS";

/**
 * The service's sampler. `contextKey` signs the keep notices the gateway
 * sends to services that already answered. A bad value stops the service at
 * start-up, naming the variable.
 */
export function samplerFromEnv(contextKey: string, env: NodeJS.ProcessEnv = process.env): Sampler {
  return createSampler({ rate: rateFromEnv(env), tail: { slowMs: slowMsFromEnv(env) }, signingKey: contextKey });
}

export function rateFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SAMPLE_RATE_ENV];
  if (raw === undefined || raw.trim() === "") return 1;
  const rate = Number(raw);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new Error(`${SAMPLE_RATE_ENV} must be a number from 0 to 1 (the share of requests traced), got ${JSON.stringify(raw)}`);
  return rate;
}

export function slowMsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[SLOW_MS_ENV];
  if (raw === undefined || raw.trim() === "") return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${SLOW_MS_ENV} must be a number of milliseconds >= 0, got ${JSON.stringify(raw)}`);
  return ms;
}
