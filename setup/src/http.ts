import http from "node:http";
import type { AddressInfo } from "node:net";

export interface WaitForHttpOptions {
  /** Give up after this long. Default 10000. */
  timeoutMs?: number;
  /** Pause between attempts. Default 50. */
  intervalMs?: number;
  /** Per-attempt timeout. Default 2000. */
  attemptTimeoutMs?: number;
  /** Which responses count as ready. Default: any 2xx. */
  accept?: (response: Response) => boolean | Promise<boolean>;
}

/**
 * Polls `url` with GET until a response is accepted (default: 2xx) and returns it; throws after the
 * deadline with an error naming the URL and the last status or connection error.
 */
export async function waitForHttp(url: string, options: WaitForHttpOptions = {}): Promise<Response> {
  const { timeoutMs = 10_000, intervalMs = 50, attemptTimeoutMs = 2_000, accept = (r: Response) => r.ok } = options;
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt finished";
  for (;;) {
    const remaining = deadline - Date.now();
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, Math.min(attemptTimeoutMs, remaining))) });
      if (await accept(response)) return response;
      last = `HTTP ${response.status}`;
      await response.body?.cancel();
    } catch (error) {
      const cutShortByDeadline = (error as { name?: string }).name === "TimeoutError" && remaining < attemptTimeoutMs;
      // An attempt cut short by our own deadline says nothing about the server; keep the previous result.
      if (!cutShortByDeadline || last === "no attempt finished") {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        last = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
      }
    }
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${url} (last result: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

export interface StartAppOptions {
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** If given, startApp resolves only once GET <url><healthPath> answers 2xx. */
  healthPath?: string;
  /** Deadline for the health check. Default 10000. */
  timeoutMs?: number;
}

export interface RunningApp {
  url: string;
  port: number;
  server: http.Server;
  /** Stops listening and destroys open (including keep-alive) connections. Idempotent. */
  close(): Promise<void>;
}

/** Anything http.createServer accepts: an express app or a plain (req, res) handler. */
export type AppHandler = http.RequestListener;

/** Starts an express app or node:http handler and resolves once it listens (and is healthy, if asked). */
export async function startApp(app: AppHandler, options: StartAppOptions = {}): Promise<RunningApp> {
  const { port = 0, host = "127.0.0.1", healthPath, timeoutMs = 10_000 } = options;
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off("listening", onListening);
      reject(
        new Error(
          error.code === "EADDRINUSE" ? `Cannot start app: ${host}:${port} is already in use` : `Cannot start app on ${host}:${port}: ${error.message}`,
          { cause: error },
        ),
      );
    };
    const onListening = (): void => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
    return closing;
  };
  if (healthPath !== undefined) {
    try {
      await waitForHttp(new URL(healthPath, url).toString(), { timeoutMs });
    } catch (error) {
      await close();
      throw error;
    }
  }
  return { url, port: actualPort, server, close };
}
