/**
 * The tracing configuration of every service in this example, in one place:
 * the sampling policy (one decision per request, made at the edge and followed
 * downstream), and one LangSmith Client that redacts secrets before anything
 * leaves the process, counts its uploads for Prometheus, saves the batches it
 * gives up on (LANGSMITH_FAILED_TRACES_DIR) and replays them in the background.
 *
 *   const metrics = createMetrics("assistant");
 *   const tracing = createTracing({ metrics });
 *   app.use(langsmithTracing({ trust: "edge", sampling: tracing.sampler }));   // the sampler's client writes every run
 *   installShutdown({ timeoutMs: 10_000, drain: [server, tracing.replay], client: tracing.client });
 *
 * Environment: the SDK's own variables (LANGSMITH_ENDPOINT, LANGSMITH_API_KEY,
 * LANGSMITH_PROJECT, LANGSMITH_FAILED_TRACES_DIR), plus TRACE_SAMPLE_RATE (the
 * share of requests traced, 0 to 1, default 1; only the edge's counts), TRACE_SLOW_MS (a
 * request slower than this is kept; unset: no slow rule), TRACE_TAIL=off (requests not
 * sampled in are dropped rather than held for the tail decision), TRACE_UPLOAD_RETRIES
 * (SDK default 4) and TRACE_REPLAY_INTERVAL_MS (default 30000; 0 turns the
 * background replay off).
 *
 * LANGSMITH_TRACING itself is taken over by the sampler (the kit's sampling.ts,
 * "The tracing switch"): the adapters turn tracing on per request, so a
 * sampled-out request makes no run at all, LangChain's streamed model calls
 * included, and a kept one traces everything.
 */
import type { Client } from "langsmith";
import type { StringNodeRule } from "langsmith/anonymizer";
import { REDACTION_RULES, createRedactor, createSampler, redactRunFields, replayFailedTraces, type Drainable, type Sampler } from "@tracing-patterns/kit";
import { countingFetch } from "./export-counter.js";
import type { ServiceMetrics } from "./metrics.js";

export interface Tracing {
  client: Client;
  /** For the adapter's `sampling` option; its decisions and tail buffer are in metrics. */
  sampler: Sampler;
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
  const redact = createRedactor({ rules: RULES });
  const slowMs = numberFromEnv("TRACE_SLOW_MS");
  // The sampler owns the client (it holds tail traces' runs until the decision); the settings are ours.
  const sampler = createSampler({
    rate: rateFromEnv("TRACE_SAMPLE_RATE"),
    // Requests not sampled in are held and kept if they fail (always) or are slower than
    // TRACE_SLOW_MS; TRACE_TAIL=off drops them instead (pass-through, the cheapest).
    ...(process.env.TRACE_TAIL === "off" ? {} : { tail: slowMs === undefined ? {} : { slowMs } }),
    clientConfig: {
      // Inputs, outputs, metadata and errors; redactRunFields below adds events and tags.
      anonymizer: redact,
      fetchImplementation: countingFetch((upload) => metrics.recordUpload(upload)),
      ...(retries === undefined ? {} : { callerOptions: { maxRetries: retries } }),
    },
  });
  // Every run this client sends is redacted, LangChain's included (examples/kit/redact.ts); the
  // SDK drops the text of `new_token` events itself.
  const client = redactRunFields(sampler.client, redact);
  metrics.queuedBytes(() => queuedBytes(client));
  metrics.watchSampler(sampler);

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
  return { client, sampler, replayNow, replay };
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

function rateFromEnv(name: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return 1;
  const rate = Number(raw);
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new Error(`${name} must be a number from 0 to 1 (the share of requests traced), got ${JSON.stringify(raw)}`);
  return rate;
}
