// A small traced service for the trace doctor's tests, run as a real process:
//   LANGSMITH_SERVICE=frontend SERVICE_TRUST=mesh CLOCK_OFFSET_MS=0 LANGSMITH_ENDPOINT=... \
//     node --conditions=source --import tsx tests/support/doctor-service.ts
// It prints "listening on <url>", and "trace <service> <trace id>" for each request it serves.
// Each request says which failure to act out, so one process serves many scenarios:
//   POST /front {to, propagate, retryTimeoutMs?, die?, payloadBytes?, work?}
//     calls `to` (another instance's /work) inside the traceable "call_backend", with the trace
//     headers (tracedFetch) or without them (plain fetch), forwarding the x-request-id it got;
//     retries once after a timeout; kills its
//     own process (SIGKILL, before its runs are flushed) once the call returns; traces a large input.
//   POST /work {task, hang?, slowFirstMs?, flatten?: "request" | "startup"}
//     "do_work", which never returns (hang), is slow the first time a task comes (slowFirstMs), or waits for a
//     reply delivered by a timer of the request ("request": the reply's work lands beside the
//     waiting run) or of a poller started at startup ("startup": the work becomes its own trace).
// CLOCK_OFFSET_MS shifts this process's clock, as on a machine whose clock is off.
import { EventEmitter } from "node:events";
import express from "express";
import { traceable } from "langsmith/traceable";
import { installGracefulShutdown, startApp } from "@tracing-patterns/setup";
import { getRequestRun, langsmithTracing, tracedFetch } from "@tracing-patterns/kit";

const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);
if (offset !== 0) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offset;
}
const service = process.env.LANGSMITH_SERVICE ?? "unnamed";

interface FrontBody {
  to: string;
  propagate?: boolean;
  /** The x-request-id this request came with, forwarded as a proxy or framework would. */
  requestId?: string;
  retryTimeoutMs?: number;
  die?: boolean;
  payloadBytes?: number;
  work?: Record<string, unknown>;
}

interface WorkBody {
  task?: string;
  hang?: boolean;
  slowFirstMs?: number;
  flatten?: "request" | "startup";
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const summarize = traceable(async (input: { text: string }) => ({ length: input.text.length }), { name: "summarize" });

const callBackend = traceable(
  async (body: FrontBody): Promise<{ status: number }> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (body.requestId) headers["x-request-id"] = body.requestId;
    const send = (signal?: AbortSignal): Promise<Response> => {
      const init = { method: "POST", headers, body: JSON.stringify(body.work ?? { task: "work" }), ...(signal ? { signal } : {}) };
      return body.propagate === false ? fetch(body.to, init) : tracedFetch(body.to, init);
    };
    let response: Response;
    if (body.retryTimeoutMs !== undefined) {
      try {
        response = await send(AbortSignal.timeout(body.retryTimeoutMs));
      } catch {
        response = await send();
      }
    } else {
      response = await send();
    }
    await response.arrayBuffer();
    return { status: response.status };
  },
  { name: "call_backend", run_type: "tool" },
);

const slowTasks = new Set<string>();
const formatReply = traceable(async (reply: { text: string }) => ({ formatted: reply.text.toUpperCase() }), { name: "format_reply" });
// Started at startup, outside any request: whatever its listeners run has no trace context.
const poller = new EventEmitter();
setInterval(() => poller.emit("tick"), 20).unref();

const waitForReply = traceable(
  (source: { via: "request" | "startup" }, replies: EventEmitter): Promise<unknown> =>
    new Promise((resolve) => {
      const emitter = source.via === "startup" ? poller : replies;
      emitter.once(source.via === "startup" ? "tick" : "reply", () => {
        // Some handling before and after, so the waiting run ends clearly after the reply's work.
        void sleep(5)
          .then(() => formatReply({ text: "done" }))
          .then((formatted) => sleep(5).then(() => resolve(formatted)));
      });
    }),
  { name: "wait_for_reply" },
);

const doWork = traceable(
  async (body: WorkBody): Promise<{ done: string }> => {
    if (body.hang) await new Promise(() => undefined);
    // Slow the first time a task is seen, so a caller's retry of it is answered at once.
    if (body.slowFirstMs !== undefined && !slowTasks.has(body.task ?? "")) {
      slowTasks.add(body.task ?? "");
      await sleep(body.slowFirstMs);
    }
    return { done: body.task ?? "work" };
  },
  { name: "do_work" },
);

const app = express();
app.use(langsmithTracing({ trust: process.env.SERVICE_TRUST === "edge" ? "edge" : "mesh", logger: { warn: () => undefined } }));
app.use(express.json({ limit: "10mb" }));
app.use((req, _res, next) => {
  console.log(`trace ${service} ${getRequestRun(req)?.trace_id ?? "-"}`);
  next();
});

app.post("/front", async (req, res) => {
  const requestId = req.get("x-request-id");
  const body = { ...(req.body as FrontBody), ...(requestId ? { requestId } : {}) };
  if (body.payloadBytes) await summarize({ text: "x".repeat(body.payloadBytes) });
  const result = await callBackend(body).catch((error: unknown) => ({ status: 502, error: String(error) }));
  if (body.die) process.kill(process.pid, "SIGKILL");
  res.status(result.status === 200 ? 200 : 502).json(result);
});

app.post("/work", async (req, res) => {
  const body = req.body as WorkBody;
  if (body.flatten) {
    const replies = new EventEmitter();
    // Created in the request's context, before "wait_for_reply" starts: the reply's work runs in the request's run.
    setTimeout(() => replies.emit("reply"), 30);
    await waitForReply({ via: body.flatten }, replies);
  }
  res.json(await doWork(body));
});

const running = await startApp(app);
installGracefulShutdown(running.server, { timeoutMs: 5000 });
// Exit with the test that started it, even if it never sends a signal.
process.stdin.on("end", () => process.kill(process.pid, "SIGTERM")).resume();
console.log(`listening on ${running.url}`);
