/**
 * Listening and stopping, the same for both services: GET /metrics and GET
 * /health, `<service> listening on <url>` on stdout once the port is open (the
 * launcher and tests wait for that line), and the kit's shutdown on SIGTERM /
 * SIGINT: stop accepting, finish in-flight requests (streams included), stop
 * the replay loop, flush this service's client, exit 0, all within
 * SHUTDOWN_TIMEOUT_MS (default 10000).
 *
 *   await serve(app, { service: "assistant", port: 4100, metrics, tracing });
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { installShutdown } from "@tracing-patterns/kit";
import type { ServiceMetrics } from "./metrics.js";
import type { Tracing } from "./tracing.js";

export interface ServeOptions {
  service: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
  metrics: ServiceMetrics;
  tracing: Tracing;
}

export async function serve(app: Express, options: ServeOptions): Promise<void> {
  const host = options.host ?? process.env.SERVICE_HOST ?? "127.0.0.1";
  const server = app.listen(options.port, host);
  const { shutdown } = installShutdown({
    timeoutMs: wholeNumber("SHUTDOWN_TIMEOUT_MS", 10_000),
    // Requests first, then the replay loop (a pass in progress finishes; what it has not sent stays on disk).
    drain: [server, options.tracing.replay],
    client: options.tracing.client,
    log: (line) => console.log(line),
  });
  try {
    await once(server, "listening");
  } catch (error) {
    console.error(`${options.service} could not listen on ${host}:${options.port}: ${(error as { code?: string }).code ?? String(error)}`);
    process.exit(1);
  }
  const { port } = server.address() as AddressInfo;
  console.log(`${options.service} listening on http://${host}:${port}`);
  // Set by launchers: if the parent dies without stopping us, its end of stdin closes.
  if (process.env.EXIT_ON_STDIN_END === "1") {
    process.stdin.on("end", () => void shutdown("launcher gone"));
    process.stdin.resume();
  }
}

/** A whole number >= 0 from the environment, or the fallback; throws at start-up on anything else. */
export function wholeNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(raw)}`);
  return value;
}
