// A service's settings from its environment: numbers, the port it listens on
// and where its neighbours are. The launcher (launch.ts) sets these; each has a
// default, so a service also starts on its own.
import { DEFAULT_PORTS, PORT_ENV, URL_ENV, type DownstreamService, type ServiceName } from "./ports.js";

/** The interface the services listen on. */
export const SERVICE_HOST = process.env.SERVICE_HOST ?? "127.0.0.1";

export function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
}

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
