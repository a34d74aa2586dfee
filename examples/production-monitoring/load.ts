/**
 * Load for the assistant with autocannon: a mix of normal answers, streamed
 * answers, slow ones and failing ones (the demo's x-demo-fault header, which
 * the assistant honours with DEMO_FAULTS=true), so the request, error, export
 * and latency graphs all move.
 *
 *   node --import tsx load.ts http://127.0.0.1:4100 [seconds=30] [connections=4]
 *   const summary = await runLoad({ url, durationSeconds: 30 });
 *
 * Out of every ten requests: six JSON answers, two streamed (SSE), one slow
 * (the model waits 800 ms per call), one failing (the model answers 500: a 502).
 */
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";

export interface LoadOptions {
  /** The assistant's base URL. */
  url: string;
  /** Default 30. */
  durationSeconds?: number;
  /** Concurrent connections. Default 4. */
  connections?: number;
  /** Stop after this many requests instead of after the duration. */
  amount?: number;
}

export interface LoadSummary {
  requests: number;
  "2xx": number;
  "4xx": number;
  "5xx": number;
  /** Connection errors and timeouts: requests that got no answer at all. */
  errors: number;
  latencyMs: { p50: number; p99: number; max: number };
  requestsPerSecond: number;
}

/** The mix, in the order each connection sends it. */
export const MIX: ReadonlyArray<{ kind: "normal" | "stream" | "slow" | "fail"; customer: string }> = [
  { kind: "normal", customer: "cust-101" },
  { kind: "stream", customer: "cust-102" },
  { kind: "normal", customer: "cust-103" },
  { kind: "slow", customer: "cust-104" },
  { kind: "normal", customer: "cust-105" },
  { kind: "fail", customer: "cust-106" },
  { kind: "normal", customer: "cust-107" },
  { kind: "stream", customer: "cust-108" },
  { kind: "normal", customer: "cust-109" },
  { kind: "normal", customer: "cust-110" },
];

export async function runLoad(options: LoadOptions): Promise<LoadSummary> {
  const requests = MIX.map(({ kind, customer }) => ({
    method: "POST" as const,
    path: "/chat",
    headers: {
      "content-type": "application/json",
      accept: kind === "stream" ? "text/event-stream" : "application/json",
      ...(kind === "slow" || kind === "fail" ? { "x-demo-fault": kind } : {}),
    },
    body: JSON.stringify({ message: `What plan is account ${customer} on?` }),
  }));
  const result = await autocannon({
    url: options.url,
    connections: options.connections ?? 4,
    ...(options.amount === undefined ? { duration: options.durationSeconds ?? 30 } : { amount: options.amount }),
    requests,
    // A failing model call retries once inside the assistant: give it time.
    timeout: 30,
  });
  return {
    requests: result["1xx"] + result["2xx"] + result["3xx"] + result["4xx"] + result["5xx"],
    "2xx": result["2xx"],
    "4xx": result["4xx"],
    "5xx": result["5xx"],
    errors: result.errors + result.timeouts,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    requestsPerSecond: result.requests.average,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, seconds, connections] = process.argv.slice(2);
  if (!url) {
    console.error("usage: load.ts <assistant url> [seconds=30] [connections=4]");
    process.exit(2);
  }
  const summary = await runLoad({ url, durationSeconds: Number(seconds ?? 30), connections: Number(connections ?? 4) });
  console.log(JSON.stringify(summary));
}
