/**
 * Token streaming over Server-Sent Events, traced on both sides as one tree.
 *
 * Server (behind the express middleware, which continues the caller's trace):
 *
 *   app.use(langsmithTracing({ trust: "mesh" }));
 *   app.post("/chat/stream", express.json(), sseChatHandler({ model: new ChatOpenAI() }));
 *
 * Client (another process):
 *
 *   const readChat = chatStreamClient("http://chat:3000/chat/stream");
 *   for await (const token of readChat({ question })) process.stdout.write(token);
 *
 * What each side records:
 * - outputs: the whole text and the token count (an `aggregator`), never the
 *   SDK's default array of chunks, and never `{}` (see streamText below);
 * - one `new_token` event per token (its time; the SDK does not send the
 *   token's text in events), which LangSmith also uses for its own first-token
 *   time, and metadata `time_to_first_token_ms`;
 * - a client that goes away mid-stream ends the server's runs as cancelled
 *   (the model call is aborted, so it stops costing tokens), and a client that
 *   stops reading ends its own run as "Cancelled".
 */
import { once } from "node:events";
import type { Request, RequestHandler, Response } from "express";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { traceable } from "langsmith/traceable";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { currentRun, tracedFetch } from "@tracing-patterns/kit";

/** What a streamed run's outputs become, on both sides. */
export interface StreamedText {
  text: string;
  tokens: number;
}

/** The aggregator for a traced generator of text chunks. */
export function joinTokens(chunks: string[]): StreamedText {
  return { text: chunks.join(""), tokens: chunks.length };
}

/**
 * The error a stream run ends with when its consumer went away. Its name makes
 * the recorded error read "Cancelled: <reason>", like the SDK's own "Cancelled".
 */
export class StreamCancelled extends Error {
  override name = "Cancelled";
}

function markFirstToken(startedAt: number): void {
  const run = currentRun();
  if (run) run.metadata = { time_to_first_token_ms: Math.round((performance.now() - startedAt) * 10) / 10 };
}

/**
 * LangSmith's per-token event; it also derives the run's first-token time from
 * the first one. Only the time is recorded: the SDK strips an event's kwargs
 * (the token text) before sending (Client._filterNewTokenEvents), so the text
 * lives in the outputs.
 */
function recordToken(): void {
  currentRun()?.addEvent({ name: "new_token" });
}

export interface StreamTextInput {
  question: string;
  /** Aborts the model call. */
  signal?: AbortSignal;
}

/**
 * A traced async generator of the model's text tokens ("stream_answer"). The
 * ChatOpenAI run nests under it. Returning the generator itself from traceable
 * is what lets the SDK see every chunk: a function that returns an object
 * *holding* a stream is recorded as `{}` (langsmith-sdk#2274).
 */
export function streamText(model: BaseChatModel, system = "You answer in a few sentences."): (input: StreamTextInput) => AsyncGenerator<string> {
  return traceable(
    async function* streamAnswer(input: StreamTextInput): AsyncGenerator<string> {
      const startedAt = performance.now();
      let tokens = 0;
      try {
        const stream = await model.stream(
          [
            { role: "system", content: system },
            { role: "user", content: input.question },
          ],
          { signal: input.signal },
        );
        for await (const chunk of stream) {
          const token = chunk.text;
          if (token === "") continue;
          if (tokens++ === 0) markFirstToken(startedAt);
          recordToken();
          yield token;
        }
      } catch (error) {
        if (input.signal?.aborted) throw new StreamCancelled(reasonText(input.signal.reason));
        throw error;
      }
    },
    {
      name: "stream_answer",
      run_type: "chain",
      aggregator: joinTokens,
      // The signal is plumbing, not an input worth recording (it would serialize as {}).
      processInputs: (inputs) => ({ question: (inputs as { question?: unknown }).question }),
    },
  );
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason ?? "aborted");
}

