// `npm run model-server`: the deterministic OpenAI-compatible endpoint in the
// foreground, one log line per request, until Ctrl-C / SIGTERM.
import { startModelServer } from "@tracing-patterns/setup";

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} must be a non-negative integer, got '${raw}'`);
    process.exit(2);
  }
  return value;
}

const server = await startModelServer({
  host: process.env.MODEL_SERVER_HOST || "127.0.0.1",
  port: envNumber("MODEL_SERVER_PORT", 1985),
  latencyMs: envNumber("MODEL_SERVER_LATENCY_MS", 0),
  tokenDelayMs: envNumber("MODEL_SERVER_TOKEN_DELAY_MS", 0),
  log: (line) => console.log(`[model-server] ${line}`),
}).catch((error: unknown) => {
  const code = (error as { code?: string }).code;
  console.error(code === "EADDRINUSE" ? "port already in use: set MODEL_SERVER_PORT or stop the other server" : `could not start: ${String(error)}`);
  process.exit(1);
});

console.log(`local model endpoint listening on ${server.url}`);
console.log(`  use with: new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", configuration: { baseURL: "${server.url}" } })`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void server.close().then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
