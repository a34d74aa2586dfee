// A raw HTTP/1.1 exchange over a TCP socket, for the hostile-input campaign: header lines go out
// exactly as given (duplicates, control characters, raw latin1 or UTF-8 bytes, which fetch and
// http.request refuse to send), and the whole answer is read back. Use:
//   const answer = await exchange(port, { method: "POST", path: "/runs", headers: [["content-type", "application/json"]], body });
//   // { kind: "answered", status, headers, body } | { kind: "no-answer", error }
import net from "node:net";
import type { Verdict } from "./runner.js";

export interface RawRequest {
  method: string;
  path: string;
  /**
   * Header lines in order; a name may repeat. Host is added unless given. No Connection header is
   * added: like fetch, the client keeps the connection alive and closes it once it has the answer.
   */
  headers: ReadonlyArray<readonly [string, string]>;
  body?: Buffer;
  /** How header values become bytes: "latin1" (one byte per code unit) or "utf8". Default utf8. */
  headerEncoding?: "latin1" | "utf8";
  /** Add a Content-Length for the body (default true when there is a body). */
  contentLength?: boolean;
}

export type Answer =
  | { kind: "answered"; status: number; headers: Record<string, string>; body: Buffer }
  | { kind: "no-answer"; error: string };

/** Sends one request on a fresh connection and reads the answer until the server closes it or `timeoutMs` passes. */
export function exchange(port: number, request: RawRequest, timeoutMs = 30_000): Promise<Answer> {
  const names = new Set(request.headers.map(([n]) => n.toLowerCase()));
  const lines: string[] = [`${request.method} ${request.path} HTTP/1.1`];
  if (!names.has("host")) lines.push(`Host: 127.0.0.1:${port}`);
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  if (request.body !== undefined && (request.contentLength ?? true) && !names.has("content-length")) lines.push(`Content-Length: ${request.body.length}`);
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, request.headerEncoding ?? "utf8");

  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseAnswer(Buffer.concat(chunks));
      resolve(parsed ?? { kind: "no-answer", error: error ?? "connection closed without an answer" });
    };
    const timer = setTimeout(() => finish(`no complete answer within ${timeoutMs} ms`), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      // Stop as soon as the answer is complete: some refusals keep the socket open for the unread body.
      if (parseAnswer(Buffer.concat(chunks)) !== undefined) finish();
    });
    // A server that refuses early (413, 431) may close while the body is still being written: the
    // answer it sent is still read, and only its absence is a failure.
    socket.on("error", (err) => finish(err.message));
    socket.on("close", () => finish());
    socket.write(head);
    void writeBody(socket, request.body ?? Buffer.alloc(0), () => chunks.length > 0 || settled);
  });
}

/**
 * Writes the body in slices, as HTTP clients do, and stops once the server has begun to answer: a
 * server that refuses early closes the connection, and a client still writing then gets EPIPE
 * instead of the answer that is already on its way.
 */
async function writeBody(socket: net.Socket, body: Buffer, answered: () => boolean): Promise<void> {
  const slice = 64 * 1024;
  for (let at = 0; at < body.length && !answered(); at += slice) {
    if (!socket.write(body.subarray(at, at + slice))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
}

/** A complete answer in `data`, or undefined while more is needed. */
function parseAnswer(data: Buffer): Extract<Answer, { kind: "answered" }> | undefined {
  const split = data.indexOf("\r\n\r\n");
  if (split < 0) return undefined;
  const [statusLine = "", ...lines] = data.subarray(0, split).toString("latin1").split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  if (!Number.isInteger(status)) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = data.subarray(split + 4);
  if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    return rest.length >= length ? { kind: "answered", status, headers, body: rest.subarray(0, length) } : undefined;
  }
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const body = dechunk(rest);
    return body === undefined ? undefined : { kind: "answered", status, headers, body };
  }
  // Neither: the body runs to the end of the connection, and node sends none for its own refusals.
  return { kind: "answered", status, headers, body: rest };
}

function dechunk(data: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = parseInt(data.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Buffer.concat(out);
    if (data.length < eol + 2 + size + 2) return undefined;
    out.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * "node 400" or "node 431" when the answer is node's own HTTP parser refusing the request head
 * (a malformed line, a control character in a header, a head over its limit) before any
 * application code ran: those answers have no body and no content type.
 */
export function nodeRefusal(answer: Extract<Answer, { kind: "answered" }>): string | undefined {
  const bare = answer.body.length === 0 && answer.headers["content-type"] === undefined;
  return bare && (answer.status === 400 || answer.status === 431) ? `node ${answer.status}` : undefined;
}

/**
 * "node 431 (reset while sending)" or "node 400 (reset while sending)" when a request that got no
 * answer has a head node refuses by itself: over `maxHeaderBytes` (node's `maxHeaderSize`), or
 * with a control byte. Node answers those 431 or 400 and closes at once, so a client still
 * writing may get the reset before the answer: that is node's refusal, not the application's.
 */
export function nodeResetBucket(request: RawRequest, maxHeaderBytes: number): string | undefined {
  const encoding = request.headerEncoding ?? "utf8";
  const lines = [`${request.method} ${request.path} HTTP/1.1`, ...request.headers.map(([name, value]) => `${name}: ${value}`)];
  const bytes = lines.map((line) => Buffer.from(line, encoding));
  if (bytes.reduce((n, b) => n + b.length + 2, 0) > maxHeaderBytes) return "node 431 (reset while sending)";
  if (bytes.some((b) => b.some((byte) => (byte < 0x20 && byte !== 0x09) || byte === 0x7f))) return "node 400 (reset while sending)";
  return undefined;
}

/**
 * Sends the request and returns the application's answer, or the verdict when there is none to
 * judge: no answer at all (a violation, unless node reset a head it refuses by itself) or node's
 * own refusal of the request head.
 */
export async function applicationAnswer(port: number, request: RawRequest, maxHeaderBytes: number): Promise<Extract<Answer, { kind: "answered" }> | Verdict> {
  const answer = await exchange(port, request);
  if (answer.kind === "no-answer") {
    const reset = nodeResetBucket(request, maxHeaderBytes);
    return reset === undefined ? { bucket: "no answer", violation: `no answer: ${answer.error}` } : { bucket: reset };
  }
  const refused = nodeRefusal(answer);
  return refused === undefined ? answer : { bucket: refused };
}

