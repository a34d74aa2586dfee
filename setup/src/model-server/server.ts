import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { allowedHostsFor, browserRequestRefusal } from "../http-guard.js";
import { FAULT_HEADER, FaultBook, MAX_DELAY_MS, MAX_RETRY_AFTER_SECONDS, checkDelay, parseDirectives, parseFault, type Fault, type RequestPlan } from "./faults.js";
import { renderChatCompletion, type Rendered } from "./chat-completions.js";
import { ReplyTooLargeError, respond, type Reply } from "./responder.js";
import { parseResponsesRequest, renderResponse } from "./responses-api.js";
import { FillBudget, SchemaTooLargeError } from "./schema-fill.js";
import { MAX_BODY_NESTING, nestsDeeperThan, validateChatRequest, type InvalidRequest } from "./validate.js";
import type { ChatCompletionRequest, OpenAIErrorBody } from "./wire.js";

export type { Fault } from "./faults.js";

export interface ModelServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Port; default 1985, 0 picks a free one. */
  port?: number;
  /** Added before the first byte of every completion; default 0. */
  latencyMs?: number;
  /** Pause between streamed chunks; default 0. */
  tokenDelayMs?: number;
  /** Largest accepted request body; default 8 MiB. */
  maxBodyBytes?: number;
  /** Receives one line per request (method, path, status, what was answered). */
  log?: (line: string) => void;
}

export interface ModelServerStats {
  /** Every request to a completion route, including failed and faulted ones. */
  requests: number;
  /** Completions answered successfully (streamed or not). */
  completions: number;
  streamed: number;
  /** Completions whose reply was a tool call. */
  toolCalls: number;
  /** Requests answered with an injected failure (status, hang or drop). */
  faults: number;
  /** Requests rejected as malformed (4xx not caused by a fault). */
  badRequests: number;
  /** Queued faults not yet consumed. */
  pendingFaults: number;
  /** Streamed replies paused until their client reads what was already sent (backpressure). */
  streamsWaiting: number;
  /** The last completion request body as received, for inspecting what a client sent. */
  lastRequest?: unknown;
}

export interface ModelServerHandle {
  /** Base URL including /v1, ready for ChatOpenAI `configuration.baseURL`. */
  url: string;
  port: number;
  close(): Promise<void>;
  /** Queues a failure for the next `fault.times` (default 1) completion requests. */
  inject(fault: Fault): void;
  clearFaults(): void;
  stats(): ModelServerStats;
}

const DEFAULT_PORT = 1985;
const DEFAULT_MAX_BODY = 8 * 1024 * 1024;
const MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "local-model"];

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: InvalidRequest & { type?: string },
  ) {
    super(detail.message);
  }
}

function errorBody(message: string, type: string, param: string | null, code: string | null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

/** True once the response's buffer drained, false if the client went away first. */
function drainedOrClosed(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (drained: boolean) => (): void => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(drained);
    };
    const onDrain = settle(true);
    const onClose = settle(false);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

function countOf(items: Iterable<unknown>): number {
  let count = 0;
  for (const _item of items) count += 1;
  return count;
}

/** Resolves once `text` reached the socket, or at once if the client is gone (a destroyed response never calls back). */
function flushed(res: ServerResponse, text: string): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    res.once("close", resolve);
    res.write(text, () => {
      res.off("close", resolve);
      resolve();
    });
  });
}

