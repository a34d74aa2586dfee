// What every service reads from its environment: where it listens, where its
// neighbours are, and the chat model. The launcher (launch.ts) sets these; in
// your deployment they come from wherever your configuration lives.
import { ChatOpenAI } from "@langchain/openai";

export const SERVICE_NAMES = ["supervisor", "research-agent", "writing-agent"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** The variable that moves each service, and its default port. 0 means any free port. */
export const PORT_ENV: Readonly<Record<ServiceName, string>> = {
  supervisor: "SUPERVISOR_PORT",
  "research-agent": "RESEARCH_PORT",
  "writing-agent": "AGENT_SERVER_PORT",
};
export const DEFAULT_PORTS: Readonly<Record<ServiceName, number>> = { supervisor: 3100, "research-agent": 3101, "writing-agent": 3102 };
/** Where the supervisor finds its agents. */
export const URL_ENV = { research: "RESEARCH_URL", writing: "AGENT_SERVER_URL" } as const;

export function portFromEnv(service: ServiceName, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[PORT_ENV[service]];
  if (raw === undefined || raw.trim() === "") return DEFAULT_PORTS[service];
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${PORT_ENV[service]} must be a port number, got ${JSON.stringify(raw)}`);
  return port;
}

export function urlFromEnv(name: string, fallbackPort: number, env: NodeJS.ProcessEnv = process.env): URL {
  return new URL(env[name] ?? `http://127.0.0.1:${fallbackPort}`);
}

export function numberFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * A real ChatOpenAI: OPENAI_BASE_URL (the local model endpoint when the
 * launcher runs offline) or OpenAI itself, OPENAI_API_KEY, OPENAI_MODEL.
 */
export function chatModelFromEnv(env: NodeJS.ProcessEnv = process.env): ChatOpenAI {
  const baseURL = env.OPENAI_BASE_URL?.trim();
  return new ChatOpenAI({
    model: env.OPENAI_MODEL?.trim() || "gpt-4o-mini",
    apiKey: env.OPENAI_API_KEY,
    temperature: 0,
    maxRetries: 2,
    ...(baseURL ? { configuration: { baseURL } } : {}),
  });
}
