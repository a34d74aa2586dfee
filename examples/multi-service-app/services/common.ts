// What the four services share: where each listens, where its neighbours are,
// JSON calls that carry the trace, and a stop that does not lose runs.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { flushTraces } from "@tracing-patterns/setup";
import { tracedFetch } from "@tracing-patterns/example-express-middleware";
import { DEFAULT_PORTS, PORT_ENV, URL_ENV, type DownstreamService, type ServiceName } from "./ports.js";

const HOST = process.env.SERVICE_HOST ?? "127.0.0.1";

export function portFor(service: ServiceName): number {
  const raw = process.env[PORT_ENV[service]];
  if (raw === undefined || raw.trim() === "") return DEFAULT_PORTS[service];
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${PORT_ENV[service]} must be a port number, got ${JSON.stringify(raw)}`);
  return port;
}

/** The downstream service's base URL: its *_URL variable, else its default port on loopback. */
export function urlOf(service: DownstreamService): URL {
  return new URL(process.env[URL_ENV[service]] ?? `http://127.0.0.1:${DEFAULT_PORTS[service]}`);
}

export function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
}

/** A downstream call that failed; the caller answers 502 with it. */
export class DownstreamError extends Error {
  constructor(
    readonly service: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = "DownstreamError";
  }
}

const TIMEOUT_MS = numberFromEnv("DOWNSTREAM_TIMEOUT_MS", 30_000);

/**
 * POSTs JSON to one of our own services. tracedFetch adds `langsmith-trace`
 * and `baggage` for the current run, so the receiver's server run becomes its child.
 */
export async function postJson<T>(service: string, url: URL, body: unknown): Promise<T> {
  let response: Response;
  try {
    response = await tracedFetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw new DownstreamError(service, undefined, `${service} at ${url.origin} unreachable: ${cause}`);
  }
  if (!response.ok) {
    const text = (await response.text()).slice(0, 300);
    throw new DownstreamError(service, response.status, `${service} answered ${response.status}: ${text}`);
  }
  return (await response.json()) as T;
}

/**
 * Listens, announces `<service> listening on <url>` on stdout (the launcher
 * and tests wait for that line), and stops cleanly on SIGINT/SIGTERM: no new
 * connections, in-flight requests finish, pending runs are flushed, exit 0.
 */
// What a shutdown may spend flushing runs before it exits anyway.
const FLUSH_DEADLINE_MS = 10_000;

export async function serve(app: Express, service: ServiceName, options: { flush?: () => Promise<void> } = {}): Promise<void> {
  const port = portFor(service);
  const server = app.listen(port, HOST);
  try {
    await once(server, "listening");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const hint = code === "EADDRINUSE" ? ` (port ${port} is taken; set ${PORT_ENV[service]}, 0 for any free port)` : "";
    console.error(`${service} could not listen on ${HOST}:${port}: ${code ?? String(err)}${hint}`);
    process.exit(1);
  }
  const { port: actual } = server.address() as AddressInfo;
  console.log(`${service} listening on http://${HOST.includes(":") ? `[${HOST}]` : HOST}:${actual}`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    // Ctrl-C in a terminal reaches every process of the group, and the launcher
    // sends SIGTERM as well: the second signal must not kill a flush in progress.
    if (stopping) return;
    stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    await options.flush?.();
    // Runs are sent in background batches; without this the last ones are lost on exit.
    // Bounded: with the trace backend down or hung the SDK's own flush takes 90 s or
    // more (docs/reliability.md), past any orchestrator's grace period.
    await flushTraces({ timeoutMs: FLUSH_DEADLINE_MS });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  // Set by the launcher: when it dies without stopping us (a killed notebook
  // kernel, say), its end of the stdin pipe closes and we must not linger on the port.
  if (process.env.EXIT_ON_STDIN_END === "1") {
    process.stdin.on("end", () => void stop());
    process.stdin.resume();
  }
}
