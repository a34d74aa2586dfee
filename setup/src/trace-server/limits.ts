/**
 * The trace server's request budgets, in one place: how much one request may ask the server to
 * store, scan or return. Each is far above what the SDK, the notebooks or the benchmark send, and
 * each exists because a single request past it stalled or exhausted the server (issue 16). A
 * request over a limit gets a 4xx whose detail names the limit. docs/local-stack.md ("Limits")
 * gives the reason for each number.
 */

/**
 * UUIDs one query may list per field (`id`, `session`, `reference_example`; v2 `ids`,
 * `project_ids`, `reference_examples`). The SDK sends what its caller passes; 10,000 ids are a
 * 370 KB body. SQLite refuses a statement with more than 32,766 parameters.
 */
export const MAX_IDS_PER_LIST = 10_000;

/** Offsets are positions in a list, so at most 2^53-1; SQLite refuses an OFFSET past 2^63 with a 500. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;
