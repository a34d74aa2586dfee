// What application code gets for `langsmith/traceable` in the untraced
// baseline (hooks.mjs): the real module's exports, except `traceable`, which
// wraps nothing. Its import of "langsmith/traceable" is not redirected.
export * from "langsmith/traceable";

/** `traceable(fn, config)` without tracing: a plain call of `fn`. */
export function traceable(fn) {
  return (...args) => fn(...args);
}
