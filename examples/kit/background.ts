/**
 * Work that outlives the response: start it inside the request's trace, keep
 * track of it, and let the shutdown (shutdown.ts) finish it before the runs
 * are flushed.
 *
 *   const background = new BackgroundTasks();
 *   app.post("/chat", async (req, res) => {
 *     res.json(await answer(req.body));
 *     background.run(() => rememberConversation(req.body));   // still in this request's trace
 *   });
 *   const server = app.listen(port);
 *   installShutdown({ timeoutMs: 10_000, drain: [server, background] });   // requests first: they start tasks
 *
 * Why not just `void rememberConversation()`: inside the handler that does
 * keep the trace (AsyncLocalStorage follows the call), but nobody waits for it,
 * its errors become unhandled rejections, and on shutdown it is cut off along
 * with every run still waiting in the SDK's batch queue.
 */
import type { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { currentRun } from "./propagator.js";
import type { Drainable } from "./shutdown.js";

export class BackgroundTasks implements Drainable {
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

  /** Tasks started and not yet settled. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Resolves true once every task has settled, including tasks started while
   * draining; false at `timeoutMs` if some are still running (they keep running,
   * and are cut off when the process exits). Default: no deadline.
   */
  async drain(timeoutMs = Infinity): Promise<boolean> {
    const settled = (async () => {
      while (this.#pending.size > 0) await Promise.all([...this.#pending]);
      return true;
    })();
    if (!Number.isFinite(timeoutMs)) return settled;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
    });
    try {
      return await Promise.race([settled, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  describe(): string {
    return `finishing ${this.size} background task(s)`;
  }

  outcome(drained: boolean): string {
    return drained ? "background tasks finished" : "background tasks still running at the deadline";
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
}
