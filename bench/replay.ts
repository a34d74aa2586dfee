import { Agent, request } from "node:http";
import { createHistogram } from "node:perf_hooks";
import type { ReplayRequest } from "./payloads.js";

export interface ReplayOptions {
  url: string;
  connections: number;
  /** Stop starting requests after this long; requests in flight finish. */
  maxSeconds: number;
}

export interface ReplayResult {
  requests: number;
  /** Requests not answered 202, or failed at the socket. */
  failed: number;
  firstError: string | undefined;
  /** Distinct runs in the requests answered 202. */
  runs: number;
  bytesSent: number;
  seconds: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** CPU of the load generator itself, which shares the machine with the server. */
  clientCpuSeconds: number;
}

/**
 * Send the requests in order over `connections` keep-alive connections, each
 * connection one request at a time (as the SDK's batch sender does), and
 * time every request from send to the end of the answer.
 */
export async function replay(requests: readonly ReplayRequest[], opts: ReplayOptions): Promise<ReplayResult> {
  const target = new URL("/runs/multipart", opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const histogram = createHistogram();
  const landed = new Set<string>();
  let next = 0;
  let sent = 0;
  let failed = 0;
  let bytesSent = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + opts.maxSeconds * 1000;

  const send = (r: ReplayRequest): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        target,
        {
          method: "POST",
          agent,
          headers: { "content-type": r.contentType, "content-encoding": r.contentEncoding, "content-length": r.body.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(r.body);
    });

  const worker = async (): Promise<void> => {
    while (next < requests.length && performance.now() < deadline) {
      const r = requests[next++] as ReplayRequest;
      const started = process.hrtime.bigint();
      try {
        const answer = await send(r);
        histogram.record(process.hrtime.bigint() - started);
        sent++;
        bytesSent += r.body.length;
        if (answer.status === 202) {
          for (const id of r.runIds) landed.add(id);
        } else {
          failed++;
          firstError ??= `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`;
        }
      } catch (e) {
        sent++;
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  const ms = (ns: number): number => ns / 1e6;
  return {
    requests: sent,
    failed,
    firstError,
    runs: landed.size,
    bytesSent,
    seconds,
    latencyMs: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) },
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}
