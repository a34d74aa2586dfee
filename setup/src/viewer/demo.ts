// Traces for the viewer's browser tests and screenshots, made the way the
// notebooks make them: the unmodified langsmith SDK, services that call each
// other over real HTTP and continue the trace from the langsmith-trace and
// baggage headers, and a real ChatOpenAI streaming from the local model
// endpoint (through .stream(): `streaming: true` with .invoke() estimates token
// counts with tiktoken, which downloads its ranks and so hangs offline). All services run in this process on ephemeral ports; each labels
// its runs with LANGSMITH_SERVICE metadata.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ChatOpenAI } from "@langchain/openai";
import { Client, RunTree } from "langsmith";
import { getCurrentRunTree, traceable, withRunTree } from "langsmith/traceable";
import { serviceMetadata } from "../service.js";

export interface DemoContext {
  /** The trace server the SDK writes to. */
  traceServerUrl: string;
  /** The local model endpoint's base URL (ending in /v1). */
  modelUrl: string;
  projectName?: string;
}

interface Service {
  url: string;
  close(): Promise<void>;
}

type Handler = (body: Record<string, unknown>, headers: Record<string, string>) => Promise<unknown>;

/** A one-route JSON service on an ephemeral port. */
async function startService(handler: Handler): Promise<Service> {
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
      handler(body, headers).then(
        (result) => {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result));
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

/** POSTs JSON with the current run's tracing headers, as an instrumented HTTP client does. */
async function callService(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...getCurrentRunTree().toHeaders() },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(String(answer.error ?? `HTTP ${res.status}`));
  return answer;
}

export interface DemoTraces {
  /** gateway -> rag-service (retriever, streaming ChatOpenAI) and gateway -> tools-service (a failing tool). */
  multiService: string;
  /** A checkout whose billing call was continued from a run that was never sent, plus a rejected run. */
  broken: string;
}

/**
 * Records the demo traces and waits until the SDK has delivered them. The
 * clients flush here; reading back and waiting for the server to show them is
 * the caller's business.
 */
export async function recordDemoTraces(ctx: DemoContext): Promise<DemoTraces> {
  const client = new Client({ apiUrl: ctx.traceServerUrl, apiKey: "local", autoBatchTracing: true });
  const base = { client, tracingEnabled: true, ...(ctx.projectName ? { project_name: ctx.projectName } : {}) };
  const continueFrom = (headers: Record<string, string>): RunTree => {
    const parent = RunTree.fromHeaders(headers, base);
    if (!parent) throw new Error("no tracing headers on the request");
    return parent;
  };

  const llm = new ChatOpenAI({
    model: "gpt-4o-mini",
    apiKey: "local",
    maxRetries: 0,
    configuration: { baseURL: ctx.modelUrl },
  });

  const rag = await startService(async (body, headers) => {
    const retrieve = traceable(
      async (query: string) => [
        { id: "doc-7", text: "Distributed tracing links the runs of one request across services." },
        { id: "doc-12", text: `Propagate langsmith-trace and baggage headers to continue a trace (${query}).` },
      ],
      { ...base, name: "retrieve_docs", run_type: "retriever", metadata: serviceMetadata("rag-service") },
    );
    const answer = traceable(
      async (question: string) => {
        const docs = await retrieve(question);
        let text = "";
        const stream = await llm.stream([
          ["system", `Answer from these notes: ${docs.map((d) => d.text).join(" ")}`],
          ["user", question],
        ]);
        for await (const chunk of stream) text += typeof chunk.content === "string" ? chunk.content : "";
        return { answer: text, sources: docs.map((d) => d.id) };
      },
      { ...base, name: "answer_question", metadata: { ...serviceMetadata("rag-service"), tenant: "acme" } },
    );
    return withRunTree(continueFrom(headers), () => answer(String(body.question)));
  });

  const tools = await startService(async (body, headers) => {
    const fetchStatus = traceable(
      async (orderId: string): Promise<never> => {
        throw new Error(`OrderNotFound: no order ${orderId} in the orders database`);
      },
      { ...base, name: "fetch_order_status", run_type: "tool", metadata: serviceMetadata("tools-service") },
    );
    const lookup = traceable(
      async (orderId: string) => {
        try {
          return { status: await fetchStatus(orderId) };
        } catch (error) {
          return { status: "unknown", note: (error as Error).message };
        }
      },
      { ...base, name: "lookup_order", run_type: "tool", metadata: serviceMetadata("tools-service") },
    );
    return withRunTree(continueFrom(headers), () => lookup(String(body.orderId)));
  });

  try {
    const multiService = await recordAsk(base, rag.url, tools.url);
    const broken = await recordBrokenCheckout(base, client, ctx);
    await client.awaitPendingTraceBatches();
    return { multiService, broken };
  } finally {
    await Promise.all([rag.close(), tools.close()]);
  }
}

