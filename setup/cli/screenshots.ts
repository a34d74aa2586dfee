// `npm run screenshots`: regenerates docs/images/viewer-*.png from real traces.
// It starts a trace server and the model endpoint on free ports (in memory),
// records the demo traces through the SDK, and photographs the viewer in
// Debian's chromium, plus a cell of the environment notebook executed in
// Jupyter, showing the same rendering inline.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Client, RunTree } from "langsmith";
import { chromium } from "playwright-core";
import { serviceMetadata, startModelServer, startTraceServer } from "@tracing-patterns/setup";
import { chromiumLaunchOptions, recordDemoTraces, waitForTrace } from "../src/viewer/demo.js";
import { repoRoot, runNotebook } from "./lib/notebooks.js";

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

  // What displayTrace shows under a notebook cell: the environment notebook really executed in
  // Jupyter with the tslab kernel (against this stack), exported by nbconvert, photographed.
  const executed = await runNotebook(join(repoRoot, "setup", "environment_setup.ipynb"), {
    env: { TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: model.url, LANGSMITH_API_KEY: "", OPENAI_API_KEY: "" },
  });
  if (!executed.ok) throw new Error(`environment_setup.ipynb failed:\n${executed.log}`);
  const html = executed.executedPath.replace(/\.ipynb$/, ".html");
  execFileSync("jupyter-nbconvert", ["--to", "html", executed.executedPath, "--output", html], { stdio: "ignore" });
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.goto(pathToFileURL(html).toString());
  const path = join(outDir, "viewer-inline.png");
  await page.locator(".jp-Cell", { hasText: "displayTrace(runs" }).first().screenshot({ path });
  console.log(`wrote ${path}`);
} finally {
  await browser.close();
  await Promise.all([traces.close(), model.close()]);
}
