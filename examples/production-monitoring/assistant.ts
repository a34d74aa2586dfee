/**
 * The public service: a support assistant. ChatOpenAI with one tool,
 * `lookup_account`, which calls the accounts service; the answer is streamed
 * to the client as Server-Sent Events (or returned as JSON). Traced end to end
 * with the client from tracing.ts (redaction, export counters, replay), and
 * measured at GET /metrics.
 *
 *   POST /chat  {"message": "What plan is account cust-1042 on?"}
 *     Accept: text/event-stream -> data: {"token": "..."} ... event: done
 *     otherwise                 -> {"answer": "...", "traceId": "..."}
 *
 * With DEMO_FAULTS=true, `x-demo-fault: slow` or `fail` makes the model slow
 * or failing for that request (the local model's fault directives), so load
 * tests and dashboards have something to show. Leave it off in production.
 *
 *   LANGSMITH_SERVICE=assistant ACCOUNTS_URL=http://127.0.0.1:4101 node --import tsx assistant.ts
 */
import { fileURLToPath } from "node:url";
import express from "express";
import type { Response } from "express";
import { ChatOpenAI } from "@langchain/openai";
import type { AIMessageChunk, BaseMessage } from "@langchain/core/messages";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { getRequestRun, jsonErrors, langsmithTracing, traced, tracedFetch } from "@tracing-patterns/kit";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { serve, wholeNumber } from "./serve.js";
import { createTracing, type Tracing } from "./tracing.js";

export type DemoFault = "slow" | "fail";

export interface AssistantOptions {
  model: ChatOpenAI;
  /** Models for x-demo-fault (see demoFaultModels); without them the header is ignored. */
  faultModels?: Partial<Record<DemoFault, ChatOpenAI>>;
  accountsUrl: URL;
  metrics: ServiceMetrics;
  tracing: Tracing;
}

const ChatRequest = z.object({ message: z.string().trim().min(1).max(2000) });
const SYSTEM = "You are a support assistant. Use lookup_account for questions about a customer's account.";

/** The model or a service it needs failed: answered 502, recorded on the request's run. */
class UpstreamError extends Error {}

