/**
 * Stops a service without losing its last runs, within one deadline:
 *
 *   const server = app.listen(port);
 *   installShutdown({ timeoutMs: 8_000, drain: [server] });
 *
 * On SIGTERM/SIGINT (or when `exitOnStdinEnd` and the launcher's pipe closes):
 * stop accepting connections, let in-flight requests finish within the drain
 * share of the budget (then cut them off: the middleware ends their runs),
 * wait for LangChain's background callbacks (they end the LLM, tool and graph
 * runs), flush the SDK's queue with what is left, exit 0.
 *
 * The same call shape as the kit's installShutdown; this file goes away when
 * the services import it from @tracing-patterns/kit (see tracing.ts).
 */
import { once } from "node:events";
import type { Server, ServerResponse } from "node:http";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { RunTree } from "langsmith/run_trees";

export interface ShutdownOptions {
  /** From the signal to exit; keep it under the launcher's (or orchestrator's) grace period. */
  timeoutMs: number;
  /** Servers to drain, tracked from this call on: call it right after listen(). */
  drain: readonly Server[];
  /** Also stop when stdin ends (a launcher that dies closes its end of the pipe). */
  exitOnStdinEnd?: boolean;
  log?: (line: string) => void;
}

export function installShutdown(options: ShutdownOptions): { shutdown(reason: string): Promise<void> } {
  const log = options.log ?? ((line: string) => console.error(line));
  const flushReserveMs = Math.min(options.timeoutMs / 4, 5_000);
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  for (const server of options.drain) {
    server.prependListener("request", (_req: unknown, res: ServerResponse) => {
      if (closing && !res.headersSent) res.setHeader("connection", "close");
      inFlight.add(res);
      res.once("close", () => {
        inFlight.delete(res);
        if (closing) setImmediate(() => server.closeIdleConnections());
      });
    });
  }

  let running: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> =>
    (running ??= (async () => {
      const started = performance.now();
      closing = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader("connection", "close");
      const closed = Promise.all(options.drain.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      for (const server of options.drain) server.closeIdleConnections();
      const drained = await within(closed, options.timeoutMs - flushReserveMs);
      if (!drained) {
        const cutOff = [...inFlight].map((res) => once(res, "close"));
        for (const server of options.drain) server.closeAllConnections();
        await Promise.allSettled(cutOff);
      }
      const left = () => Math.max(0, options.timeoutMs - (performance.now() - started));
      const flushed = (await within(awaitAllCallbacks(), left())) && (await within(RunTree.getSharedClient().awaitPendingTraceBatches(), left()));
      const requests = drained ? "in-flight requests finished" : "in-flight requests cut off at the deadline";
      log(`[shutdown] ${reason}: ${requests}; ${flushed ? `traces flushed in ${Math.round(performance.now() - started)} ms` : "traces NOT flushed, what is pending is lost"}`);
      process.exit(0);
    })());
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  if (options.exitOnStdinEnd) {
    process.stdin.on("end", () => void shutdown("launcher gone"));
    process.stdin.resume();
  }
  return { shutdown };
}

/** True if `work` fulfils within `ms`; false if it rejects or is still running then. */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
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
