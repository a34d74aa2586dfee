// Child process: the unmodified langsmith SDK emitting the workload's traces
// as fast as it can, to one endpoint. Forked by setup/cli/bench.ts so the
// emitter has a core and a heap of its own.
import { Client } from "langsmith";
import { makeWorkload, RUNS_PER_TRACE } from "./workload.js";

export interface EmitRequest {
  url: string;
  traces: number;
  /** Traces in flight at once; 1 is an app handling one request at a time. */
  concurrency: number;
  projectName: string;
}

export interface EmitResult {
  traces: number;
  runs: number;
  /** From the first call until awaitPendingTraceBatches resolved. */
  seconds: number;
  runsPerSecond: number;
  cpuSeconds: number;
}

async function emit(req: EmitRequest): Promise<EmitResult> {
  const client = new Client({ apiUrl: req.url, apiKey: "local" });
  const run = makeWorkload(client, req.projectName);
  // One warm-up trace: fetches /info and settles the compression choice outside the timing.
  await run(-1);
  await client.awaitPendingTraceBatches();
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < req.traces) await run(next++);
  };
  await Promise.all(Array.from({ length: req.concurrency }, worker));
  await client.awaitPendingTraceBatches();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const runs = req.traces * RUNS_PER_TRACE;
  return { traces: req.traces, runs, seconds, runsPerSecond: runs / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

// The parent is gone (it failed or was interrupted): do not linger as an orphan.
process.on("disconnect", () => process.exit(1));

process.once("message", (msg: EmitRequest) => {
  emit(msg).then(
    (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
    (e: unknown) => process.send?.({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }, () => process.exit(1)),
  );
});
