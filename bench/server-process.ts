// Child process: the local trace server under test, alone in its process so
// its memory and CPU are measured without the load generator's.
import { statSync } from "node:fs";
import { startTraceServer } from "../setup/src/trace-server/index.js";

export type ServerRequest = { kind: "start"; dbPath: string } | { kind: "stats" } | { kind: "projectRuns" } | { kind: "stop" };

export interface ServerStats {
  rssBytes: number;
  /** Highest RSS of the process so far. */
  maxRssBytes: number;
  heapUsedBytes: number;
  /** Database size: pages in use, plus the WAL for a file store. */
  dbBytes: number;
  runs: number;
  traces: number;
  rejections: number;
  cpuSeconds: number;
}

let handle: Awaited<ReturnType<typeof startTraceServer>> | undefined;

function stats(): ServerStats {
  if (!handle) throw new Error("server not started");
  // --expose-gc is passed by the parent: measure live memory, not garbage awaiting collection.
  globalThis.gc?.();
  const db = handle.store.db;
  const pragma = (name: string): number => Number((db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[name]);
  const pagesBytes = pragma("page_count") * pragma("page_size");
  const path = handle.store.dbPath;
  let walBytes = 0;
  if (path !== ":memory:") {
    try {
      walBytes = statSync(`${path}-wal`).size;
    } catch {
      walBytes = 0;
    }
  }
  const counts = handle.store.counts();
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rssBytes: mem.rss,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes: mem.heapUsed,
    dbBytes: pagesBytes + walBytes,
    runs: counts.runs,
    traces: counts.traces,
    rejections: counts.rejections,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Runs stored per project name: the overhead benchmark gives each configuration a project of its own. */
function projectRuns(): Record<string, number> {
  if (!handle) throw new Error("server not started");
  const rows = handle.store.db.prepare("SELECT p.name AS name, COUNT(r.id) AS n FROM projects p LEFT JOIN runs r ON r.project_id = p.id GROUP BY p.name").all() as Array<{ name: string; n: number }>;
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.n)]));
}

// The parent is gone (it failed or was interrupted): do not linger as an orphan.
process.on("disconnect", () => process.exit(1));

process.on("message", (msg: ServerRequest) => {
  const reply = (body: object): void => void process.send?.(body);
  const fail = (e: unknown): void => reply({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  try {
    if (msg.kind === "start") {
      // A 500's stack trace is logged only through `log`; without it the figures could not say why.
      const log = (line: string): void => {
        if (line.startsWith("ERROR")) console.error(`[trace-server] ${line}`);
      };
      startTraceServer({ port: 0, dbPath: msg.dbPath, log }).then((h) => {
        handle = h;
        reply({ ok: true, url: h.url });
      }, fail);
    } else if (msg.kind === "stats") {
      reply({ ok: true, stats: stats() });
    } else if (msg.kind === "projectRuns") {
      reply({ ok: true, runs: projectRuns() });
    } else {
      (handle?.close() ?? Promise.resolve()).then(() => process.send?.({ ok: true }, () => process.exit(0)), fail);
    }
  } catch (e) {
    fail(e);
  }
});
