// Flushing with a deadline, the shutdown and the replay of failed uploads live
// in the copyable kit (examples/kit: flush.ts, shutdown.ts, replay.ts); setup
// re-exports them under the names the notebooks and tests use.
import type { Server } from "node:http";
import { installShutdown, type InstallShutdownOptions, type InstalledShutdown } from "@tracing-patterns/kit";

export {
  defaultFlushReserveMs,
  describeShutdown,
  drainAndFlush,
  flushTraces,
  installShutdown,
  replayFailedTraces,
  shutdownBudget,
  trackConnections,
  type Drainable,
  type FlushOptions,
  type FlushResult,
  type InstallShutdownOptions,
  type InstalledShutdown,
  type PendingWork,
  type ReplayFailure,
  type ReplayOptions,
  type ReplayResult,
  type ShutdownBudget,
  type ShutdownResult,
  type TrackedConnections,
} from "@tracing-patterns/kit";

export type GracefulShutdownOptions = Omit<InstallShutdownOptions, "drain">;
export type GracefulShutdown = InstalledShutdown;

/** `installShutdown` for one server: on SIGTERM/SIGINT stop accepting, drain its requests, flush, exit 0. */
export function installGracefulShutdown(server: Server, options: GracefulShutdownOptions): GracefulShutdown {
  return installShutdown({ ...options, drain: [server] });
}
