/**
 * Reads that grow with the store (run queries, run stats, threads) run within the request's
 * budget, without holding the event loop:
 *
 *   const page = await queryRunsWithinBudget(store, query, { urlBase }, () => res.closed);
 *
 *   const budget = new RequestBudget(() => res.closed, "narrow it (start_time, a filter)");
 *   store.queryRuns(q, { budget: budget.scan() });   // a store scan stops at the slice's end
 *   await budget.spend(runs.length);                 // work done outside a scan
 *
 * The work runs in slices of about SLICE_MS; between slices other requests are served, so a
 * query whose filter matches little in a big store, or stats over a whole project, no longer
 * freezes the server (one such query kept it unresponsive for minutes, SIGTERM included). Each
 * run read costs 1 plus its filters' calls, and a request may spend MAX_QUERY_COST. A run query
 * that spends it before finding a run gets QueryBudgetError (a 400 naming the limit); one that
 * found some returns them with a cursor that resumes the scan. Work that cannot be answered in
 * part (stats, thread totals) gets the 400 as soon as it spends the budget. Results do not
 * depend on where slices end.
 */
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { MAX_QUERY_COST, MAX_QUERY_PAGE } from "./limits.js";
import type { RunReadOptions, ScanBudget, TraceStore } from "./store.js";
import type { RunPage, RunQuery, StoredRun } from "./types.js";

/** How long one slice of a scan may hold the event loop. */
export const SLICE_MS = 20;

export class QueryBudgetError extends Error {}

/** The client closed the connection; the work it asked for is abandoned. */
export class ClientGoneError extends Error {}

export async function queryRunsWithinBudget(store: TraceStore, query: RunQuery, opts: RunReadOptions, clientGone: () => boolean): Promise<RunPage> {
  const wanted = Math.max(1, Math.min(query.limit ?? MAX_QUERY_PAGE, MAX_QUERY_PAGE));
  const budget = new RequestBudget(clientGone, "narrow it (a project, a trace, start_time) or simplify the filter");
  const runs: StoredRun[] = [];
  let cursor = query.cursor;
  for (;;) {
    const slice: RunQuery = { ...query, limit: wanted - runs.length };
    if (cursor !== undefined) slice.cursor = cursor;
    const page = store.queryRuns(slice, { ...opts, budget: budget.scan() });
    runs.push(...page.runs);
    if (!page.stopped || runs.length >= wanted) return { runs, nextCursor: page.nextCursor };
    if (budget.exhausted || page.nextCursor === null) {
      if (runs.length > 0 && page.nextCursor !== null) return { runs, nextCursor: page.nextCursor };
      throw new QueryBudgetError(
        `the query spent its budget of ${MAX_QUERY_COST} (each run scanned costs 1 plus its filters' function calls) without finding a matching run; narrow it (a project, a trace, start_time) or simplify the filter`,
      );
    }
    cursor = page.nextCursor;
    await budget.pause();
    if (clientGone()) return { runs, nextCursor: cursor };
  }
}

/**
 * What one request may spend (MAX_QUERY_COST units: a run read, a filter call), and the slices
 * of at most SLICE_MS it spends it in. `advice` ends the 400 a request past the budget gets.
 */
export class RequestBudget {
  private spent = 0;
  private sliceEnd = performance.now() + SLICE_MS;

  constructor(
    private readonly clientGone: () => boolean,
    private readonly advice: string,
  ) {}

  get exhausted(): boolean {
    return this.spent > MAX_QUERY_COST;
  }

  /**
   * The budget of one synchronous store scan (TraceStore.queryRuns): it says stop at the end of
   * the slice or of the budget. Its first call always goes on, so every scan moves forward
   * however late in the slice it starts.
   */
  scan(): ScanBudget {
    let first = true;
    return {
      spend: (units: number): boolean => {
        this.spent += units;
        const go = !this.exhausted && (first || performance.now() < this.sliceEnd);
        first = false;
        return go;
      },
    };
  }

  /**
   * Charge work done outside a store scan. Past the budget it throws QueryBudgetError; once the
   * slice is used up it lets other requests run first, and throws ClientGoneError if the client
   * went away meanwhile.
   */
  async spend(units: number): Promise<void> {
    this.spent += units;
    if (this.exhausted) {
      throw new QueryBudgetError(`the request spent its budget of ${MAX_QUERY_COST} (each run read costs 1 plus its filters' function calls) before it could answer; ${this.advice}`);
    }
    if (performance.now() >= this.sliceEnd) {
      await this.pause();
      if (this.clientGone()) throw new ClientGoneError("the client went away before the answer was ready");
    }
  }

  /** Let the requests waiting run, then start a new slice. */
  async pause(): Promise<void> {
    await nextTurn();
    this.sliceEnd = performance.now() + SLICE_MS;
  }
}