export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  checkDelay(opts.latencyMs ?? 0, "latencyMs");
  checkDelay(opts.tokenDelayMs ?? 0, "tokenDelayMs");
  const allowedHosts = allowedHostsFor(host);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.log ?? (() => {});
  const faults = new FaultBook();
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  const counters: Omit<ModelServerStats, "pendingFaults" | "streamsWaiting" | "lastRequest"> = {
    requests: 0,
    completions: 0,
    streamed: 0,
    toolCalls: 0,
    faults: 0,
    badRequests: 0,
  };
  let lastRequest: unknown;
  /** Streams waiting for their client to read before they write more. */
  let streamsWaiting = 0;

  const pause = async (ms: number, res: ServerResponse): Promise<boolean> => {
    if (ms > 0) {
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.on("close", onClose);
      try {
        await sleep(ms, undefined, { signal: AbortSignal.any([gone.signal, closing.signal]) });
      } catch {
        return false;
      } finally {
        res.off("close", onClose);
      }
    }
    return !res.destroyed;
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) tooLarge = true;
        // Past the limit the rest is drained and dropped, so the client still reads the 413.
        else chunks.push(chunk);
      });
      req.on("end", () => {
        if (tooLarge) reject(new HttpError(413, { message: `Request body exceeds the ${maxBody}-byte limit of this endpoint.`, param: null, code: "request_too_large" }));
        else resolve(Buffer.concat(chunks));
      });
      req.on("error", reject);
    });

  /** Answers with the failure; false when it is a mid-stream drop the streaming loop carries out. */
  const serveFailure = async (res: ServerResponse, failure: NonNullable<RequestPlan["failure"]>, request: ChatCompletionRequest): Promise<boolean> => {
    const { model } = request;
    if ("status" in failure) {
      const retryAfter = failure.retryAfterSeconds === undefined ? 1 : failure.retryAfterSeconds;
      const headers: Record<string, string> = retryAfter === null || failure.status !== 429 ? {} : { "retry-after": String(retryAfter) };
      let body: OpenAIErrorBody;
      if (failure.status === 429) {
        // LangChain also reads "try again in Ns" from the message, so it is only there when the header is.
        const hint = retryAfter === null ? "" : ` Please try again in ${retryAfter}s.`;
        body = errorBody(failure.message ?? `Rate limit reached for ${model} (injected by the local model endpoint).${hint}`, "requests", null, "rate_limit_exceeded");
      } else if (failure.status >= 500) {
        body = errorBody(failure.message ?? "The server had an error while processing your request. Sorry about that! (injected by the local model endpoint)", "server_error", null, null);
      } else {
        body = errorBody(failure.message ?? `Injected ${failure.status} from the local model endpoint.`, "invalid_request_error", null, null);
      }
      sendJson(res, failure.status, body, headers);
      return true;
    }
    if ("hang" in failure) {
      // Never answer; the socket is released when the client gives up or the server closes.
      return true;
    }
    if (!request.stream) {
      // A non-streamed drop: headers and half a body, then the connection dies.
      res.writeHead(200, { "content-type": "application/json", "content-length": "4096" });
      await flushed(res, '{"id":"chatcmpl-dropped","object":"chat.completion","choices":[');
      res.destroy();
      return true;
    }
    return false;
  };

  type Api = "chat" | "responses";

  const handleCompletion = async (api: Api, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<string> => {
    counters.requests += 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new HttpError(400, {
        message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        param: null,
        code: null,
      });
    }
    if (nestsDeeperThan(parsed, MAX_BODY_NESTING)) {
      throw new HttpError(400, { message: `The request body nests objects/arrays deeper than ${MAX_BODY_NESTING} levels, the limit of the local model endpoint.`, param: null, code: "nesting_too_deep" });
    }
    lastRequest = parsed;
    let request: ChatCompletionRequest;
    let source: Record<string, unknown> = {};
    if (api === "chat") {
      const validation = validateChatRequest(parsed);
      if (!validation.ok) throw new HttpError(400, validation.error);
      request = validation.request;
    } else {
      const validation = parseResponsesRequest(parsed);
      if (!validation.ok) throw new HttpError(400, validation.error);
      request = validation.chat;
      source = validation.source;
    }
    const header = req.headers[FAULT_HEADER];
    const directives = parseDirectives(request.model, Array.isArray(header) ? header.join(",") : header);
    if ("error" in directives) throw new HttpError(400, { message: directives.error, param: "model", code: "invalid_value" });
    const plan = faults.plan(directives.directives, [request.model, request.messages]);
    if (!(await pause(plan.latencyMs ?? opts.latencyMs ?? 0, res))) return "client went away during latency";
    if (plan.failure) {
      counters.faults += 1;
      if (await serveFailure(res, plan.failure, request)) return `fault ${JSON.stringify(plan.failure)}`;
    }

    const budget = new FillBudget();
    let replies: Reply[];
    try {
      replies = Array.from({ length: api === "chat" ? (request.n ?? 1) : 1 }, (_, index) => respond(request, index, budget));
    } catch (error) {
      if (error instanceof ReplyTooLargeError) throw new HttpError(400, { message: error.message, param: null, code: "reply_too_large" });
      if (!(error instanceof SchemaTooLargeError)) throw error;
      const param = api === "responses" && error.param === "response_format" ? "text.format" : error.param;
      throw new HttpError(400, { message: error.message, param, code: "schema_too_large" });
    }
    const created = Math.floor(Date.now() / 1000);
    const rendered: Rendered =
      api === "chat"
        ? renderChatCompletion(request, replies, `chatcmpl-${randomBytes(12).toString("hex")}`, created)
        : renderResponse(request, source, replies[0] as Reply, `resp_${randomBytes(24).toString("hex")}`, created);
    const summary = replies.map((reply) => (reply.kind === "text" ? JSON.stringify(reply.content.slice(0, 60)) : `tool_calls(${reply.calls.map((call) => call.function.name).join(",")})`)).join(" | ");
    const succeeded = (): void => {
      counters.completions += 1;
      if (replies.some((reply) => reply.kind === "tool_calls")) counters.toolCalls += 1;
    };

    if (!request.stream) {
      sendJson(res, 200, rendered.body);
      succeeded();
      return summary;
    }

    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
    const dropAfter = plan.failure && "dropMidStream" in plan.failure ? (plan.failure.afterChunks ?? Math.max(1, Math.floor(countOf(rendered.events()) / 2))) : undefined;
    let sent = 0;
    for (const event of rendered.events()) {
      if (sent === dropAfter) {
        res.destroy();
        return `dropped stream after ${sent} events`;
      }
      if (sent > 0 && !(await pause(plan.tokenDelayMs ?? opts.tokenDelayMs ?? 0, res))) return "client went away mid-stream";
      // Before a planned drop, wait for each event to reach the socket: destroy() discards unflushed writes.
      if (dropAfter !== undefined) await flushed(res, event);
      else if (!res.write(event)) {
        // Backpressure: a client that does not read holds one buffer's worth here, not the whole reply.
        streamsWaiting += 1;
        const drained = await drainedOrClosed(res);
        streamsWaiting -= 1;
        if (!drained) return "client went away mid-stream";
      }
      sent += 1;
    }
    res.end();
    succeeded();
    counters.streamed += 1;
    return `stream ${summary}`;
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<string> => {
    if (req.method === "DELETE") {
      faults.clear();
      sendJson(res, 200, { pendingFaults: 0 });
      return "faults cleared";
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new HttpError(400, { message: "Body must be a JSON fault or array of faults.", param: null, code: null });
    }
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const valid = list.map(parseFault);
    if (valid.some((fault) => fault === undefined)) {
      throw new HttpError(400, {
        message: `Invalid fault; expected e.g. {"status":429,"times":2}, {"hang":true}, {"dropMidStream":true} or {"latencyMs":500} (latencyMs at most ${MAX_DELAY_MS}, retryAfterSeconds at most ${MAX_RETRY_AFTER_SECONDS}).`,
        param: null,
        code: null,
      });
    }
    for (const fault of valid) if (fault) faults.inject(fault);
    sendJson(res, 200, { pendingFaults: faults.pending() });
    return `queued ${list.length} fault(s)`;
  };

  const stats = (): ModelServerStats => ({ ...counters, pendingFaults: faults.pending(), streamsWaiting, ...(lastRequest === undefined ? {} : { lastRequest }) });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    // A web page could otherwise queue faults that hang every completion (a text/plain POST needs
    // no CORS preflight) or, through DNS rebinding, read the last prompt from /_local/stats.
    const refusal = browserRequestRefusal(req.method, req.headers, allowedHosts);
    if (refusal !== undefined) throw new HttpError(403, { message: refusal, param: null, code: null });
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://local");
    } catch {
      throw new HttpError(400, { message: `Invalid request target '${(req.url ?? "").slice(0, 100)}'.`, param: null, code: null });
    }
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    const body = method === "POST" || method === "PUT" || method === "DELETE" ? await readBody(req) : Buffer.alloc(0);
    if (method === "POST" && path === "/v1/chat/completions") return handleCompletion("chat", req, res, body);
    if (method === "POST" && path === "/v1/responses") return handleCompletion("responses", req, res, body);
    if (method === "GET" && (path === "/health" || path === "/v1/health")) {
      const { lastRequest: _omitted, ...numbers } = stats();
      sendJson(res, 200, { status: "ok", service: "local-model", ...numbers });
      return "health";
    }
    if (method === "GET" && path === "/v1/models") {
      sendJson(res, 200, { object: "list", data: MODELS.map((id) => ({ id, object: "model", created: 0, owned_by: "local-model" })) });
      return "models";
    }
    const model = /^\/v1\/models\/(.+)$/.exec(path);
    if (method === "GET" && model?.[1]) {
      let id: string;
      try {
        id = decodeURIComponent(model[1]);
      } catch {
        throw new HttpError(400, { message: `Invalid model id '${model[1].slice(0, 100)}': malformed percent-encoding.`, param: null, code: null });
      }
      sendJson(res, 200, { id, object: "model", created: 0, owned_by: "local-model" });
      return "model";
    }
    if (path === "/_local/faults" && (method === "POST" || method === "DELETE")) return handleControl(req, res, body);
    if (method === "GET" && path === "/_local/stats") {
      sendJson(res, 200, stats());
      return "stats";
    }
    throw new HttpError(404, { message: `Invalid URL (${method} ${path})`, param: null, code: null });
  };

  const server = createServer((req, res) => {
    const started = Date.now();
    const requestId = `req_${randomBytes(16).toString("hex")}`;
    res.setHeader("x-request-id", requestId);
    route(req, res)
      .then((what) => log(`${req.method} ${req.url} ${res.headersSent ? res.statusCode : "---"} ${Date.now() - started}ms ${what}`))
      .catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status === 400 || status === 404 || status === 413) counters.badRequests += 1;
        const detail = error instanceof HttpError ? error.detail : { message: "Internal error in the local model endpoint.", param: null, code: null };
        if (!(error instanceof HttpError)) log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        if (!res.headersSent && !res.destroyed) sendJson(res, status, errorBody(detail.message, detail.type ?? (status >= 500 ? "server_error" : "invalid_request_error"), detail.param, detail.code));
        else res.destroy();
        log(`${req.method} ${req.url} ${status} ${Date.now() - started}ms ${detail.message}`);
      });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : (opts.port ?? DEFAULT_PORT);
      const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
      resolve({
        url: `http://${urlHost}:${port}/v1`,
        port,
        inject: (fault) => faults.inject(fault),
        clearFaults: () => faults.clear(),
        stats,
        close: () =>
          new Promise<void>((done) => {
            closing.abort();
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