type Base = { client: Client; tracingEnabled: boolean; project_name?: string };

async function recordAsk(base: Base, ragUrl: string, toolsUrl: string): Promise<string> {
  let traceId = "";
  const gateway = serviceMetadata("gateway");
  const plan = traceable(async (question: string) => ({ needsDocs: true, needsOrder: /order/i.test(question) }), {
    ...base,
    name: "plan_request",
    metadata: gateway,
  });
  const askRag = traceable((question: string) => callService(ragUrl, { question }), { ...base, name: "call rag-service", run_type: "tool", metadata: gateway });
  const askTools = traceable((orderId: string) => callService(toolsUrl, { orderId }), { ...base, name: "call tools-service", run_type: "tool", metadata: gateway });
  await traceable(
    async (request: { question: string; orderId: string }) => {
      await plan(request.question);
      const [answer, order] = await Promise.all([askRag(request.question), askTools(request.orderId)]);
      return { answer, order };
    },
    {
      ...base,
      name: "POST /ask",
      metadata: { ...gateway, "http.route": "/ask" },
      tags: ["demo"],
      on_start: (run) => {
        traceId = run?.trace_id ?? "";
      },
    },
  )({ question: "How do I trace a request across services? Also, where is order 4711?", orderId: "4711" });
  return traceId;
}

/**
 * A request whose billing call dies before its run is sent: the billing
 * service continued the trace from that run's headers, so its runs arrive
 * with a parent that never does (orphans). A misconfigured worker also sends a
 * run the server rejects.
 */
async function recordBrokenCheckout(base: Base, client: Client, ctx: DemoContext): Promise<string> {
  const gateway = new RunTree({ ...base, name: "POST /checkout", run_type: "chain", inputs: { cart: ["sku-1", "sku-2"] }, metadata: serviceMetadata("gateway") });
  await gateway.postRun();
  // Created, its headers sent, but never posted: the process "crashed" before flushing it.
  const lost = gateway.createChild({ name: "call billing-service", run_type: "tool", inputs: { amount: 42 } });
  const billingParent = RunTree.fromHeaders(lost.toHeaders(), base);
  if (!billingParent) throw new Error("could not continue from the lost run's headers");
  await withRunTree(billingParent, () =>
    traceable(async (amount: number) => ({ charged: amount, currency: "EUR" }), { ...base, name: "charge_card", run_type: "tool", metadata: serviceMetadata("billing-service") })(42),
  );
  gateway.end({ status: "payment pending" });
  await gateway.patchRun();
  await client.awaitPendingTraceBatches();

  // A run whose dotted order names another trace: the server refuses it and records why.
  const now = new Date();
  const stamp = now.toISOString().replace(/[-:.]/g, "").replace("Z", "000Z");
  const strayId = "0195d2a0-0000-7000-8000-00000000beef";
  const response = await fetch(`${ctx.traceServerUrl}/runs/batch`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      post: [
        {
          id: strayId,
          trace_id: gateway.trace_id,
          parent_run_id: gateway.id,
          dotted_order: `${stamp}${strayId}`,
          name: "send_receipt",
          run_type: "tool",
          start_time: now.toISOString(),
          inputs: {},
          extra: { metadata: serviceMetadata("mailer") },
          ...(ctx.projectName ? { session_name: ctx.projectName } : {}),
        },
      ],
    }),
  });
  if (response.status !== 422) throw new Error(`expected the stray run to be rejected, got HTTP ${response.status}`);
  return gateway.trace_id;
}

/**
 * Waits until the server holds at least `runs` runs of the trace and all of
 * them have ended (ingestion is asynchronous). Returns the run count.
 */
export async function waitForTrace(traceServerUrl: string, traceId: string, runs: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  for (;;) {
    const res = await fetch(`${traceServerUrl}/api/traces/${traceId}`);
    if (res.ok) {
      const body = (await res.json()) as { runs: Array<{ end_time: string | null }> };
      seen = body.runs.length;
      if (seen >= runs && body.runs.every((r) => r.end_time !== null)) return seen;
    }
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${seen} of ${runs} runs visible and ended after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Debian's chromium, installed by setup/bin/run for the test and screenshots tasks. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** playwright-core launch options for Debian's chromium: headless, no sandbox (containers), no network side traffic. */
export function chromiumLaunchOptions(): { executablePath: string; args: string[] } {
  return {
    executablePath: CHROMIUM_PATH,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  };
}
