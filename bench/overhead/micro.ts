// Child process of the overhead benchmark: the CPU one call costs through
// each way of tracing a function, measured alone in a fresh process whose
// environment is the variant's (the SDK reads LANGSMITH_* from it): "raw"
// calls the function, "traced-*" through the kit's `traced` ("traced-drop"
// inside a dropped request, as the kit's adapters run one), the others
// through `traceable` (apps.ts MICRO_VARIANTS). Forked by bench/overhead/run.ts
// once per variant and round.
import { Client } from "langsmith";
import { traceable, withRunTree } from "langsmith/traceable";
import { droppedRun, traced } from "@tracing-patterns/kit";

export interface MicroRequest {
  variant: string;
  calls: number;
}

export interface MicroResult {
  calls: number;
  /** CPU (user + system) per call, in µs, including sending what the calls traced. */
  cpuMicrosPerCall: number;
  wallMicrosPerCall: number;
}

async function run(req: MicroRequest): Promise<MicroResult> {
  const work = async (input: { n: number }): Promise<number> => input.n + 1;
  let fn: (input: { n: number }) => Promise<number> = work;
  let client: Client | undefined;
  if (req.variant !== "raw") {
    client = new Client();
    fn = req.variant.startsWith("traced-") ? traced(work, { name: "work", client }) : traceable(work, { name: "work", client });
  }
  const timed = async (): Promise<MicroResult> => {
    // Warm-up: JIT, the SDK's /info request and its first batches, outside the timing.
    for (let i = 0; i < 2_000; i++) await fn({ n: i });
    await client?.awaitPendingTraceBatches();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < req.calls; i++) await fn({ n: i });
    await client?.awaitPendingTraceBatches();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { calls: req.calls, cpuMicrosPerCall: (cpu.user + cpu.system) / req.calls, wallMicrosPerCall: (wall * 1000) / req.calls };
  };
  return req.variant === "traced-drop" ? withRunTree(droppedRun(), timed) : timed();
}

// The parent is gone (it failed or was interrupted): do not linger as an orphan.
process.on("disconnect", () => process.exit(1));

process.once("message", (msg: MicroRequest) => {
  run(msg).then(
    (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
    (e: unknown) => process.send?.({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }, () => process.exit(1)),
  );
});