/** One SSE event. JSON data never contains a raw newline, so one `data:` line is enough. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Resolves once `res` can take more data; rejects if the client goes away first. */
async function drained(res: Response, signal: AbortSignal): Promise<void> {
  await once(res, "drain", { signal });
}

export interface SseChatOptions {
  model: BaseChatModel;
  system?: string;
}

/**
 * An express handler that streams the answer to `{ "question": string }` as
 * SSE: `token` events `{ index, token }`, then `done` `{ tokens }`, or `error`
 * `{ message }`. Needs a JSON body parser before it and the tracing middleware
 * in front of the app; the `stream_answer` run nests under the request's run.
 */
export function sseChatHandler(options: SseChatOptions): RequestHandler {
  const stream = streamText(options.model, options.system);
  return async (req: Request, res: Response): Promise<void> => {
    const question: unknown = (req.body as { question?: unknown } | undefined)?.question;
    if (typeof question !== "string" || question.trim() === "") {
      res.status(400).json({ error: 'expected a JSON body {"question": string}' });
      return;
    }
    const disconnected = new AbortController();
    // "close" before the response finished means the client went away.
    res.once("close", () => {
      if (!res.writableFinished) disconnected.abort(new Error("client disconnected"));
    });
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // Proxies such as nginx buffer responses unless told not to.
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    let index = 0;
    try {
      for await (const token of stream({ question, signal: disconnected.signal })) {
        // Leaving the loop ends stream_answer as "Cancelled" and aborts the model call.
        if (disconnected.signal.aborted) break;
        if (!res.write(sseEvent("token", { index: index++, token }))) await drained(res, disconnected.signal);
      }
      if (!disconnected.signal.aborted) res.end(sseEvent("done", { tokens: index }));
    } catch (error) {
      // After a disconnect there is nobody to tell; the runs already say what happened.
      if (!disconnected.signal.aborted && !res.writableEnded) res.end(sseEvent("error", { message: error instanceof Error ? error.message : String(error) }));
    }
  };
}

export interface ChatStreamClientOptions {
  /** Run name of the client's run. Default "read_chat_stream". */
  name?: string;
  /** Extra request headers (the trace headers are added for the current run). */
  headers?: Record<string, string>;
}

/**
 * A traced SSE consumer for sseChatHandler: an async generator of tokens whose
 * run continues the current trace into the server (through tracedFetch), and
 * records the text the caller received, per-token events and
 * `time_to_first_token_ms` measured from sending the request. Stopping early
 * (`break`) cancels the response body, which closes the connection, so the
 * server sees the disconnect and cancels its side too.
 */
export function chatStreamClient(url: string | URL, options: ChatStreamClientOptions = {}): (input: { question: string }) => AsyncGenerator<string> {
  return traceable(
    async function* readChatStream(input: { question: string }): AsyncGenerator<string> {
      const startedAt = performance.now();
      const response = await tracedFetch(url, {
        method: "POST",
        headers: { ...options.headers, "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ question: input.question }),
      });
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        throw new Error(`chat stream answered HTTP ${response.status}`);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
      let tokens = 0;
      try {
        for (;;) {
          const { value: event, done } = await reader.read();
          if (done) throw new Error(`the stream ended without a "done" event after ${tokens} tokens`);
          if (event.event === "token") {
            const { token } = JSON.parse(event.data) as { token: string };
            if (tokens++ === 0) markFirstToken(startedAt);
            recordToken();
            yield token;
          } else if (event.event === "done") {
            return;
          } else if (event.event === "error") {
            throw new Error(`the server failed mid-stream: ${(JSON.parse(event.data) as { message: string }).message}`);
          }
        }
      } finally {
        // Runs on break/return too: without it the connection would stay open and the server would keep generating.
        await reader.cancel().catch(() => undefined);
      }
    },
    { name: options.name ?? "read_chat_stream", run_type: "chain", aggregator: joinTokens },
  );
}
