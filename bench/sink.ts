import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** One request body exactly as the SDK sent it. */
export interface CapturedRequest {
  path: string;
  contentType: string;
  contentEncoding: string | undefined;
  body: Buffer;
}

export interface SinkOptions {
  /** The trace server's `/info` answer, so the SDK makes the same choices (multipart, zstd, batch sizes) as against it. */
  info: unknown;
  /** Forward every request here and answer with its response; without it, ingest is acknowledged unread. */
  upstream?: string;
  /** Keep the bodies of ingest requests. */
  capture?: boolean;
}

export interface Sink {
  url: string;
  captured: CapturedRequest[];
  close(): Promise<void>;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * An HTTP endpoint for the SDK that either records what it sends on the way
 * to the trace server (capture) or accepts it at no cost (null sink, to
 * measure the SDK's own emit rate without a server's pace on it).
 */
export async function startSink(opts: SinkOptions): Promise<Sink> {
  const captured: CapturedRequest[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    readAll(req)
      .then(async (body) => {
        if (req.method === "GET" && (path === "/info" || path === "/api/v1/info")) {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(opts.info));
          return;
        }
        const contentType = req.headers["content-type"] ?? "";
        if (opts.capture && req.method === "POST" && path.startsWith("/runs")) {
          captured.push({ path, contentType, contentEncoding: req.headers["content-encoding"], body });
        }
        if (opts.upstream === undefined) {
          res.writeHead(202, { "content-type": "application/json" }).end("{}");
          return;
        }
        const headers: Record<string, string> = { "content-type": contentType };
        if (req.headers["content-encoding"]) headers["content-encoding"] = req.headers["content-encoding"];
        const up = await fetch(`${opts.upstream}${req.url ?? "/"}`, {
          method: req.method ?? "GET",
          headers,
          ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: new Uint8Array(body) }),
        });
        const answer = Buffer.from(await up.arrayBuffer());
        res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/json" }).end(answer);
      })
      .catch((e: unknown) => {
        res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ detail: String(e) }));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    captured,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
