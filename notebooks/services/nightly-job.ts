// A one-shot job, as a cron script or a CLI runs it: one traced call to a service, then exit.
// Notebook 06 (section 3) runs it as a child process:
//   TARGET_URL=http://127.0.0.1:<port>/report LANGSMITH_SERVICE=nightly-job FLUSH_BEFORE_EXIT=false \
//     node --conditions=source --import tsx notebooks/services/nightly-job.ts
// It prints "trace <trace id>" when its run starts, and "done <status>" before it exits.
// FLUSH_BEFORE_EXIT=false ends with process.exit() right after the work, as many scripts do: the
// SDK sends runs in background batches, so this process's runs never leave it, while the service
// it called has already stored its own. FLUSH_BEFORE_EXIT=true awaits the client's batches first.
import { Client } from "langsmith";
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { tracedFetch } from "@tracing-patterns/kit";

const target = process.env.TARGET_URL;
if (!target) throw new Error("TARGET_URL is required");
const client = new Client();

const nightlyReport = traceable(
  async (input: { day: string }) => {
    console.log(`trace ${getCurrentRunTree().trace_id}`);
    const response = await tracedFetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
    return { status: response.status, report: await response.json() };
  },
  { name: "nightly_report", client },
);

const result = await nightlyReport({ day: new Date().toISOString().slice(0, 10) });
if (process.env.FLUSH_BEFORE_EXIT === "true") await client.awaitPendingTraceBatches();
console.log(`done ${result.status}`);
process.exit(0);
