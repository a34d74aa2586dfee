// The Agent Server's custom HTTP app (langgraph.json "http.app"). Its
// middleware runs before the server's own routes, so it sees every run request.
// Only our supervisor reaches this server (loopback, or a private network in a
// deployment), so its trace headers are continued: "mesh".
import { Hono } from "hono";
import { flushTracesOnExit, forwardTraceHeaders } from "./trace-context.js";

export const app = new Hono();
app.use(forwardTraceHeaders({ trust: "mesh" }));
flushTracesOnExit();
