/**
 * Notebook 05's harness: load against real service processes, what became of each request's trace
 * (stored whole, orphaned, with a hole, not at all) next to what the SDK's own sampling function
 * predicts, and a backend front door that can be taken down and counts the bytes that cross it.
 *
 *   const sent = await sendRequests(`${front}/work`, 40, { concurrency: 8 });
 *   const shapes = await traceShapes(sent.map((r) => r.traceId), { upstream: "front", downstream: "back" });
 *   const predicted = predictShapes(sent.map((r) => r.traceId), 0.3, 0.6);
 *   const all = await storedShapes({ upstream: "front", downstream: "back", projectName, since });  // every trace, id known or not
 *   const door = await startBackendDoor(traceServerUrl);  // LANGSMITH_ENDPOINT=door.url; door.down(); door.up()
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Client, type Run } from "langsmith";
import { runFromV2 } from "../traces/read.js";

export interface RequestOutcome {
  requestId: string;
  /** HTTP status; 0 when the request failed without an answer (connection refused or reset). */
  status: number;
  /** x-trace-id, "" when none came back. */
  traceId: string;
  ms: number;
  error?: string;
}

/**
 * POSTs `{ request_id }` `count` times, `concurrency` at a time, plus what `body(index)` adds (say,
 * `{ fail_in: "back" }`); never throws for a failed request.
 */
export async function sendRequests(
  url: string,
  count: number,
  options: { concurrency?: number; prefix?: string; body?: (index: number) => Record<string, unknown> } = {},
): Promise<RequestOutcome[]> {
  const { concurrency = 8, prefix = "req", body } = options;
  const outcomes: RequestOutcome[] = new Array(count);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < count) {
      const index = nextIndex++;
      const requestId = `${prefix}-${String(index).padStart(4, "0")}`;
      const started = performance.now();
      try {
        const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body?.(index), request_id: requestId }) });
        await response.arrayBuffer();
        outcomes[index] = { requestId, status: response.status, traceId: response.headers.get("x-trace-id") ?? "", ms: performance.now() - started };
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        outcomes[index] = { requestId, status: 0, traceId: "", ms: performance.now() - started, error: cause ?? String(error) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return outcomes;
}

/** What a request's trace looks like once stored, for a request through two services. */
export type TraceShape = "complete" | "orphaned" | "hole" | "not stored";

/**
 * The SDK's own per-trace decision at `rate`: the Client's `_shouldSample`, which is what its
 * createRun and updateRun call (isSampledById: XXH3-128 of the trace id, modulo 1e6, below the
 * rate). Throws if a future SDK renames it, rather than guessing.
 */
export function sdkSamples(traceId: string, rate: number): boolean {
  let client = samplers.get(rate);
  if (!client) {
    client = new Client({ apiUrl: "http://127.0.0.1:9", apiKey: "unused", tracingSamplingRate: rate });
    samplers.set(rate, client);
  }
  const decide = (client as unknown as { _shouldSample?: (id: string) => boolean })._shouldSample;
  if (typeof decide !== "function") throw new Error("this langsmith version has no Client._shouldSample; update sdkSamples");
  return decide.call(client, traceId);
}
const samplers = new Map<number, Client>();

/** The shape each trace must have when the upstream service samples at `upstreamRate` and the downstream one at `downstreamRate`. */
export function predictShapes(traceIds: readonly string[], upstreamRate: number, downstreamRate: number): Map<string, TraceShape> {
  return new Map(traceIds.map((id) => [id, shapeOf(sdkSamples(id, upstreamRate), sdkSamples(id, downstreamRate))]));
}

function shapeOf(upstreamKept: boolean, downstreamKept: boolean): TraceShape {
  if (upstreamKept) return downstreamKept ? "complete" : "hole";
  return downstreamKept ? "orphaned" : "not stored";
}

/**
 * Names each trace's shape from the services whose runs are stored. Call it after the services
 * have flushed (stopping them with the kit's shutdown does), so one read is final.
 */
export async function traceShapes(
  traceIds: readonly string[],
  options: { upstream: string; downstream: string; projectName?: string; client?: Client },
): Promise<Map<string, TraceShape>> {
  const stored = await storedTraces(traceIds, options);
  return new Map(
    traceIds.map((id) => {
      const services = new Set((stored.get(id) ?? []).map((r) => r.extra?.metadata?.LANGSMITH_SERVICE as string | undefined));
      return [id, shapeOf(services.has(options.upstream), services.has(options.downstream))];
    }),
  );
}

/**
 * The shape of every trace stored in the project since `since`, whether or not a response named
 * it: a request sampled out has no trace id, so orphans from it can only be found this way.
 */
export async function storedShapes(options: { upstream: string; downstream: string; since: Date; projectName?: string; client?: Client }): Promise<Map<string, TraceShape>> {
  const stored = await storedTraces(undefined, options);
  return new Map(
    [...stored].map(([id, runs]) => {
      const services = new Set(runs.map((r) => r.extra?.metadata?.LANGSMITH_SERVICE as string | undefined));
      return [id, shapeOf(services.has(options.upstream), services.has(options.downstream))];
    }),
  );
}

