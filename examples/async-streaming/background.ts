/**
 * Work that outlives the response: start it inside the request's trace, keep
 * track of it, and finish it (and send its runs) before the process exits.
 *
 *   const background = new BackgroundTasks();
 *   app.post("/chat", async (req, res) => {
 *     res.json(await answer(req.body));
 *     background.run(() => rememberConversation(req.body));   // still in this request's trace
 *   });
 *   const server = app.listen(port);
 *   const connections = trackConnections(server);               // from @tracing-patterns/setup
 *   const { drainMs, flushReserveMs } = shutdownBudget(10_000);  // within 10 s, whatever hangs
 *   process.once("SIGTERM", async () => {
 *     const started = performance.now();
 *     await connections.close(drainMs);   // requests first: they start background tasks; cut off at drainMs
 *     await flushTracing(background, { timeoutMs: Math.max(0, 10_000 - (performance.now() - started)), flushReserveMs });
 *     process.exit(0);
 *   });
 *
 * (as server.ts does). A bare `server.close()` does not wait: the process
 * would exit under the requests still running, and their runs never end.
 *
 * Why not just `void rememberConversation()`: inside the handler that does
 * keep the trace (AsyncLocalStorage follows the call), but nobody waits for it,
 * its errors become unhandled rejections, and on shutdown it is cut off along
 * with every run still waiting in the SDK's batch queue.
 */
import type { Client } from "langsmith";
import type { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { flushTraces, shutdownBudget, type FlushResult } from "@tracing-patterns/setup";
import { currentRun } from "@tracing-patterns/example-express-middleware";

export class BackgroundTasks {
  readonly #pending = new Set<Promise<void>>();
  readonly #onError: (error: unknown) => void;

  /** `onError` receives a task's failure (default: console.error); a failed task never crashes the process. */
  constructor(onError: (error: unknown) => void = (error) => console.error("[background] task failed:", error)) {
    this.#onError = onError;
  }

  /**
   * Starts `task` now, as a child of `parent` (default: the run current here,
   * captured at this call). Passing the parent explicitly is what makes this
   * work from places that have lost the request's context: an event handler,
   * a callback registered at startup, a timer or a loop started elsewhere.
   */
  run(task: () => Promise<unknown>, parent: RunTree | undefined = currentRun()): void {
    let started: Promise<unknown>;
    // A task that throws before returning its promise fails like one that rejects: it must not
    // throw out of run() into the request handler that started it.
    try {
      started = parent ? withRunTree(parent, task) : Promise.resolve(task());
    } catch (error) {
      started = Promise.reject(error);
    }
    const tracked: Promise<void> = started.then(
      () => undefined,
      (error: unknown) => this.#report(error),
    );
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }

  // An onError that throws would turn `tracked` into a rejection nobody handles, which crashes the
  // process under Node's default --unhandled-rejections=throw.
  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch (handlerError) {
      console.error("[background] onError threw:", handlerError, "while handling the task's failure:", error);
    }
  }

  /** Tasks started and not yet settled. */
  get size(): number {
    return this.#pending.size;
  }

  /** Resolves once every task has settled, including tasks started while draining. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}

export interface FlushTracingOptions {
  /**
   * The budget for all of it, background tasks included. Default 10000, well inside the 30 s most
   * orchestrators wait between SIGTERM and SIGKILL. With a hung trace backend the SDK's own
   * awaitPendingTraceBatches() waits 90 s per wave of uploads (docs/reliability.md).
   */
  timeoutMs?: number;
  /**
   * The part of `timeoutMs` only the flush may use: background tasks still running at
   * `timeoutMs - flushReserveMs` are left behind. Default a quarter of the budget, at most 5 s
   * (`shutdownBudget` in setup), so a hung task cannot leave the flush no time at all.
   */
  flushReserveMs?: number;
  /** Clients to flush besides the SDK's shared ones (traceable's default client). */
  clients?: readonly Client[];
}

export interface FlushTracingResult {
  /** Every background task settled within the budget (the rest keep running, cut off at exit). */
  drained: boolean;
  flush: FlushResult;
}

/**
 * What a process must do before it exits so no run is lost: let background
 * tasks finish, let LangChain's callbacks (which end LLM runs in the
 * background by default) run, then send every batch the SDK still holds, all
 * within `timeoutMs` so a hung task or trace backend cannot keep the process
 * alive until it is killed. Call it from SIGTERM/SIGINT handlers, at the end
 * of scripts and in serverless handlers before returning.
 */
export async function flushTracing(background?: BackgroundTasks, options: FlushTracingOptions = {}): Promise<FlushTracingResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`flushTracing: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
  const { drainMs } = shutdownBudget(timeoutMs, options.flushReserveMs);
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const drained = background
    ? await Promise.race([
        background.drain().then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), drainMs);
        }),
      ])
    : true;
  clearTimeout(timer);
  const flush = await flushTraces({ client: options.clients, timeoutMs: Math.max(0, timeoutMs - (performance.now() - started)) });
  return { drained, flush };
}

/** One line for a shutdown log: what was sent, and what is lost if the process exits now. */
export function describeFlush(result: FlushTracingResult): string {
  const { drained, flush } = result;
  const tasks = drained ? "background tasks finished" : "background tasks still running at the deadline";
  if (flush.flushed) return `${tasks}; traces flushed in ${flush.elapsedMs} ms`;
  const errors = flush.errors.length > 0 ? `; errors: ${flush.errors.join("; ")}` : "";
  return `${tasks}; traces NOT flushed after ${flush.elapsedMs} ms, what is still pending is lost on exit${errors}`;
}
