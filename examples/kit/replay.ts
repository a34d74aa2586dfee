/**
 * Sending again the uploads the SDK gave up on. With LANGSMITH_FAILED_TRACES_DIR
 * set, langsmith 0.12 saves each batch whose upload failed after its retries
 * there as a file; nothing in the SDK sends them later. This does:
 *
 *   const { replayed, failed, skipped } = await replayFailedTraces();   // LANGSMITH_FAILED_TRACES_DIR, the client's endpoint and key
 *   console.log(`${replayed.length} batches delivered, ${failed.length + skipped.length} kept for later`);
 *
 * Oldest first; each file the backend accepts is deleted, the others are kept.
 * It stops at the first connection failure (the backend is still down) and
 * keeps the remaining files. LangSmith, and the local trace server, upsert by
 * run id, so replaying a file twice stores nothing twice.
 */
import { readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { Client } from "langsmith";

export interface ReplayOptions {
  /** The SDK's fallback directory. Default: LANGSMITH_FAILED_TRACES_DIR. */
  dir?: string;
  /** Where to send. Default: what a Client would use (LANGSMITH_ENDPOINT, else LangSmith). */
  apiUrl?: string;
  /** Sent as x-api-key. Default: what a Client would use (LANGSMITH_API_KEY). */
  apiKey?: string;
  /** Per file. Default 30000. */
  timeoutMs?: number;
}

export interface ReplayFailure {
  file: string;
  /** HTTP status, when the backend answered. */
  status?: number;
  error: string;
}

export interface ReplayResult {
  /** Files the backend accepted (2xx); they were deleted. */
  replayed: string[];
  /** Files kept because they were refused or unreadable. */
  failed: ReplayFailure[];
  /** Files not tried because the backend was unreachable; they were kept. */
  skipped: string[];
}

/**
 * Sends the batches the SDK saved to LANGSMITH_FAILED_TRACES_DIR (the batches whose upload failed
 * after its retries) to the backend, oldest first, deleting each one the backend accepts. The
 * local trace server upserts by run id, so replaying a file twice stores nothing twice. Stops at
 * the first connection failure and keeps the remaining files.
 */
export async function replayFailedTraces(options: ReplayOptions = {}): Promise<ReplayResult> {
  const dir = options.dir ?? process.env.LANGSMITH_FAILED_TRACES_DIR;
  if (!dir) throw new Error("replayFailedTraces: no directory (pass dir or set LANGSMITH_FAILED_TRACES_DIR)");
  const defaults = Client.getDefaultClientConfig();
  const apiUrl = (options.apiUrl ?? defaults.apiUrl).replace(/\/+$/, "");
  const apiKey = options.apiKey ?? defaults.apiKey;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { replayed: [], failed: [], skipped: [] };
    throw error;
  }
  // The SDK writes trace_<epoch ms>_<random>.json atomically (through a .tmp file and a rename).
  const files = names.filter((n) => /^trace_\d+_[0-9a-f]+\.json$/.test(n)).sort();
  const result: ReplayResult = { replayed: [], failed: [], skipped: [] };
  for (const [index, file] of files.entries()) {
    const fullPath = path.join(dir, file);
    const envelope = parseEnvelope(await readFile(fullPath, "utf8"));
    if (typeof envelope === "string") {
      result.failed.push({ file, error: envelope });
      continue;
    }
    let response: Response;
    try {
      response = await fetch(`${apiUrl}/${envelope.endpoint}`, {
        method: "POST",
        headers: { ...envelope.headers, ...(apiKey ? { "x-api-key": apiKey } : {}) },
        body: Buffer.from(envelope.body_base64, "base64"),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      result.failed.push({ file, error: cause?.code ?? describe(error) });
      result.skipped.push(...files.slice(index + 1));
      break;
    }
    const body = await response.text();
    if (response.ok) {
      await unlink(fullPath);
      result.replayed.push(file);
    } else {
      result.failed.push({ file, status: response.status, error: body.slice(0, 500) });
    }
  }
  return result;
}

interface FailedTraceEnvelope {
  version: 1;
  endpoint: "runs/multipart";
  headers: Record<string, string>;
  body_base64: string;
}

function parseEnvelope(text: string): FailedTraceEnvelope | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  const v = value as Partial<Record<keyof FailedTraceEnvelope, unknown>> | null;
  if (typeof v !== "object" || v === null) return "not an object";
  if (v.version !== 1) return `unknown version ${JSON.stringify(v.version)}`;
  // The only endpoint langsmith 0.12 saves failed uploads for; anything else is not its file.
  if (v.endpoint !== "runs/multipart") return `unexpected endpoint ${JSON.stringify(v.endpoint)}`;
  if (typeof v.body_base64 !== "string") return "no body_base64";
  const headers = v.headers;
  if (typeof headers !== "object" || headers === null || Object.values(headers).some((h) => typeof h !== "string")) return "bad headers";
  return v as FailedTraceEnvelope;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
