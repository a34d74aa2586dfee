// The sampling policy every service shares, from its environment:
//   TRACE_SAMPLE_RATE  share of requests traced in full, decided at the gateway (0 to 1, default 1)
// The gateway decides; the other services follow its decision, which travels
// signed with the trace context (the kit's sampling.ts). A dropped request
// makes no run on any service and costs almost nothing.
import { createSampler, type Sampler } from "@tracing-patterns/kit";

export const SAMPLE_RATE_ENV = "TRACE_SAMPLE_RATE";

/** The service's sampler; a bad TRACE_SAMPLE_RATE stops the service at start-up, naming the variable. */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  return createSampler({ rate: rateFromEnv(env) });
}

export function rateFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SAMPLE_RATE_ENV];
  if (raw === undefined || raw.trim() === "") return 1;
  const rate = Number(raw);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new Error(`${SAMPLE_RATE_ENV} must be a number from 0 to 1 (the share of requests traced), got ${JSON.stringify(raw)}`);
  return rate;
}
