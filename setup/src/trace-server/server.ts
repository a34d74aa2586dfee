import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { allowedHostsFor } from "../http-guard.js";
import { mountViewer } from "../viewer/app.js";
import { createTraceServerApp, type TraceServerAppOptions } from "./app.js";
import { TraceStore } from "./store.js";

export interface TraceServerOptions extends TraceServerAppOptions {
  /** Default "127.0.0.1": loopback only. */
  host?: string;
  /** Default 1984; 0 picks a free port. */
  port?: number;
  /** ":memory:" (default) or a SQLite file, which survives restarts. */
  dbPath?: string;
  /** Serve an existing store instead of opening `dbPath`; it is left open on close. */
  store?: TraceStore;
  /** Serve the trace viewer at "/" (after any `mount` routes). Default true. */
  viewer?: boolean;
  /**
   * The project the viewer's trace list opens on. Default: the one the SDK writes to when code
   * names none (LANGSMITH_PROJECT, else "default"), read when the server starts.
   */
  viewerProject?: string;
}

export interface TraceServerHandle {
  /** e.g. `http://127.0.0.1:1984`, the value for LANGSMITH_ENDPOINT. */
  url: string;
  port: number;
  store: TraceStore;
  server: Server;
  close(): Promise<void>;
}

const DEFAULT_PORT = 1984;

/** Start the LangSmith-compatible trace server; resolves once it is listening. */
export async function startTraceServer(opts: TraceServerOptions = {}): Promise<TraceServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  const ownsStore = opts.store === undefined;
  const store = opts.store ?? new TraceStore(opts.dbPath ?? ":memory:");
  const app = createTraceServerApp(store, {
    allowedHosts: allowedHostsFor(host),
    ...opts,
    mount: (expressApp, ctx) => {
      opts.mount?.(expressApp, ctx);
      if (opts.viewer ?? true) mountViewer(expressApp, ctx, opts.viewerProject === undefined ? {} : { defaultProject: opts.viewerProject });
    },
  });
  const server = createServer(app);
  // The SDK keeps connections alive between batches; do not let an idle one hold close() up.
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? DEFAULT_PORT, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    if (ownsStore) store.close();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    store,
    server,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (ownsStore) store.close();
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
        // A client still mid-request gets a grace period, not a veto over shutdown.
        setTimeout(() => server.closeAllConnections(), 5_000).unref();
      });
      return closing;
    },
  };
}
