/**
 * Work that outlives the response: start it inside the request's trace, keep
 * track of it, and finish it (and send its runs) before the process exits.
 *
 *   const background = new BackgroundTasks();
 *   app.post("/chat", async (req, res) => {
 *     res.json(await answer(req.body));
 *     background.run(() => rememberConversation(req.body));   // still in this request's trace
 *   });
 *   process.once("SIGTERM", async () => { await flushTracing(background); process.exit(0); });
 *
 * Why not just `void rememberConversation()`: inside the handler that does
 * keep the trace (AsyncLocalStorage follows the call), but nobody waits for it,
 * its errors become unhandled rejections, and on shutdown it is cut off along
 * with every run still waiting in the SDK's batch queue.
 */
import type { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
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

/**
 * What a process must do before it exits so no run is lost: let background
 * tasks finish, let LangChain's callbacks (which end LLM runs in the
 * background by default) run, then send every batch the SDK still holds.
 * Call it from SIGTERM/SIGINT handlers, at the end of scripts and in
 * serverless handlers before returning.
 */
export async function flushTracing(background?: BackgroundTasks, clients: Client[] = [RunTree.getSharedClient()]): Promise<void> {
  await background?.drain();
  await awaitAllCallbacks();
  await Promise.all(clients.map((client) => client.awaitPendingTraceBatches()));
}
