/**
 * The tracing configuration of every service in this example, in one place:
 * one LangSmith Client that redacts secrets before anything leaves the
 * process, counts its uploads for Prometheus, saves the batches it gives up on
 * (LANGSMITH_FAILED_TRACES_DIR) and replays them in the background.
 *
 *   const metrics = createMetrics("assistant");
 *   const tracing = createTracing({ metrics });
 *   app.use(langsmithTracing({ trust: "edge", client: tracing.client }));   // every run of the request uses this client
 *   installShutdown({ timeoutMs: 10_000, drain: [server, tracing.replay], client: tracing.client });
 *
 * Environment: the SDK's own variables (LANGSMITH_ENDPOINT, LANGSMITH_API_KEY,
 * LANGSMITH_PROJECT, LANGSMITH_FAILED_TRACES_DIR), plus TRACE_UPLOAD_RETRIES
 * (SDK default 4) and TRACE_REPLAY_INTERVAL_MS (default 30000; 0 turns the
 * background replay off).
 */
import type { Client } from "langsmith";
import type { StringNodeRule } from "langsmith/anonymizer";
import { REDACTION_RULES, redactingClient, replayFailedTraces, type Drainable } from "@tracing-patterns/kit";
import { countingFetch } from "./export-counter.js";
import type { ServiceMetrics } from "./metrics.js";

export interface Tracing {
  client: Client;
  /** One replay pass now (the background loop calls the same). Resolves with what it sent. */
  replayNow(): Promise<{ replayed: number; failed: number }>;
  /** The background replay, for installShutdown's `drain`: stops the loop and waits for a pass in progress. */
  replay: Drainable;
}

/**
 * The kit's rules (emails, the SDK's secret rules for provider keys, bearer
 * credentials, private keys and `password=`-style assignments, long opaque
 * keys), plus this service's own session-token format, which is all lower case
 * and so not caught by the opaque-key rule.
 */
export const RULES: readonly StringNodeRule[] = [...REDACTION_RULES, { pattern: /\btok_[a-z0-9]{16,}\b/g, replace: "[token]" }];

export function createTracing({ metrics }: { metrics: ServiceMetrics }): Tracing {
  const retries = numberFromEnv("TRACE_UPLOAD_RETRIES");
  // Redacts inputs, outputs, metadata, errors, events and tags of every run this client sends,
  // LangChain's included (examples/kit/redact.ts); the SDK drops the text of `new_token` events itself.
  const client = redactingClient(
    {
      fetchImplementation: countingFetch((upload) => metrics.recordUpload(upload)),
      ...(retries === undefined ? {} : { callerOptions: { maxRetries: retries } }),
    },
    { rules: RULES },
  );
  metrics.queuedBytes(() => queuedBytes(client));

  const dir = process.env.LANGSMITH_FAILED_TRACES_DIR;
  let running: Promise<{ replayed: number; failed: number }> | undefined;
  const replayNow = (): Promise<{ replayed: number; failed: number }> => {
    if (!dir) return Promise.resolve({ replayed: 0, failed: 0 });
    // One pass at a time: two would send the same file twice (harmless, the backend upserts, but wasted).
    // Endpoint and key from the same environment the client read (LANGSMITH_ENDPOINT, LANGSMITH_API_KEY).
    running ??= replayFailedTraces({ dir })
      .then(
        (result) => {
          const counts = { replayed: result.replayed.length, failed: result.failed.length };
          metrics.recordReplay(counts);
          if (counts.replayed > 0) console.log(`[replay] ${counts.replayed} saved batch(es) delivered`);
          return counts;
        },
        (error: unknown) => {
          console.warn(`[replay] ${error instanceof Error ? error.message : String(error)}`);
          return { replayed: 0, failed: 0 };
        },
      )
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const interval = numberFromEnv("TRACE_REPLAY_INTERVAL_MS") ?? 30_000;
  const timer = dir && interval > 0 ? setInterval(() => void replayNow(), interval) : undefined;
  // The loop must not keep a stopping process alive.
  timer?.unref();
  const replay: Drainable = {
    describe: () => "stopping the replay of saved batches",
    async drain(timeoutMs) {
      clearInterval(timer);
      if (!running) return true;
      let deadline: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        running.then(() => true),
        new Promise<false>((resolve) => {
          deadline = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(deadline);
      return finished;
    },
    outcome: (drained) => (drained ? "replay stopped" : "replay pass cut off (its files stay for the next start)"),
  };
  return { client, replayNow, replay };
}

/** The SDK's own estimate of what it has not sent yet; a private field, so undefined if a release renames it. */
function queuedBytes(client: Client): number | undefined {
  const queued = (client as unknown as { autoBatchQueue?: { sizeBytes?: unknown } }).autoBatchQueue?.sizeBytes;
  return typeof queued === "number" ? queued : undefined;
}

function numberFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(raw)}`);
  return value;
}
