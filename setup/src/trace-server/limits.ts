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

/**
 * Characters of a run's `name`, `run_type`, project name, agent address and each tag, a metadata
 * key, an attachment name and a feedback key. Names are code identifiers ("ChatOpenAI",
 * "retrieve_docs") or short labels; 50 runs with 10-14 MB names (35 KB of zstd) made the trace
 * list take 12-23 s and 500 MB per render, and its live poll render that again every 3 s.
 */
export const MAX_NAME_CHARS = 4096;

/** Tags on one run. LangChain adds a handful (`seq:step:1`, the model name); 1,000 is far above. */
export const MAX_TAGS = 1000;

/**
 * Characters of JSON one run may hold in inputs, outputs, extra, events, serialized and error
 * together, after its create and updates merge. A request body is capped at 20 MiB, but a create
 * and an update each under the cap would merge into one run over it, which every read that
 * includes the run then returns whole. A chat model's run is a few KB; a run with a few images
 * inline is a few MB.
 */
export const MAX_RUN_PAYLOAD_CHARS = 16 * 1024 * 1024;

/** Why a run operation breaks a length limit, or undefined. Checked in the store, so every ingest format obeys it. */
export function runLimitViolation(run: {
  name?: string;
  run_type?: string;
  session_name?: string;
  address?: string;
  tags?: readonly string[];
  extra?: { [key: string]: unknown };
}): string | undefined {
  for (const field of ["name", "run_type", "session_name", "address"] as const) {
    const value = run[field];
    if (value !== undefined && value.length > MAX_NAME_CHARS) return `${field} is ${value.length} characters, over the limit of ${MAX_NAME_CHARS}`;
  }
  if (run.tags !== undefined) {
    if (run.tags.length > MAX_TAGS) return `tags lists ${run.tags.length} tags, over the limit of ${MAX_TAGS}`;
    const long = run.tags.find((tag) => tag.length > MAX_NAME_CHARS);
    if (long !== undefined) return `a tag is ${long.length} characters, over the limit of ${MAX_NAME_CHARS}`;
  }
  const metadata = run.extra?.metadata;
  if (typeof metadata === "object" && metadata !== null) {
    for (const key in metadata) if (key.length > MAX_NAME_CHARS) return `a metadata key is ${key.length} characters, over the limit of ${MAX_NAME_CHARS}`;
  }
  return undefined;
}

/** Why a merged run's payload is over MAX_RUN_PAYLOAD_CHARS, or undefined. */
export function payloadViolation(fields: ReadonlyArray<string | null>): string | undefined {
  let total = 0;
  for (const text of fields) total += text?.length ?? 0;
  return total > MAX_RUN_PAYLOAD_CHARS ? `inputs, outputs, extra, events, serialized and error hold ${total} characters of JSON together, over the limit of ${MAX_RUN_PAYLOAD_CHARS} per run` : undefined;
}

/**
 * Rejections one request records and echoes; past it they are counted in one summary rejection.
 * 17 KB of zstd held 10,000 bad parts, each a stored row and a line of a 2.4 MB answer. An SDK
 * batch has at most a few hundred operations, and a broken client repeats the same mistake.
 */
export const MAX_REJECTIONS_PER_REQUEST = 100;

/** Rejections the store keeps; the oldest go first. A log for troubleshooting, not an archive. */
export const MAX_STORED_REJECTIONS = 100_000;

/**
 * Levels of a trace tree: segments of a run's `dotted_order`, however the depth is expressed
 * (the run's own dotted_order, or a parent_run_id the server derives it from). Traced code nests
 * a few dozen levels at most (a recursive agent, subgraphs within graphs). Each level adds a
 * 58-character segment to every run below it: 1,500 tiny requests chaining parent_run_id made a
 * trace whose every view took 10-38 s and 112 MB, and a 10,000-segment dotted_order overflowed
 * the stack when read.
 */
export const MAX_TREE_DEPTH = 256;

/** Runs per page of `GET /api/traces/{id}` (`limit`, `offset`); the answer says how many there are. */
export const MAX_TRACE_PAGE_RUNS = 1000;

/**
 * A filter expression (`filter`, `trace_filter`, `tree_filter`): characters, function calls, and
 * how deep calls nest. The SDK's own filters (`readThread`) and any hand-written one have a few
 * calls; `or()` of 6,000 `search()` terms blocked the server for 1.5-4 s per query over 2,000
 * runs, and `not(` nested 4,000 deep for 4.8 s.
 */
export const MAX_FILTER_CHARS = 10_000;
export const MAX_FILTER_CALLS = 200;
export const MAX_FILTER_DEPTH = 32;

/** Runs per page of a run query (v1 `limit`, v2 `page_size`). */
export const MAX_QUERY_PAGE = 100;

/**
 * Work one run query may do, in units of one run read and tested against one filter call: each
 * run scanned costs 1 plus the calls of its filters, and a trace read for `trace_filter` or
 * `tree_filter` the same per run. A query over a few thousand runs with a few calls spends a few
 * thousand; 2,000,000 is 500,000 runs tested by a three-call filter. The scan runs in slices that
 * let other requests through, and a query that spends the budget before finding one run gets a
 * 400 naming it (one that found some gets them, with a cursor to go on from). Run stats, thread
 * listings and totals, and the viewer's stats and threads pages spend the same budget in the same
 * slices (each run they read costs 1); they cannot answer in part, so spending it is a 400.
 */
export const MAX_QUERY_COST = 2_000_000;
