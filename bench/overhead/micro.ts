// Child process of the overhead benchmark: the CPU one call costs through
// each way of tracing a function, measured alone in a fresh process whose
// environment is the variant's (the SDK reads LANGSMITH_* from it): "raw"
// calls the function, "traced-*" through the kit's `traced` ("traced-drop"
// inside a dropped request, as the kit's adapters run one), "request-*" one
// whole request through a service (runRequests), the others through
// `traceable` (apps.ts MICRO_VARIANTS). Forked by bench/overhead/run.ts once
// per variant and round.
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "langsmith";
import { traceable, withRunTree } from "langsmith/traceable";
import { createSampler, droppedRun, injectTraceHeaders, traced, tracedListener } from "@tracing-patterns/kit";

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
  if (req.variant.startsWith("request-")) return runRequests(req);
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

/**
 * One request through a service, in process: node:http, three steps and the
 * outbound trace headers of one downstream call, answered as JSON, sent one
 * at a time over keep-alive from this process, as at the gateway (edge trust,
 * signed outbound context). "request-untraced": no tracing
 * code; "request-drop": the kit's adapter and `traced` with an edge sampler at
 * rate 0 (every request dropped); "request-sdk0": the adapter without a
 * sampler and `traceable`, the SDK sampling every run out
 * (LANGSMITH_TRACING_SAMPLING_RATE=0). The client's share of the CPU is the
 * same in all three, so differences are what tracing adds per request.
 */
const SIGNING_KEY = "bench-micro-signing-key-0123456789abcdef";

async function runRequests(req: MicroRequest): Promise<MicroResult> {
  const kind = req.variant.slice("request-".length);
  const step = async (input: { n: number }): Promise<number> => input.n + 1;
  const steps = ["plan", "search", "generate"].map((name) => (kind === "untraced" ? step : kind === "drop" ? traced(step, { name }) : traceable(step, { name })));
  const handler = async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let n = 0;
    for (const s of steps) n = await s({ n });
    // Signed, as the multi-service app's calls between services are (with tracing off nothing is signed: there is no context).
    const outbound = kind === "untraced" ? new Headers({ "content-type": "application/json" }) : injectTraceHeaders({ "content-type": "application/json" }, { signingKey: SIGNING_KEY });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ n, traced: outbound.has("langsmith-trace") }));
  };
  const listener =
    kind === "untraced"
      ? (rq: IncomingMessage, rs: ServerResponse): void => void handler(rq, rs)
      : tracedListener(handler, { trust: "edge", ...(kind === "drop" ? { sampling: createSampler({ rate: 0 }) } : {}) });
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const r = request({ agent, host: "127.0.0.1", port, path: "/answer", method: "GET" }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`answered ${res.statusCode}`));
        res.resume();
        res.on("end", resolve);
      });
      r.on("error", reject);
      r.end();
    });
  const requests = Math.max(Math.round(req.calls / 2), 50);
  for (let i = 0; i < 500; i++) await one();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < requests; i++) await one();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  server.close();
  return { calls: requests, cpuMicrosPerCall: (cpu.user + cpu.system) / requests, wallMicrosPerCall: (wall * 1000) / requests };
}

// The parent is gone (it failed or was interrupted): do not linger as an orphan.
process.on("disconnect", () => process.exit(1));

process.once("message", (msg: MicroRequest) => {
  run(msg).then(
    (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
    (e: unknown) => process.send?.({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }, () => process.exit(1)),
  );
});
