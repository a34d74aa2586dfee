// A small traced service as deployed on a platform with a quirk, run by notebook 06 as a child
// process: express with the tracing middleware (trust "mesh"), one route, POST /triage, whose work
// (a traced "triage_ticket" step) takes WORK_MS (default 400 ms, longer than the SDK's 250 ms
// batch delay, so the starts of its runs are sent while it works).
//   LANGSMITH_SERVICE=triage FREEZE_AFTER_RESPONSE=true node --conditions=source --import tsx notebooks/services/deployed-service.ts
// Prints "triage listening on <url>". The quirks:
//   FREEZE_AFTER_RESPONSE=true  a serverless platform: the process is frozen (SIGSTOP) the moment
//                               a response is complete, until the platform thaws it (SIGCONT)
//                               for the next invocation, as AWS Lambda does.
//   FLUSH_BEFORE_END=true       the fix: the middleware's flushBeforeEnd sends the runs before the
//                               response's last bytes go out.
//   CLOCK_OFFSET_MS=-3000       the machine's clock is 3 s behind: every time this process reads,
//                               run start and end times included, is shifted by that much.
// On SIGTERM it sends what is queued and exits 0.
import express from "express";
import { traceable } from "langsmith/traceable";
import { RunTree } from "langsmith/run_trees";
import { langsmithTracing } from "@tracing-patterns/kit";

const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);
if (offset !== 0) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offset;
}
const workMs = Number(process.env.WORK_MS ?? 400);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const triageTicket = traceable(
  async (ticket: { text: string }) => {
    await sleep(workMs);
    return { priority: /down|outage|urgent/i.test(ticket.text) ? "high" : "normal" };
  },
  { name: "triage_ticket" },
);

const app = express();
if (process.env.FREEZE_AFTER_RESPONSE === "true") {
  // The platform, not the function: it freezes the instance once the response is out.
  app.use((_req, res, next) => {
    res.on("finish", () => process.kill(process.pid, "SIGSTOP"));
    next();
  });
}
app.use(langsmithTracing({ trust: "mesh", ...(process.env.FLUSH_BEFORE_END === "true" ? { flushBeforeEnd: { timeoutMs: 5000 } } : {}) }));
app.use(express.json());
app.post("/triage", async (req, res) => {
  res.json(await triageTicket({ text: String(req.body?.text ?? "") }));
});

const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(`${process.env.LANGSMITH_SERVICE ?? "service"} listening on http://127.0.0.1:${port}`);
});
process.on("SIGTERM", () => {
  server.close();
  void RunTree.getSharedClient()
    .awaitPendingTraceBatches()
    .finally(() => process.exit(0));
});
