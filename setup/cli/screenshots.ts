// `npm run screenshots`: regenerates docs/images/viewer-*.png from real traces.
// It starts a trace server and the model endpoint on free ports (in memory),
// records the demo traces through the SDK, and photographs the viewer in
// Debian's chromium, plus the inline rendering a notebook cell shows.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client, RunTree } from "langsmith";
import { chromium } from "playwright-core";
import { readTrace, renderTraceHtml, serviceMetadata, startModelServer, startTraceServer } from "@tracing-patterns/setup";
import { chromiumLaunchOptions, recordDemoTraces, waitForTrace } from "../src/viewer/demo.js";
import { repoRoot } from "./lib/notebooks.js";

const outDir = join(repoRoot, "docs", "images");
mkdirSync(outDir, { recursive: true });

const traces = await startTraceServer({ port: 0 });
const model = await startModelServer({ port: 0 });
const browser = await chromium.launch(chromiumLaunchOptions());
try {
  const demo = await recordDemoTraces({ traceServerUrl: traces.url, modelUrl: model.url });
  await waitForTrace(traces.url, demo.multiService, 9);
  await waitForTrace(traces.url, demo.broken, 2);

  // One request still in flight, so the list shows a running trace too.
  const client = new Client({ apiUrl: traces.url, apiKey: "local" });
  const running = new RunTree({ name: "POST /summarize", run_type: "chain", inputs: { doc: "q3-report.pdf" }, client, tracingEnabled: true, metadata: serviceMetadata("gateway") });
  await running.postRun();
  await client.awaitPendingTraceBatches();

  const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
  const shot = async (name: string): Promise<void> => {
    const path = join(outDir, name);
    await page.screenshot({ path });
    console.log(`wrote ${path}`);
  };

  await page.goto(`${traces.url}/`);
  await shot("viewer-list.png");

  const hop = traces.store.getTraceRuns(demo.multiService).find((r) => r.name === "answer_question");
  await page.goto(`${traces.url}/traces/${demo.multiService}${hop ? `?run=${hop.id}` : ""}`);
  await shot("viewer-trace.png");

  const orphan = traces.store.getTraceRuns(demo.broken).find((r) => r.name === "charge_card");
  await page.goto(`${traces.url}/traces/${demo.broken}${orphan ? `?run=${orphan.id}` : ""}`);
  await shot("viewer-broken.png");

  // What displayTrace shows under a notebook cell: the SDK reads the trace back, renderTraceHtml draws it.
  const runs = await readTrace(demo.multiService, { client, expectRuns: 9 });
  await page.setViewportSize({ width: 1100, height: 420 });
  await page.setContent(
    `<!doctype html><html><body style="margin:0;padding:16px;background:#fff;font-family:system-ui,sans-serif">` +
      `<div style="font-family:ui-monospace,monospace;font-size:13px;color:#303f9f;margin-bottom:6px">In [4]: <span style="color:#1f2328">displayTrace(await readTrace(traceId))</span></div>` +
      `<div style="border-left:3px solid #d0d7de;padding-left:12px">${renderTraceHtml(runs, { viewerUrl: traces.url })}</div></body></html>`,
  );
  await shot("viewer-inline.png");
} finally {
  await browser.close();
  await Promise.all([traces.close(), model.close()]);
}