/** Count per shape, every shape listed (0 included), for console.table. */
export function tallyShapes(shapes: ReadonlyMap<string, TraceShape>): Record<TraceShape, number> {
  const tally: Record<TraceShape, number> = { complete: 0, orphaned: 0, hole: 0, "not stored": 0 };
  for (const shape of shapes.values()) tally[shape]++;
  return tally;
}

/** Trace ids whose stored shape differs from the predicted one. */
export function shapeMismatches(stored: ReadonlyMap<string, TraceShape>, predicted: ReadonlyMap<string, TraceShape>): string[] {
  return [...predicted].filter(([id, shape]) => stored.get(id) !== shape).map(([id, shape]) => `${id}: predicted ${shape}, stored ${stored.get(id) ?? "unread"}`);
}

export interface BackendDoor {
  /** Point LANGSMITH_ENDPOINT here. */
  url: string;
  /** Stops accepting connections and cuts open ones: the SDK sees ECONNREFUSED, as with a backend that is down. */
  down(): Promise<void>;
  /** Accepts again, on the same port. */
  up(): Promise<void>;
  /** Request bytes that crossed the door to the backend, and connections refused while down. */
  stats(): { bytesToBackend: number; connections: number };
  close(): Promise<void>;
}

/**
 * A TCP door in front of a trace backend (the local trace server or LangSmith's host), on a free
 * port: the only way to take "the backend" down for some services without stopping a server
 * other code shares, and a place to count what tracing sends over the wire.
 */
export async function startBackendDoor(backendUrl: string): Promise<BackendDoor> {
  const target = new URL(backendUrl);
  const targetPort = Number(target.port || (target.protocol === "https:" ? 443 : 80));
  const sockets = new Set<net.Socket>();
  let bytesToBackend = 0;
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(targetPort, target.hostname);
    sockets.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => (bytesToBackend += chunk.length));
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", () => resolve()));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    down: close,
    up: () => listen(port),
    stats: () => ({ bytesToBackend, connections }),
    close,
  };
}

/** How many of the traces are stored whole (`runs` runs, all ended), partly, or not at all; one read, after the services flushed. */
export async function traceCompleteness(
  traceIds: readonly string[],
  options: { runs: number; projectName?: string; client?: Client },
): Promise<{ complete: number; partial: number; missing: number }> {
  const stored = await storedTraces(traceIds, options);
  const counts = { complete: 0, partial: 0, missing: 0 };
  for (const id of traceIds) {
    const runs = stored.get(id) ?? [];
    if (runs.length === 0) counts.missing++;
    else if (runs.length >= options.runs && runs.every((r) => r.end_time != null)) counts.complete++;
    else counts.partial++;
  }
  return counts;
}

/**
 * The stored runs of the given traces (undefined: every trace since `options.since`), by trace id,
 * in one scan of the project (from the earliest trace's start, read from its UUIDv7 id) instead of
 * one read per trace: load sections ask about hundreds of traces, most of them deliberately absent.
 */
async function storedTraces(traceIds: readonly string[] | undefined, options: { projectName?: string; client?: Client; since?: Date }): Promise<Map<string, Run[]>> {
  const client = options.client ?? new Client();
  const projectName = options.projectName ?? process.env.LANGSMITH_PROJECT ?? "default";
  const byTrace = new Map<string, Run[]>();
  let projectId: string | undefined;
  for await (const project of client.listProjects({ name: projectName })) projectId = project.id;
  if (projectId === undefined || traceIds?.length === 0) return byTrace;
  const wanted = traceIds === undefined ? undefined : new Set(traceIds);
  const starts = (traceIds ?? []).map((id) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).filter(Number.isFinite);
  const since = options.since?.getTime() ?? (starts.length > 0 ? Math.min(...starts) - 60_000 : Date.now() - 86_400_000);
  const pages = client.runs.query({ project_ids: [projectId], min_start_time: new Date(since).toISOString(), selects: ["ID", "NAME", "TRACE_ID", "END_TIME", "METADATA", "EXTRA", "PARENT_RUN_IDS"] });
  for await (const item of pages) {
    const run = runFromV2(item);
    if (run.trace_id === undefined || (wanted !== undefined && !wanted.has(run.trace_id))) continue;
    byTrace.set(run.trace_id, [...(byTrace.get(run.trace_id) ?? []), run]);
  }
  return byTrace;
}

export interface SecretFound {
  run: string;
  field: string;
  secret: string;
}

/** Every place one of `secrets` (name -> value) occurs in the runs, field by field, events and tags included. */
export function findSecrets(runs: readonly Run[], secrets: Record<string, string>): SecretFound[] {
  const found: SecretFound[] = [];
  for (const run of runs) {
    for (const [field, value] of Object.entries(run)) {
      const text = typeof value === "string" ? value : JSON.stringify(value ?? null);
      for (const [secret, needle] of Object.entries(secrets)) if (text.includes(needle)) found.push({ run: run.name, field, secret });
    }
  }
  return found;
}
