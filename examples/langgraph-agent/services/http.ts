// What the example's express services share: JSON errors that carry the trace
// id (the kit's), and listening on loopback with a "<service> listening on <url>" line
// (the launcher waits for it) and a shutdown that flushes the last runs.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { ErrorRequestHandler, Express } from "express";
import { portFromEnv, PORT_ENV, type ServiceName } from "./env.js";
import { installShutdown, jsonErrors } from "./tracing.js";

/** A request the service refuses (400); the error handler answers it with its message. */
export class InvalidRequest extends Error {
  readonly status = 400;
  readonly expose = true;
}

/** A downstream agent that failed or answered what it must not; the supervisor answers 502. */
export class AgentCallError extends Error {
  constructor(
    readonly agent: string,
    message: string,
  ) {
    super(`${agent}: ${message}`);
    this.name = "AgentCallError";
  }
}

/**
 * The last handler: the kit's JSON errors with the trace id. Client errors keep
 * their status; an agent's failure is a 502 with its message; anything else a
 * 500 naming the service (this example's callers are its own services, so the
 * message helps more than it reveals).
 */
export function agentErrors(service: ServiceName): ErrorRequestHandler {
  return jsonErrors({ service, exposeFailures: true, upstreamFailure: (err) => err instanceof AgentCallError });
}

/** Listens on 127.0.0.1 (SERVICE_HOST), announces the URL, and stops cleanly on SIGTERM/SIGINT within 8 s. */
export async function serve(app: Express, service: ServiceName): Promise<void> {
  const host = process.env.SERVICE_HOST ?? "127.0.0.1";
  const port = portFromEnv(service);
  const server = app.listen(port, host);
  // Right after listen(), so the shutdown sees every request.
  const { shutdown } = installShutdown({ timeoutMs: 8_000, drain: [server] });
  // Set by the launcher: when it dies without stopping us, its end of the stdin pipe closes.
  if (process.env.EXIT_ON_STDIN_END === "1") {
    process.stdin.on("end", () => void shutdown("launcher gone"));
    process.stdin.resume();
  }
  try {
    await once(server, "listening");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const hint = code === "EADDRINUSE" ? ` (port ${port} is taken; set ${PORT_ENV[service]}, 0 for any free port)` : "";
    console.error(`${service} could not listen on ${host}:${port}: ${code ?? String(err)}${hint}`);
    process.exit(1);
  }
  const { port: actual } = server.address() as AddressInfo;
  console.log(`${service} listening on http://${host.includes(":") ? `[${host}]` : host}:${actual}`);
}
