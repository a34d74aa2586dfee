import { resolve } from "node:path";
import { startTraceServer } from "../src/trace-server/index.js";

// Foreground local trace server: `npm run trace-server`.
const root = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();
const host = process.env.TRACE_SERVER_HOST || "127.0.0.1";
const portText = process.env.TRACE_SERVER_PORT || "1984";
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`TRACE_SERVER_PORT must be a port number, got ${JSON.stringify(portText)}`);
  process.exit(2);
}
const dbEnv = process.env.TRACE_SERVER_DB;
const dbPath = dbEnv === ":memory:" ? dbEnv : resolve(root, dbEnv || ".data/traces.sqlite");
const apiKey = process.env.TRACE_SERVER_API_KEY || undefined;
const verbose = process.env.TRACE_SERVER_LOG !== "quiet";

const server = await startTraceServer({
  host,
  port,
  dbPath,
  ...(apiKey !== undefined ? { apiKey } : {}),
  ...(verbose ? { log: (line: string) => console.log(`[trace-server] ${line}`) } : {}),
}).catch((e: unknown) => {
  const err = e as NodeJS.ErrnoException;
  console.error(err.code === "EADDRINUSE" ? `port ${port} on ${host} is already in use (set TRACE_SERVER_PORT)` : `could not start the trace server: ${err.message}`);
  process.exit(1);
});

const counts = server.store.counts();
console.log(`trace server listening on ${server.url}`);
console.log(`  trace viewer: ${server.url}/${apiKey === undefined ? "" : "?key=<TRACE_SERVER_API_KEY> (once; a cookie keeps it)"}`);
console.log(`  store: ${dbPath} (${counts.runs} runs in ${counts.traces} traces, ${counts.rejections} rejections)`);
console.log(`  point the SDK at it: LANGSMITH_ENDPOINT=${server.url} LANGSMITH_API_KEY=${apiKey === undefined ? "local" : "<TRACE_SERVER_API_KEY>"} LANGSMITH_TRACING=true`);
if (host !== "127.0.0.1" && host !== "localhost" && host !== "::1" && apiKey === undefined) {
  console.warn(`  warning: listening on ${host} without TRACE_SERVER_API_KEY; anyone who can reach it can read and write traces`);
}

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  console.log(`[trace-server] ${signal}: shutting down`);
  server.close().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`[trace-server] error while closing: ${(e as Error).message}`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
