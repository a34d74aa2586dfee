// Listening and stopping, the same for every service: announce
// `<service> listening on <url>` on stdout (the launcher and tests wait for
// that line), and stop on SIGINT/SIGTERM with the kit's shutdown within
// SHUTDOWN_TIMEOUT_MS: no new connections, in-flight requests finish or are
// cut off when the drain share of the budget is spent (their runs end with the
// disconnect), pending runs (LangChain's callbacks included) are flushed with
// what is left, exit 0.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { installShutdown } from "@tracing-patterns/kit";
import { SERVICE_HOST, numberFromEnv, portFor } from "./env.js";
import { PORT_ENV, type ServiceName } from "./ports.js";

// The whole stop, from the signal to exit: below the 10 s the launcher (launch.ts) waits
// before SIGKILL, as an orchestrator's grace period would be.
const SHUTDOWN_TIMEOUT_MS = numberFromEnv("SHUTDOWN_TIMEOUT_MS", 8_000);

export async function serve(app: Express, service: ServiceName): Promise<void> {
  const port = portFor(service);
  const server = app.listen(port, SERVICE_HOST);
  // Right after listen(), so the shutdown sees every request; a bad SHUTDOWN_TIMEOUT_MS throws here, at start-up.
  const { shutdown } = installShutdown({ timeoutMs: SHUTDOWN_TIMEOUT_MS, drain: [server] });
  try {
    await once(server, "listening");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const hint = code === "EADDRINUSE" ? ` (port ${port} is taken; set ${PORT_ENV[service]}, 0 for any free port)` : "";
    console.error(`${service} could not listen on ${SERVICE_HOST}:${port}: ${code ?? String(err)}${hint}`);
    process.exit(1);
  }
  const { port: actual } = server.address() as AddressInfo;
  console.log(`${service} listening on http://${SERVICE_HOST.includes(":") ? `[${SERVICE_HOST}]` : SERVICE_HOST}:${actual}`);
  // Set by the launcher: when it dies without stopping us (a killed notebook
  // kernel, say), its end of the stdin pipe closes and we must not linger on the port.
  if (process.env.EXIT_ON_STDIN_END === "1") {
    process.stdin.on("end", () => void shutdown("launcher gone"));
    process.stdin.resume();
  }
}
