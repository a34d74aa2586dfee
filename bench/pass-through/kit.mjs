// The kit as the multi-service app's sampling.ts sees it in the pass-through
// configurations (hooks.mjs): the same module instance, except that
// createSampler drops the `tail` option, so requests not sampled in are
// dropped (no run anywhere) instead of recorded for the tail decision.
import { createSampler as kitCreateSampler } from "@tracing-patterns/kit";

export * from "@tracing-patterns/kit";

/** `createSampler(options)` without `options.tail`. */
export function createSampler(options = {}) {
  const { tail: _tail, ...rest } = options;
  return kitCreateSampler(rest);
}
