/**
 * A concurrency limit shared by callers, from p-limit 7. It runs each queued
 * task in the async context of the code that queued it, so the task's runs
 * nest under that caller's run. p-limit up to version 3 (still common as a
 * transitive dependency) runs a queued task in the context of the task that
 * finished before it: its runs land in another request's trace. Check which
 * version your limiter is.
 */
import createLimit from "p-limit";

/** Runs `task` once fewer than the limit are running; resolves with its result. */
export type Limiter = <T>(task: () => PromiseLike<T> | T) => Promise<T>;

export function pLimit(concurrency: number): Limiter {
  const limit = createLimit(concurrency);
  return (task) => limit(task);
}
