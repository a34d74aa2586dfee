/**
 * A throwaway Redis for tests and notebooks: Debian's `redis-server` as a child
 * process on a free loopback port, with nothing persisted, ready once it answers
 * PING, and stopped (or killed with this process) when done. Never a system
 * service: two test runs, or a test run and your own Redis, do not share data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { tmpdir } from "node:os";
import { Redis } from "ioredis";

export interface RedisServerOptions {
  /** Default 0: any free loopback port. */
  port?: number;
  /** Default `redis-server` from PATH (Debian's package installs /usr/bin/redis-server). */
  bin?: string;
  /** Deadline for the server to answer PING. Default 10000. */
  timeoutMs?: number;
}

export interface RedisServer {
  /** redis://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  pid: number;
  /** What the server printed so far (its log goes to stdout). */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. Idempotent. */
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves once the server at `url` answers PING with PONG; rejects on the first failure. */
export async function pingRedis(url: string, timeoutMs = 2_000): Promise<void> {
  // No retries and no offline queue: a server that is not there must fail this call, not hang it.
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: timeoutMs });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const answer = await client.ping();
    if (answer !== "PONG") throw new Error(`${url} answered PING with ${JSON.stringify(answer)}`);
  } finally {
    client.disconnect();
  }
}

function launch(bin: string, port: number): ChildProcess {
  return spawn(bin, ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", tmpdir(), "--daemonize", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Waits for the log line redis prints once it listens, then confirms with PING. */
function ready(child: ChildProcess, url: string, timeoutMs: number, log: { text: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      if (error) reject(error);
      else resolve();
    };
    const onData = (): void => {
      if (log.text.includes("Ready to accept connections")) pingRedis(url).then(() => finish(), (e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(new Error(`redis-server exited (${signal ?? code}) before answering PING:\n${log.text.trim()}`));
    };
    const timer = setTimeout(() => finish(new Error(`redis-server did not answer PING at ${url} within ${timeoutMs} ms:\n${log.text.trim()}`)), timeoutMs);
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
    onData();
  });
}

/**
 * Starts `redis-server --port <free port> --bind 127.0.0.1 --save "" --appendonly no`
 * and resolves once it answers PING. With an automatic port, a port taken between
 * choosing and binding it is retried with another one.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = options.bin ?? "redis-server";
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempts = options.port ? 1 : 3;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port || (await freePort());
    const url = `redis://${HOST}:${port}`;
    const child = launch(bin, port);
    const log = { text: "" };
    const append = (chunk: Buffer): void => {
      log.text += chunk.toString();
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    const spawnFailed = once(child, "error").then(([e]) => e as Error);
    // Killed with this process, so an interrupted test or kernel leaves no server behind.
    const killOnExit = (): void => {
      child.kill("SIGKILL");
    };
    process.once("exit", killOnExit);
    try {
      await Promise.race([ready(child, url, timeoutMs, log), spawnFailed.then((e) => Promise.reject(new Error(`could not run ${bin}: ${e.message}`)))]);
    } catch (error) {
      process.off("exit", killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      lastError = error instanceof Error ? error : new Error(String(error));
      if (/could not run/.test(lastError.message) || !/Address already in use/i.test(log.text)) throw lastError;
      continue;
    }
    let stopping: Promise<void> | undefined;
    return {
      url,
      host: HOST,
      port,
      pid: child.pid ?? -1,
      output: () => log.text,
      stop: () => {
        stopping ??= (async () => {
          process.off("exit", killOnExit);
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, "exit");
          child.kill("SIGTERM");
          const killTimer = setTimeout(() => child.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(killTimer);
        })();
        return stopping;
      },
    };
  }
  throw lastError ?? new Error("redis-server did not start");
}
