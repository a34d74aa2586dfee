/**
 * Counting what the LangSmith SDK uploads, through the Client's one supported
 * hook for it: `fetchImplementation`. No SDK internals are patched.
 *
 *   const client = new Client({ fetchImplementation: countingFetch((upload) => metrics.record(upload)) });
 *
 * Every upload attempt is reported once, with its outcome (`ok`, `http_error`,
 * `network_error`), its size on the wire and the run operations it carried
 * (`creates`, `updates`), read from the multipart part names (`post.<run id>`,
 * `patch.<run id>`) after undoing the SDK's gzip or zstd compression. Retries
 * are separate attempts. Other calls (reads, /info) pass through uncounted.
 *
 * What a fetch hook cannot see: a batch the SDK gives up on after its retries.
 * With LANGSMITH_FAILED_TRACES_DIR set, that batch becomes a file there
 * (counted by metrics.ts as pending files), which replayFailedTraces resends.
 */
import { promisify } from "node:util";
import zlib from "node:zlib";

export type UploadOutcome = "ok" | "http_error" | "network_error";

export interface Upload {
  /** `runs/multipart` (the SDK's default), `runs/batch` (its JSON fallback) or `runs` (one run, without batching). */
  endpoint: "runs/multipart" | "runs/batch" | "runs";
  outcome: UploadOutcome;
  /** HTTP status when the backend answered. */
  status?: number;
  /** Bytes of the request body as sent (compressed when the SDK compressed it). */
  bytes: number;
  /** Run creations and run updates in the body. */
  creates: number;
  updates: number;
}

/** Wraps `base` (default: the global fetch) so each ingest request is reported to `onUpload` once settled. Never throws from the callback into the SDK. */
export function countingFetch(onUpload: (upload: Upload) => void, base: typeof fetch = globalThis.fetch): typeof fetch {
  return async (input, init) => {
    const method = (init?.method ?? "GET").toUpperCase();
    const endpoint = ingestEndpoint(input, method);
    if (endpoint === undefined || init === undefined) return base(input, init);
    const headers = new Headers(init.headers);
    const encoding = headers.get("content-encoding") ?? undefined;
    let body = init.body;
    let counted: Promise<Counted>;
    if (body instanceof ReadableStream) {
      // The SDK's streamed multipart upload: one branch goes to the network, the other is read here.
      const [sent, copy] = body.tee();
      body = sent;
      counted = countStream(copy, endpoint);
    } else {
      counted = countBuffered(body, endpoint, encoding, method);
    }
    const report = async (outcome: UploadOutcome, status?: number): Promise<void> => {
      const result = await counted.catch(() => ({ bytes: 0, creates: 0, updates: 0 }));
      try {
        onUpload({ endpoint, outcome, ...(status === undefined ? {} : { status }), ...result });
      } catch {
        // A metrics bug must not fail the upload.
      }
    };
    let response: Response;
    try {
      response = await base(input, { ...init, body });
    } catch (error) {
      void report("network_error");
      throw error;
    }
    void report(response.ok ? "ok" : "http_error", response.status);
    return response;
  };
}

interface Counted {
  bytes: number;
  creates: number;
  updates: number;
}

function ingestEndpoint(input: Parameters<typeof fetch>[0], method: string): Upload["endpoint"] | undefined {
  const url = input instanceof Request ? input.url : String(input);
  const { pathname } = new URL(url);
  if (method === "POST" && pathname.endsWith("/runs/multipart")) return "runs/multipart";
  if (method === "POST" && pathname.endsWith("/runs/batch")) return "runs/batch";
  if ((method === "POST" && pathname.endsWith("/runs")) || (method === "PATCH" && /\/runs\/[0-9a-f-]{36}$/.test(pathname))) return "runs";
  return undefined;
}

// A run's main part; its inputs, outputs and events are parts named `post.<id>.inputs` and so on.
const RUN_PART = /name="(post|patch)\.[0-9a-f-]{36}"/g;
const gunzip = promisify(zlib.gunzip);

async function countBuffered(body: RequestInit["body"], endpoint: Upload["endpoint"], encoding: string | undefined, method: string): Promise<Counted> {
  const bytes = await toBuffer(body);
  if (bytes === undefined) return { bytes: 0, creates: 0, updates: 0 };
  if (endpoint === "runs") return { bytes: bytes.byteLength, creates: method === "POST" ? 1 : 0, updates: method === "PATCH" ? 1 : 0 };
  let plain = bytes;
  if (encoding === "gzip") plain = await gunzip(bytes);
  else if (encoding === "zstd") plain = await promisify(zlib.zstdDecompress)(bytes);
  return { bytes: bytes.byteLength, ...countOps(plain.toString("latin1"), endpoint) };
}

async function countStream(stream: ReadableStream<Uint8Array>, endpoint: Upload["endpoint"]): Promise<Counted> {
  let bytes = 0;
  let creates = 0;
  let updates = 0;
  // A part name can straddle two chunks: keep the end of the previous one.
  let carry = "";
  const reader = stream.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    const chunk = next.value;
    bytes += chunk.byteLength;
    const text = carry + Buffer.from(chunk).toString("latin1");
    const ops = countOps(text, endpoint);
    creates += ops.creates;
    updates += ops.updates;
    const lastMatchEnd = lastIndexAfter(text);
    carry = text.slice(Math.max(lastMatchEnd, text.length - 64));
  }
  return { bytes, creates, updates };
}

function lastIndexAfter(text: string): number {
  let end = 0;
  for (const match of text.matchAll(RUN_PART)) end = match.index + match[0].length;
  return end;
}

function countOps(text: string, endpoint: Upload["endpoint"]): { creates: number; updates: number } {
  if (endpoint === "runs/multipart") {
    let creates = 0;
    let updates = 0;
    for (const match of text.matchAll(RUN_PART)) {
      if (match[1] === "post") creates++;
      else updates++;
    }
    return { creates, updates };
  }
  try {
    const parsed = JSON.parse(text) as { post?: unknown[]; patch?: unknown[] } | null;
    return { creates: parsed?.post?.length ?? 0, updates: parsed?.patch?.length ?? 0 };
  } catch {
    return { creates: 0, updates: 0 };
  }
}

async function toBuffer(body: RequestInit["body"]): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof Blob) return Buffer.from(await body.arrayBuffer());
  return undefined;
}
