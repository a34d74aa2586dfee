import type { Client } from "langsmith";
import { existingSharedClients } from "@tracing-patterns/kit";
import type { TraceRun } from "./traces/types.js";

export { existingSharedClients };

/**
 * Metadata key naming the service that emitted a run. The SDK's Client copies every non-secret
 * LANGSMITH_* environment variable into each run's extra.metadata, so setting the variable in a
 * process labels all of its runs; a run's own metadata wins over it (per-run override).
 */
export const SERVICE_METADATA_KEY = "LANGSMITH_SERVICE";

/** Metadata that labels one run (and, through serviceOf's fallback, its unlabeled descendants). */
export function serviceMetadata(name: string): { LANGSMITH_SERVICE: string } {
  return { [SERVICE_METADATA_KEY]: name } as { LANGSMITH_SERVICE: string };
}

/** What a Client will stamp as LANGSMITH_SERVICE: the value cached when it was constructed. */
function cachedService(client: Client): string | undefined {
  const cache = (client as unknown as { cachedLSEnvVarsForMetadata?: Record<string, string> }).cachedLSEnvVarsForMetadata;
  return cache?.[SERVICE_METADATA_KEY];
}

/** This process's service name (LANGSMITH_SERVICE), if set. */
export function serviceName(): string | undefined {
  return process.env[SERVICE_METADATA_KEY] || undefined;
}

/**
 * Names the service this process represents by setting LANGSMITH_SERVICE. Call it before the first
 * traced call: every langsmith Client caches LANGSMITH_* variables when it is constructed, so a
 * client created earlier keeps stamping the old value (or none). When the SDK's shared client
 * already exists with a different value this throws instead of silently doing nothing; clients
 * you constructed yourself, and LangChain's own default client, cannot be inspected.
 * Calling it again with the same name is a no-op.
 */
export function setServiceName(name: string): void {
  const trimmed = name.trim();
  if (!trimmed) throw new Error("setServiceName: the service name must not be empty");
  for (const client of existingSharedClients()) {
    const cached = cachedService(client);
    if (cached !== trimmed) {
      throw new Error(
        `setServiceName(${JSON.stringify(trimmed)}) came too late: the langsmith SDK's shared Client was created ` +
          `earlier and caches LANGSMITH_* variables at construction, so its runs carry ` +
          `${cached === undefined ? "no LANGSMITH_SERVICE" : `LANGSMITH_SERVICE=${JSON.stringify(cached)}`}. ` +
          `Call setServiceName before the first traced call (restart the kernel in a notebook), or label runs ` +
          `individually with metadata: serviceMetadata(${JSON.stringify(trimmed)}).`,
      );
    }
  }
  process.env[SERVICE_METADATA_KEY] = trimmed;
}

/**
 * Metadata key where the trace server's OTLP ingest puts a span's `service.name` resource
 * attribute; it names the service when LANGSMITH_SERVICE does not. OpenTelemetry's default,
 * `unknown_service:<process>`, names none.
 */
export const OTEL_SERVICE_METADATA_KEY = "service.name";

/** The service a run names itself (LANGSMITH_SERVICE, else an OpenTelemetry `service.name`), ignoring ancestors. */
export function ownServiceOf(run: Pick<TraceRun, "extra">): string | undefined {
  const metadata = run.extra?.["metadata"];
  if (metadata && typeof metadata === "object") {
    const value = (metadata as Record<string, unknown>)[SERVICE_METADATA_KEY];
    if (typeof value === "string" && value) return value;
    const otel = (metadata as Record<string, unknown>)[OTEL_SERVICE_METADATA_KEY];
    if (typeof otel === "string" && otel && !otel.startsWith("unknown_service")) return otel;
  }
  return undefined;
}

type RunIndex = ReadonlyMap<string, TraceRun>;

function toIndex(runs: Iterable<TraceRun> | RunIndex | undefined): RunIndex {
  if (!runs) return new Map();
  if (runs instanceof Map) return runs as RunIndex;
  const index = new Map<string, TraceRun>();
  for (const run of runs as Iterable<TraceRun>) index.set(run.id, run);
  return index;
}

/**
 * The service that emitted `run`: its own (ownServiceOf), else the nearest ancestor's (looked up
 * in `runs`), else undefined.
 */
export function serviceOf(run: TraceRun, runs?: Iterable<TraceRun> | RunIndex): string | undefined {
  const index = toIndex(runs);
  const seen = new Set<string>();
  let current: TraceRun | undefined = run;
  while (current && !seen.has(current.id)) {
    const own = ownServiceOf(current);
    if (own) return own;
    seen.add(current.id);
    current = current.parent_run_id ? index.get(current.parent_run_id) : undefined;
  }
  return undefined;
}
