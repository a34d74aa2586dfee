import type { IncomingMessage } from "node:http";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import zlib from "node:zlib";

/** An error that maps to an HTTP status with a `{ detail }` body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** Response headers to send with the error. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

class ByteLimit extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      cb(new HttpError(413, `${this.what} exceeds the limit of ${this.limit} bytes`));
      return;
    }
    cb(null, chunk);
  }
}

export type Encoding = "identity" | "gzip" | "deflate" | "br" | "zstd";

/**
 * Output chunk of the decompressors. zlib's default (16 KB) turns an SDK
 * batch of ~150 KB into ten thread-pool round trips and stream events; at
 * 256 KB it is one or two, which cut the trace server's CPU per ingested run
 * by about a fifth (docs/performance.md).
 */
const DECODE_CHUNK_BYTES = 256 * 1024;

function decoderFor(encoding: Encoding): Transform | undefined {
  const opts = { chunkSize: DECODE_CHUNK_BYTES };
  switch (encoding) {
    case "identity":
      return undefined;
    case "gzip":
      return zlib.createGunzip(opts);
    case "deflate":
      return zlib.createInflate(opts);
    case "br":
      return zlib.createBrotliDecompress(opts);
    case "zstd":
      return zlib.createZstdDecompress(opts);
  }
}

export function requestEncoding(req: IncomingMessage): Encoding {
  const raw = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  if (raw === "" || raw === "identity") return "identity";
  if (raw === "gzip" || raw === "x-gzip") return "gzip";
  if (raw === "deflate" || raw === "br" || raw === "zstd") return raw;
  throw new HttpError(415, `unsupported Content-Encoding ${JSON.stringify(raw)}; use gzip, zstd, deflate, br or none`);
}

export interface OpenedBody {
  /** The decoded body; errors with HttpError 413 beyond the limit and 400 on corrupt compression. */
  stream: Readable;
  encoding: Encoding;
  /** Stop reading: detach from the request and discard the rest, so a response can still be sent. */
  release(): void;
}

/**
 * Stream a request body, decompressed per Content-Encoding, with the size
 * limit enforced on the compressed and on the decompressed bytes, so a
 * compression bomb is cut off at the limit instead of filling memory.
 *
 * The request is piped, never passed to `pipeline`: on an error the socket
 * must stay open for the 4xx response.
 */
export function openBody(req: IncomingMessage, limit: number): OpenedBody {
  const encoding = requestEncoding(req);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
  const raw = new ByteLimit(limit, "request body");
  const decoder = decoderFor(encoding);
  const out = decoder ? new ByteLimit(limit, `decompressed (${encoding}) request body`) : raw;
  const fail = (err: unknown): void => {
    if (!out.destroyed) out.destroy(err instanceof HttpError ? err : new HttpError(400, `could not read the ${encoding} request body: ${(err as Error).message}`));
  };
  req.on("error", fail);
  req.on("aborted", () => fail(new HttpError(400, "request aborted by the client")));
  req.pipe(raw);
  if (decoder) {
    raw.on("error", fail);
    decoder.on("error", fail);
    raw.pipe(decoder).pipe(out);
  }
  return {
    stream: out,
    encoding,
    release() {
      req.unpipe(raw);
      raw.destroy();
      decoder?.destroy();
      if (!req.complete) req.resume();
    },
  };
}

/**
 * Whether the connection of a refused request must close after the answer. The rest of a body
 * whose declared length is within the limit is read and dropped instead (readBody's release
 * resumes it; node drains a body nobody read), so a client still sending it gets the answer and
 * the connection carries its next request. Closing while the client writes makes its kernel
 * discard the answer on the reset: the client sees EPIPE or ECONNRESET instead of the 4xx, and the
 * SDK retries a network error that it would not retry as a 4xx. A body over the limit, or of
 * undeclared length, is not read to its end: that connection closes.
 */
export function closeAfterRefusal(req: IncomingMessage, limit: number): boolean {
  if (req.complete) return false;
  const header = req.headers["content-length"];
  const declared = header === undefined ? Number.NaN : Number(header);
  return !(Number.isSafeInteger(declared) && declared <= limit);
}

/** Read a whole (decoded, bounded) body. */
export async function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer; encoding: Encoding }> {
  const opened = openBody(req, limit);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
    return { body: Buffer.concat(chunks), encoding: opened.encoding };
  } finally {
    opened.release();
  }
}

export async function readJson(req: IncomingMessage, limit: number): Promise<{ value: unknown; encoding: Encoding }> {
  const { body, encoding } = await readBody(req, limit);
  if (body.length === 0) throw new HttpError(400, "request body is empty; expected JSON");
  try {
    return { value: JSON.parse(body.toString("utf8")) as unknown, encoding };
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
}
