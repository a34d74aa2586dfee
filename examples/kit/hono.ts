/**
 * LangSmith tracing for Hono: one run per request, continued from a trusted
 * caller's headers or started as a new root, with `x-trace-id` on the response.
 *
 *   import { Hono } from "hono";
 *   const app = new Hono();
 *   app.use(langsmithHono({ trust: "mesh" }));
 *   app.post("/shout", async (c) => c.text(await shout(await c.req.text())));   // traceable() nests
 *
 * Only types are imported from hono, so the kit loads without it. The run ends
 * when the handlers have produced the response; a streamed body may still be
 * sending then, and a client that disconnects is not seen here (Hono runs on
 * runtimes that report it differently). On node, `tracedListener` around
 * `getRequestListener(app.fetch)` (node-http.ts) sees both, without the route.
 */
import type { Context, MiddlewareHandler } from "hono";
import { withRunTree } from "langsmith/traceable";
import { describeError } from "./propagator.js";
import { droppedRun } from "./sampling.js";
import { endServerRun, noticeAllowed, serverTracing, settleTail, startServerRun, type HttpTracingOptions } from "./server-run.js";
import { SIGNATURE_HEADER } from "./signing.js";
import { TAIL_ROUTE } from "./tail.js";

export type HonoTracingOptions = HttpTracingOptions<Context>;

export function langsmithHono(options: HonoTracingOptions = {}): MiddlewareHandler {
  const tracing = serverTracing(options);
  return async (c, next) => {
    if (!tracing.enabled()) return next();
    const sampler = tracing.sampler;
    if (sampler !== undefined && c.req.method === "POST" && c.req.path === TAIL_ROUTE) {
      const body = await c.req.text();
      if (body.length > 1024 || !noticeAllowed(tracing.trust, c, body, headerValues(c.req.raw.headers, SIGNATURE_HEADER))) {
        return c.json({ error: "keep notices are accepted only from trusted callers" }, 403);
      }
      const answer = sampler.receiveNotice(body);
      return c.json(answer.body, answer.status === 200 ? 200 : 400);
    }
    let maybeStarted: ReturnType<typeof startServerRun>;
    try {
      maybeStarted = startServerRun(tracing, { req: c, method: c.req.method, path: c.req.path, header: (name) => headerValues(c.req.raw.headers, name) });
    } catch (err) {
      tracing.warn("start-failed", `Could not start a run; serving the request untraced: ${describeError(err).split("\n")[0]}`);
      return next();
    }
    // Sampled out: no run; the shared one keeps tracing off for the handlers.
    if (maybeStarted === undefined) return withRunTree(droppedRun(), () => next());
    const started = maybeStarted;
    if (tracing.traceIdHeader) c.header(tracing.traceIdHeader, started.run.trace_id);
    const ownIndex = c.req.routeIndex;
    try {
      await withRunTree(started.run, () => next());
    } finally {
      // Hono lets headers be set on the finished response: keep or held, for the caller (tail.ts).
      const tailHeaders = settleTail(tracing, started, { status: c.res.status, error: c.error === undefined ? undefined : describeError(c.error) });
      for (const [name, value] of Object.entries(tailHeaders)) c.header(name, value);
      // Hono's error handler has turned a thrown error into c.error and a 500 by now.
      await endServerRun(tracing, started, {
        status: c.res.status,
        // The route of the handler that answered; none when only middleware ran (a 404).
        route: c.req.routeIndex !== ownIndex ? c.req.routePath : undefined,
        error: c.error === undefined ? undefined : describeError(c.error),
        endTime: Date.now(),
      }).catch((err: unknown) => tracing.warn("end-failed", `Could not finish a run: ${describeError(err).split("\n")[0]}`));
    }
  };
}

/** Fetch's Headers join repeated lines with ", "; a repeated langsmith-trace then fails validation, as it should. */
function headerValues(headers: Headers, name: string): string[] | undefined {
  const value = headers.get(name);
  return value === null ? undefined : [value];
}
