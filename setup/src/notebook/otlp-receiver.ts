/**
 * A small OTLP/HTTP receiver for notebooks and tests: it stands in for a second tracing backend
 * (Jaeger, Tempo, an APM's agent) and records what each exporter really sent: the request headers,
 * the bytes on the wire and the spans, decoded with the trace server's OTLP decoder.
 *
 *   const apm = await startOtlpReceiver();                     // answers POST /v1/traces itself
 *   // OTEL exporter url: `${apm.url}/v1/traces`
 *   apm.spans.length, apm.requests[0].headers["x-api-key"], apm.bytes()
 *   const meter = await startOtlpReceiver({ forwardTo: traceServerUrl }); // records, then forwards
 *   await apm.close();
 *
 * With `forwardTo` every request (any path: native run batches too) is passed on unchanged and the
 * target's answer returned, so the receiver measures what a client sends without changing it.
 * Bodies are kept only as counts and decoded spans; a body that is not OTLP is counted, not decoded.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { decodeExportRequest, otlpFormat, responseType, type OtlpSpan } from "../trace-server/otlp/decode.js";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Body bytes as sent (compressed when the client compressed). */
  bytes: number;
  /** Spans decoded from an OTLP trace export; 0 for anything else. */
  spans: number;
}

export interface OtlpReceiver {
  url: string;
  requests: RecordedRequest[];
  spans: OtlpSpan[];
  /** Body bytes received, in total or for the paths that match. */
  bytes(pathPattern?: RegExp): number;
  /** Forget what was recorded (between measurements). */
  reset(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(options: { forwardTo?: string } = {}): Promise<OtlpReceiver> {
  const requests: RecordedRequest[] = [];
  const spans: OtlpSpan[] = [];
  const target = options.forwardTo?.replace(/\/$/, "");
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      const recorded: RecordedRequest = { method: req.method ?? "GET", path, headers: req.headers, bytes: body.length, spans: 0 };
      requests.push(recorded);
      if (req.method === "POST" && path.endsWith("/v1/traces")) {
        try {
          const plain = req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body;
          const decoded = decodeExportRequest(plain, otlpFormat(req.headers["content-type"]));
          spans.push(...decoded.spans);
          recorded.spans = decoded.spans.length;
        } catch {
          // Not decodable: still counted above; the forwarded target (if any) answers for it.
        }
      }
      if (target) {
        forward(`${target}${req.url ?? "/"}`, req.method ?? "GET", req.headers, body).then(
          (answer) => {
            res.writeHead(answer.status, answer.headers);
            res.end(answer.body);
          },
          (error: unknown) => {
            res.writeHead(502, { "content-type": "text/plain" });
            res.end(`forwarding failed: ${(error as Error).message}`);
          },
        );
        return;
      }
      const json = (req.headers["content-type"] ?? "").includes("json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : Buffer.from(responseType.encode(responseType.fromObject({})).finish()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans,
    bytes: (pathPattern) => requests.filter((r) => !pathPattern || pathPattern.test(r.path)).reduce((sum, r) => sum + r.bytes, 0),
    reset: () => {
      requests.length = 0;
      spans.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Passes a request on as it came (minus the hop-by-hop headers) and returns the answer. */
async function forward(url: string, method: string, headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const outgoing = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || ["host", "connection", "content-length", "transfer-encoding", "keep-alive"].includes(name)) continue;
    outgoing.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const response = await fetch(url, { method, headers: outgoing, body: method === "GET" || method === "HEAD" ? undefined : new Uint8Array(body) });
  const answer = Buffer.from(await response.arrayBuffer());
  const answerHeaders: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(name)) answerHeaders[name] = value;
  });
  return { status: response.status, headers: answerHeaders, body: answer };
}
