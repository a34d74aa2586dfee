// The real processes the hostile-input campaign attacks, each alone in its process so a crash is
// an exit and its memory is its own: the local trace server (bench/server-process.ts, in-memory
// store) and a small express app behind the kit's middleware (kit-app.ts) that writes its runs to
// that trace server. Use:
//   const targets = await startTargets();
//   targets.traceServer.port; await targets.traceServer.stats(); targets.traceServer.alive();
//   await targets.kitApp.flush(); await targets.stop();
import { randomBytes } from "node:crypto";
import { childEnv, forkBench, type Child } from "../../../bench/procs.js";
import type { ServerStats } from "../../../bench/server-process.js";
import type { KitAppStats } from "./kit-app.js";

export interface Target {
  url: string;
  port: number;
  /** False once the process has exited. */
  alive(): boolean;
  /** How it exited, once it has. */
  exit(): string | undefined;
}

export interface Targets {
  traceServer: Target & { stats(): Promise<ServerStats> };
  kitApp: Target & { stats(): Promise<KitAppStats>; flush(): Promise<void>; signingKey: string };
  stop(): Promise<void>;
}

const ASK_MS = 60_000;

/**
 * Node refuses request heads over 16 KiB with 431 before express runs. The kit app raises the
 * limit so huge header values reach the middleware, which is what is under test.
 */
export const KIT_MAX_HEADER_BYTES = 1024 * 1024;

export async function startTargets(): Promise<Targets> {
  // --expose-gc: memory is read after a collection, so it is what the process keeps.
  const server = watch(forkBench("./server-process.ts", childEnv(), ["--expose-gc"]));
  const { url } = await server.child.ask<{ url: string }>({ kind: "start", dbPath: ":memory:" }, ASK_MS);
  const signingKey = randomBytes(32).toString("hex");
  // traceable() decides from the environment whether to trace; its child runs use the request run's client.
  const env = childEnv({ LANGSMITH_TRACING: "true", LANGSMITH_ENDPOINT: url, LANGSMITH_API_KEY: "local" });
  const app = watch(forkBench("../tests/support/hostile/kit-app.ts", env, ["--expose-gc"]));
  const { url: appUrl } = await app.child.ask<{ url: string }>({ kind: "start", traceServerUrl: url, signingKey }, ASK_MS);
  return {
    traceServer: {
      url,
      port: Number(new URL(url).port),
      alive: server.alive,
      exit: server.exit,
      stats: async () => (await server.child.ask<{ stats: ServerStats }>({ kind: "stats" }, ASK_MS)).stats,
    },
    kitApp: {
      url: appUrl,
      port: Number(new URL(appUrl).port),
      alive: app.alive,
      exit: app.exit,
      signingKey,
      stats: async () => (await app.child.ask<{ stats: KitAppStats }>({ kind: "stats" }, ASK_MS)).stats,
      flush: async () => {
        await app.child.ask({ kind: "flush" }, ASK_MS);
      },
    },
    stop: async () => {
      for (const target of [app, server]) {
        if (!target.alive()) continue;
        try {
          await target.child.ask({ kind: "stop" }, ASK_MS);
        } catch {
          target.child.process.kill();
        }
      }
    },
  };
}

function watch(child: Child): { child: Child; alive: () => boolean; exit: () => string | undefined } {
  let exited: string | undefined;
  child.process.on("exit", (code, signal) => {
    exited = signal ?? `code ${code}`;
  });
  return { child, alive: () => exited === undefined, exit: () => exited };
}
