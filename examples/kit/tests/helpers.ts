// Shared test plumbing: a traced express app on loopback, a raw HTTP/1.1 client
// (fetch refuses duplicate or non-ASCII headers, which is what the corpus sends)
// and a way to wait for the middleware to hand its runs to the SDK.
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import type { Express } from "express";
import { convertToDottedOrderFormat } from "langsmith/run_trees";

export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Node rejects request heads over 16 KiB with 431 before express runs; the
 * limit is raised so the oversized cases reach the middleware, which is the
 * code under test.
 */
export async function listen(app: Express, maxHeaderSize = 4 * 1024 * 1024): Promise<Listening> {
  const server = http.createServer({ maxHeaderSize }, app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends header lines exactly as given (duplicates, raw latin1 bytes) and reads the whole response. */
export function rawRequest(port: number, path: string, headers: ReadonlyArray<readonly [string, string]>): Promise<RawResponse> {
  const head =
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join("") +
    "\r\n";
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      const [statusLine = "", ...lines] = text.slice(0, split).split("\r\n");
      const parsed: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers: parsed, body: text.slice(split + 4) });
    });
    socket.end(Buffer.from(head, "latin1"));
  });
}

/** A valid dotted-order segment for a run id, as the SDK writes it. */
export function segment(id: string = randomUUID(), epoch = Date.UTC(2025, 0, 2, 3, 4, 5, 678)): string {
  return convertToDottedOrderFormat(epoch, id).dottedOrder;
}

/** Resolves when `count` calls to the returned callback have happened. */
export function countdown<T>(count: number): { tick: (value: T) => void; done: Promise<T[]> } {
  const seen: T[] = [];
  let release: (values: T[]) => void = () => undefined;
  const done = new Promise<T[]>((resolve) => {
    release = resolve;
  });
  return {
    tick(value: T) {
      seen.push(value);
      if (seen.length === count) release(seen);
    },
    done,
  };
}

/**
 * Removes the developer's LANGSMITH_* / LANGCHAIN_* settings from this process:
 * LANGSMITH_RUNS_ENDPOINTS alone would copy every test run to another server.
 */
export function isolateFromLangSmithEnv(): void {
  for (const key of Object.keys(process.env)) if (key.startsWith("LANGSMITH_") || key.startsWith("LANGCHAIN_")) delete process.env[key];
}