export function createAssistantApp(options: AssistantOptions): express.Express {
  const { metrics, tracing } = options;
  const lookupAccount = tool(
    async ({ customer_id }: { customer_id: string }) => {
      const response = await tracedFetch(new URL(`/accounts/${encodeURIComponent(customer_id)}`, options.accountsUrl));
      if (response.status === 404) return `No account ${customer_id}.`;
      if (!response.ok) throw new UpstreamError(`accounts answered ${response.status}`);
      return JSON.stringify(await response.json());
    },
    {
      name: "lookup_account",
      description: "Look up a customer account by id: name, email, plan and open tickets.",
      schema: z.object({ customer_id: z.string().describe("The account id, like cust-1042") }),
    },
  );
  const models = {
    normal: options.model.bindTools([lookupAccount]),
    slow: options.faultModels?.slow?.bindTools([lookupAccount]),
    fail: options.faultModels?.fail?.bindTools([lookupAccount]),
  };

  // A traced generator: its run's output is the whole answer, the two model calls and the tool nest under it.
  const answer = traced(
    async function* answer(input: { message: string; fault?: DemoFault; signal: AbortSignal }): AsyncGenerator<string> {
      const model = (input.fault && models[input.fault]) || models.normal;
      const callOptions = { signal: input.signal };
      const messages: BaseMessage[] = [new SystemMessage(SYSTEM), new HumanMessage(input.message)];
      let gathered: AIMessageChunk | undefined;
      for await (const chunk of await model.stream(messages, callOptions)) {
        gathered = gathered ? gathered.concat(chunk) : chunk;
        if (chunk.text) yield chunk.text;
      }
      if (!gathered?.tool_calls?.length) return;
      messages.push(gathered);
      for (const call of gathered.tool_calls) messages.push(await lookupAccount.invoke({ ...call, type: "tool_call" }));
      for await (const chunk of await model.stream(messages, callOptions)) if (chunk.text) yield chunk.text;
    },
    {
      name: "answer",
      client: tracing.client,
      aggregator: (chunks: string[]) => ({ text: chunks.join(""), chunks: chunks.length }),
      // The abort signal is plumbing, not input.
      processInputs: (inputs) => ({ message: inputs.message, fault: inputs.fault }),
    },
  );

  const app = express();
  app.get("/metrics", metrics.handler);
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "assistant" });
  });
  app.use(metrics.httpMiddleware);
  // Public: never continue a caller's trace.
  app.use(langsmithTracing({ trust: "edge", sampling: tracing.sampler }));
  app.post("/chat", express.json({ limit: "16kb" }), async (req, res) => {
    const parsed = ChatRequest.safeParse(req.body);
    const traceId = getRequestRun(req)?.trace_id;
    if (!parsed.success) {
      res.status(400).json({ error: 'expected {"message": "<1-2000 characters>"}', traceId });
      return;
    }
    const asked = req.get("x-demo-fault");
    const fault = asked === "slow" || asked === "fail" ? asked : undefined;
    const aborted = new AbortController();
    res.once("close", () => aborted.abort(new Error("client disconnected")));
    // Through Symbol.asyncIterator: traceable returns the generator with only that method wrapped,
    // so a bare tokens.next() would bypass the run (no output, and a run never ended on error).
    const tokens = answer({ message: parsed.data.message, ...(fault ? { fault } : {}), signal: aborted.signal })[Symbol.asyncIterator]();
    // Wait for the first token before choosing the status: a model that fails up front is a 502, not a broken stream.
    let first: IteratorResult<string>;
    try {
      first = await tokens.next();
    } catch (error) {
      throw new UpstreamError(`the answer could not be produced: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (req.accepts(["application/json", "text/event-stream"]) === "text/event-stream") {
      await streamEvents(res, first, tokens, traceId);
      return;
    }
    const parts: string[] = [];
    for (let next = first; !next.done; next = await tokens.next()) parts.push(next.value);
    res.json({ answer: parts.join(""), traceId });
  });
  app.use(jsonErrors({ service: "assistant", upstreamFailure: (error) => error instanceof UpstreamError }));
  return app;
}

/** Slow and failing variants of the model for the demo: the local model's fault directives in a header (docs/local-stack.md, "Fault injection"). */
export function demoFaultModels(modelName: string): Record<DemoFault, ChatOpenAI> {
  const withFault = (directive: string): ChatOpenAI => new ChatOpenAI({ model: modelName, maxRetries: 1, configuration: { defaultHeaders: { "x-local-fault": directive } } });
  return { slow: withFault("latency-800"), fail: withFault("fail-500") };
}

async function streamEvents(res: Response, first: IteratorResult<string>, rest: AsyncIterator<string>, traceId: string | undefined): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  let count = 0;
  try {
    for (let next = first; !next.done; next = await rest.next()) {
      res.write(`data: ${JSON.stringify({ token: next.value })}\n\n`);
      count++;
    }
    res.end(`event: done\ndata: ${JSON.stringify({ tokens: count, traceId })}\n\n`);
  } catch (error) {
    // Headers are gone: say so in the stream; the answer run records the error.
    res.end(`event: error\ndata: ${JSON.stringify({ error: error instanceof Error ? error.message : String(error), traceId })}\n\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "assistant";
  const metrics = createMetrics("assistant");
  const tracing = createTracing({ metrics });
  // OPENAI_API_KEY, OPENAI_BASE_URL from the environment; one retry keeps a failing model's requests short.
  const modelName = process.env.OPENAI_MODEL || "gpt-4o-mini";
  const model = new ChatOpenAI({ model: modelName, maxRetries: 1 });
  const accountsUrl = new URL(process.env.ACCOUNTS_URL ?? "http://127.0.0.1:4101");
  const faultModels = process.env.DEMO_FAULTS === "true" ? demoFaultModels(modelName) : undefined;
  const app = createAssistantApp({ model, ...(faultModels ? { faultModels } : {}), accountsUrl, metrics, tracing });
  await serve(app, { service: "assistant", port: wholeNumber("ASSISTANT_PORT", 4100), metrics, tracing });
}
