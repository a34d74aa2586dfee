/**
 * The downstream service: customer accounts, called by the assistant's
 * `lookup_account` tool. Internal (trust "mesh": it continues the caller's
 * trace), traced, with its own /metrics. Its answers hold personal data (an
 * email), which is exactly what the tracing client's redaction must keep out
 * of the traces of both services.
 *
 *   GET /accounts/:id   -> 200 {"id","name","email","plan","openTickets"} | 404
 *
 *   LANGSMITH_SERVICE=accounts ACCOUNTS_PORT=4101 node --import tsx accounts.ts
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import express from "express";
import { jsonErrors, langsmithTracing, traced } from "@tracing-patterns/kit";
import { createMetrics, type ServiceMetrics } from "./metrics.js";
import { serve, wholeNumber } from "./serve.js";
import { createTracing, type Tracing } from "./tracing.js";

export interface Account {
  id: string;
  name: string;
  email: string;
  plan: "free" | "team" | "enterprise";
  openTickets: number;
}

const NAMES = ["Dana Lee", "Sam Ortiz", "Priya Nair", "Jon Berg", "Mina Sato"];
const PLANS: Account["plan"][] = ["free", "team", "enterprise"];

/** A deterministic account for ids like `cust-1042` (a stand-in for the database); undefined for anything else. */
export function findAccount(id: string): Account | undefined {
  if (!/^cust-\d{1,8}$/.test(id)) return undefined;
  const hash = createHash("sha256").update(id).digest();
  const name = NAMES[hash[0]! % NAMES.length]!;
  return {
    id,
    name,
    email: `${name.toLowerCase().replace(" ", ".")}.${id.slice(5)}@example.com`,
    plan: PLANS[hash[1]! % PLANS.length]!,
    openTickets: hash[2]! % 4,
  };
}

export function createAccountsApp({ metrics, tracing }: { metrics: ServiceMetrics; tracing: Tracing }): express.Express {
  const loadAccount = traced(async (id: string) => findAccount(id) ?? null, { name: "load_account", run_type: "retriever", client: tracing.client });

  const app = express();
  app.get("/metrics", metrics.handler);
  app.get("/health", (_req, res) => {
    res.json({ ok: true, service: "accounts" });
  });
  app.use(metrics.httpMiddleware);
  // Only the assistant calls this service: continue its trace.
  app.use(langsmithTracing({ trust: "mesh", sampling: tracing.sampler }));
  app.get("/accounts/:id", async (req, res) => {
    const account = await loadAccount(req.params.id);
    if (!account) {
      res.status(404).json({ error: `no account ${req.params.id}` });
      return;
    }
    res.json(account);
  });
  app.use(jsonErrors({ service: "accounts" }));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.env.LANGSMITH_SERVICE ??= "accounts";
  const metrics = createMetrics("accounts");
  const tracing = createTracing({ metrics });
  await serve(createAccountsApp({ metrics, tracing }), { service: "accounts", port: wholeNumber("ACCOUNTS_PORT", 4101), metrics, tracing });
}
