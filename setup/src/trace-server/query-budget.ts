/**
 * Runs one page of a run query within the request's budget, without holding the event loop:
 *
 *   const page = await queryRunsWithinBudget(store, query, { urlBase }, () => res.closed);
 *
 * The store scans in slices of about SLICE_MS; between slices other requests are served, so a
 * query whose filter matches little in a big store no longer freezes the server (one such query
 * kept it unresponsive for minutes, SIGTERM included). Each run scanned costs 1 plus its filters'
 * calls, and a request may spend MAX_QUERY_COST: a query that spends it before finding a run gets
 * QueryBudgetError (a 400 naming the limit); one that found some returns them with a cursor that
 * resumes the scan. Results do not depend on where slices end.
 */
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { MAX_QUERY_COST, MAX_QUERY_PAGE } from "./limits.js";
import type { RunReadOptions, TraceStore } from "./store.js";
import type { RunPage, RunQuery, StoredRun } from "./types.js";

/** How long one slice of a scan may hold the event loop. */
export const SLICE_MS = 20;

export class QueryBudgetError extends Error {}

export async function queryRunsWithinBudget(store: TraceStore, query: RunQuery, opts: RunReadOptions, clientGone: () => boolean): Promise<RunPage> {
  const wanted = Math.max(1, Math.min(query.limit ?? MAX_QUERY_PAGE, MAX_QUERY_PAGE));
  const runs: StoredRun[] = [];
  let spent = 0;
  let cursor = query.cursor;
  for (;;) {
    const sliceEnd = performance.now() + SLICE_MS;
    let overBudget = false;
    // Every slice scans at least one run, however late it starts, so the scan always moves on.
    let first = true;
    const budget = {
      spend(units: number): boolean {
        spent += units;
        overBudget ||= spent > MAX_QUERY_COST;
        const go = !overBudget && (first || performance.now() < sliceEnd);
        first = false;
        return go;
      },
    };
    const slice: RunQuery = { ...query, limit: wanted - runs.length };
    if (cursor !== undefined) slice.cursor = cursor;
    const page = store.queryRuns(slice, { ...opts, budget });
    runs.push(...page.runs);
    if (!page.stopped || runs.length >= wanted) return { runs, nextCursor: page.nextCursor };
    if (overBudget || page.nextCursor === null) {
      if (runs.length > 0 && page.nextCursor !== null) return { runs, nextCursor: page.nextCursor };
      throw new QueryBudgetError(
        `the query spent its budget of ${MAX_QUERY_COST} (each run scanned costs 1 plus its filters' function calls) without finding a matching run; narrow it (a project, a trace, start_time) or simplify the filter`,
      );
    }
    cursor = page.nextCursor;
    await nextTurn();
    if (clientGone()) return { runs, nextCursor: cursor };
  }
}
