// A stand-in for the trace backend that misbehaves on purpose: it answers
// ingest requests with an error status, holds them open forever, passes them
// through to a real trace server, or passes them through late. Loopback only,
// ephemeral port.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * - "hang": read the request, never answer (until close).
 * - { status }: answer with that status, with `retry-after` when given; after
 *   `times` such answers (default: forever) the backend switches to "pass".
 * - "pass": forward to `target` (a real trace server) and relay its answer.
 * - { delayMs }: a slow backend: forward to `target` after waiting that long.
 */
export type FaultMode = "hang" | "pass" | { delayMs: number } | { status: number; retryAfterSeconds?: number; times?: number };

export interface FaultBackendOptions {
  /** Base URL of a real trace server, needed for "pass" and for `info: "pass"`. */
  target?: string;
  /** Start mode for ingest routes. Default "pass". */
  mode?: FaultMode;
  /**
   * How GET /info is answered: "pass" (from `target`, so the SDK learns the
   * real batch limits) or "fault" (the same as ingest). Default "fault".
   */
  info?: "pass" | "fault";
}

export interface SeenRequest {
  method: string;
  path: string;
  /** What this backend answered; undefined while a request is held. */
  status?: number;
  /** performance.now() when the request head arrived. */
  at: number;
}

export interface FaultBackend {
  url: string;
  port: number;
  /** Every request, in arrival order. */
  readonly requests: readonly SeenRequest[];
  /** Requests currently held open by "hang". */
  held(): number;
  setMode(mode: FaultMode): void;
  /** Destroys the connections of held requests: to the client, the hang ends in a reset. */
  releaseHeld(): void;
  /** Resolves once `count` requests whose path starts with `pathPrefix` have arrived. */
  waitForRequests(pathPrefix: string, count: number): Promise<void>;
  /** Ends held requests and stops listening. */
  close(): Promise<void>;
}

function forward(target: string, req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest): void {
  const upstream = http.request(new URL(req.url ?? "/", target), { method: req.method, headers: req.headers }, (answer) => {
    seen.status = answer.statusCode ?? 502;
    res.writeHead(seen.status, answer.headers);
    answer.pipe(res);
  });
  upstream.on("error", () => {
    seen.status = 502;
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  req.pipe(upstream);
}

export async function startFaultBackend(options: FaultBackendOptions = {}): Promise<FaultBackend> {
  const needsTarget = (m: FaultMode): boolean =>
    m === "pass" || options.info === "pass" || (typeof m === "object" && ("delayMs" in m || m.times !== undefined));
  const checked = (m: FaultMode): FaultMode => {
    if (needsTarget(m) && !options.target) throw new Error('fault backend: "pass" needs a target trace server');
    return m;
  };
  let mode = checked(options.mode ?? "pass");
  const target = options.target ?? "";
  let answered = 0;
  const requests: SeenRequest[] = [];
  const waiters: Array<{ prefix: string; count: number; resolve: () => void }> = [];
  const heldSockets = new Set<Socket>();
  const delays = new Set<NodeJS.Timeout>();

  const notify = (): void => {
    for (const waiter of [...waiters]) {
      if (requests.filter((r) => r.path.startsWith(waiter.prefix)).length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const seen: SeenRequest = { method: req.method ?? "GET", path, at: performance.now() };
    requests.push(seen);
    const effective: FaultMode = path === "/info" && options.info === "pass" ? "pass" : mode;
    if (effective === "pass") {
      forward(target, req, res, seen);
    } else if (effective === "hang") {
      // Drain the body so the client finishes sending and waits for an answer that never comes.
      req.resume();
      heldSockets.add(req.socket);
      req.socket.once("close", () => heldSockets.delete(req.socket));
    } else if ("delayMs" in effective) {
      // The body stays buffered in the paused request until it is forwarded.
      const timer = setTimeout(() => {
        delays.delete(timer);
        forward(target, req, res, seen);
      }, effective.delayMs);
      delays.add(timer);
    } else {
      req.resume();
      seen.status = effective.status;
      if (effective.times !== undefined) {
        answered += 1;
        if (answered >= effective.times) {
          mode = "pass";
          answered = 0;
        }
      }
      const headers: Record<string, string> = { "content-type": "application/json", connection: "close" };
      if (effective.retryAfterSeconds !== undefined) headers["retry-after"] = String(effective.retryAfterSeconds);
      res.writeHead(effective.status, headers).end(JSON.stringify({ detail: `fault backend: ${effective.status}` }));
    }
    notify();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    held: () => heldSockets.size,
    setMode(next) {
      mode = checked(next);
      answered = 0;
    },
    releaseHeld() {
      for (const socket of heldSockets) socket.destroy();
      heldSockets.clear();
    },
    waitForRequests(prefix, count) {
      return new Promise((resolve) => {
        waiters.push({ prefix, count, resolve });
        notify();
      });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const timer of delays) clearTimeout(timer);
        delays.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
