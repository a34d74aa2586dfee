/**
 * Stopping an HTTP server without losing its last runs, within a deadline.
 * Copy it next to tracing-middleware.ts (it imports only langsmith and node
 * built-ins).
 *
 *   const server = app.listen(3000);
 *   const shutdown = prepareShutdown(server, { timeoutMs: 10_000 });
 *   process.once("SIGTERM", async () => {
 *     await shutdown();
 *     process.exit(0);
 *   });
 *
 * Why not `server.close()` and a flush: close() does not wait for anything,
 * so flushing right after it sends the runs of requests that already ended
 * and exits under the ones still running (their clients get no answer and
 * their runs never end). Awaiting close() instead waits without a deadline:
 * a request that hangs holds the exit until the orchestrator's SIGKILL, and
 * the flush never happens. So the budget is split: requests get
 * `timeoutMs - flushReserveMs` to finish and are then cut off (the
 * middleware ends their runs as "client disconnected"), and the flush gets
 * the rest, at least the reserve.
 */
import { once } from "node:events";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";

export interface ShutdownOptions {
  /** From the call to exit: keep it under the orchestrator's grace period (Kubernetes: 30 s). */
  timeoutMs: number;
  /** The part of `timeoutMs` the flush always gets. Default: a quarter of it, at most 5 s. */
  flushReserveMs?: number;
  /** The client the runs were written with. Default: the SDK's shared client, which the middleware and `traceable` use unless given another. */
  client?: Pick<Client, "awaitPendingTraceBatches">;
}

export interface ShutdownResult {
  /** Every request finished on its own; false when some were cut off at the deadline. */
  drained: boolean;
  /** The client sent everything it had queued; false when the flush ran out of time (those runs are lost on exit). */
  flushed: boolean;
}

/** True if `work` fulfils within `ms`; false if it rejects or is still running then. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([work.then(() => true, () => false), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Call right after `listen()`, so it sees every request. Returns the
 * shutdown to run on SIGTERM; calling it again returns the same one.
 */
export function prepareShutdown(server: Server, options: ShutdownOptions): () => Promise<ShutdownResult> {
  const { timeoutMs } = options;
  const flushReserveMs = options.flushReserveMs ?? Math.min(timeoutMs / 4, 5_000);
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || !Number.isFinite(flushReserveMs) || flushReserveMs < 0) {
    throw new RangeError(`prepareShutdown: timeoutMs and flushReserveMs must be finite numbers >= 0, got ${timeoutMs} and ${flushReserveMs}`);
  }
  const drainMs = timeoutMs - Math.min(flushReserveMs, timeoutMs);

  // close() closes the connections idle at that moment only: a keep-alive
  // connection whose request finishes later would hold it for keepAliveTimeout.
  // So once closing, responses ask the client not to reuse the connection, and
  // each one that ends closes what has become idle.
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
    if (closing && !res.headersSent) res.setHeader("connection", "close");
    inFlight.add(res);
    res.once("close", () => {
      inFlight.delete(res);
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
  });

  let running: Promise<ShutdownResult> | undefined;
  const shutdown = async (): Promise<ShutdownResult> => {
    const started = performance.now();
    closing = true;
    for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close");
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const drained = await settlesWithin(closed, drainMs);
    if (!drained) {
      const cutOff = [...inFlight].map((res) => once(res, "close"));
      server.closeAllConnections();
      // The middleware ends a cut-off request's run on its "close" event, a
      // tick after this: the flush must start after that to include it.
      await Promise.allSettled(cutOff);
    }
    const client = options.client ?? RunTree.getSharedClient();
    const flushed = await settlesWithin(client.awaitPendingTraceBatches(), timeoutMs - (performance.now() - started));
    return { drained, flushed };
  };
  return () => (running ??= shutdown());
}
