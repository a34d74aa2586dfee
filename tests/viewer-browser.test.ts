// The trace viewer in real headless Chromium (Debian's, driven by playwright-core):
// traces made through the SDK by services talking over HTTP, opened from the
// list, checked for tree shape, service colours, selection, keyboard use, broken
// traces, live updates of a trace and of the list, and inert hostile strings.
// Screenshots land in test-artifacts/screenshots/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client, getDefaultProjectName, RunTree } from "langsmith";
import { chromium, type Browser, type Page } from "playwright-core";
import {
  readTrace,
  renderTraceHtml,
  serviceMetadata,
  startModelServer,
  startTraceServer,
  type ModelServerHandle,
  type TraceServerHandle,
} from "@tracing-patterns/setup";
import { CHROMIUM_PATH, chromiumLaunchOptions, recordDemoTraces, waitForTrace, type DemoTraces } from "../setup/src/viewer/demo.js";

const SHOTS = join(process.cwd(), "test-artifacts", "screenshots");
const haveChromium = existsSync(CHROMIUM_PATH);
// Locally a missing browser skips with a reason; in CI (where setup/bin/run installs it) it must run.
const skip = !haveChromium && !process.env.CI ? `Debian chromium not found at ${CHROMIUM_PATH}; run \`npm test\` (it installs it) or apt-get install chromium` : false;

describe("trace viewer in Chromium", { skip, timeout: 120_000 }, () => {
  let traces: TraceServerHandle;
  let model: ModelServerHandle;
  let browser: Browser;
  let demo: DemoTraces;
  let client: Client;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    traces = await startTraceServer({ port: 0 });
    model = await startModelServer({ port: 0 });
    client = new Client({ apiUrl: traces.url, apiKey: "local" });
    demo = await recordDemoTraces({ traceServerUrl: traces.url, modelUrl: model.url });
    await waitForTrace(traces.url, demo.multiService, 9);
    await waitForTrace(traces.url, demo.broken, 2);
    browser = await chromium.launch(chromiumLaunchOptions());
  });

  after(async () => {
    await browser?.close();
    await client?.awaitPendingTraceBatches();
    await Promise.all([traces?.close(), model?.close()]);
  });

  async function newPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    page.on("dialog", (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    return { page, problems };
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, name), fullPage: true });
  }

  /** Name, nesting level and parent name of every tree row, top to bottom. */
  async function treeRows(page: Page, section = "#trace-tree"): Promise<Array<{ name: string; level: number; parent: string | null }>> {
    return page.$$eval(`${section} tr.wf-row`, (rows) => {
      const names = new Map(rows.map((r) => [(r as HTMLElement).dataset.runId, r.querySelector(".wf-link")?.textContent ?? ""]));
      return rows.map((r) => {
        const el = r as HTMLElement;
        return { name: el.querySelector(".wf-link")?.textContent ?? "", level: Number(el.getAttribute("aria-level")), parent: el.dataset.parentId ? (names.get(el.dataset.parentId) ?? "?") : null };
      });
    });
  }

  test("list -> trace: one tree across three services, coloured by service, details on click and by keyboard", async () => {
    const { page, problems } = await newPage();
    await page.goto(`${traces.url}/`);
    const row = page.locator(`tr[data-trace-id="${demo.multiService}"]`);
    await row.waitFor();
    assert.deepEqual(await row.locator(".chip").allTextContents(), ["gateway", "rag-service", "tools-service"]);
    assert.equal((await row.locator("td").nth(3).textContent())?.trim(), "9");
    assert.equal(await row.locator(".badge-ok").textContent(), "complete");
    assert.equal(await row.locator(".badge-error").textContent(), "error", "a tool failed inside the trace");
    await shot(page, "viewer-list.png");

    await row.getByRole("link", { name: "POST /ask" }).click();
    await page.waitForURL(`**/traces/${demo.multiService}`);
    assert.equal(await page.locator("h1").textContent(), "POST /ask");

    const rows = await treeRows(page);
    assert.deepEqual(rows[0], { name: "POST /ask", level: 1, parent: null });
    const shape = new Map(rows.map((r) => [r.name, `${r.level}:${r.parent}`]));
    assert.deepEqual(Object.fromEntries(shape), {
      "POST /ask": "1:null",
      plan_request: "2:POST /ask",
      "call rag-service": "2:POST /ask",
      answer_question: "3:call rag-service",
      retrieve_docs: "4:answer_question",
      ChatOpenAI: "4:answer_question",
      "call tools-service": "2:POST /ask",
      lookup_order: "3:call tools-service",
      fetch_order_status: "4:lookup_order",
    });
    // Indentation follows the level.
    const indents = await page.$$eval("#trace-tree tr.wf-row td.wf-name", (cells) => cells.map((c) => parseFloat(getComputedStyle(c).paddingLeft)));
    rows.forEach((r, i) => assert.equal(indents[i], 6 + (r.level - 1) * 14));

    // Bars are painted in their service's legend colour; three services, three colours.
    const legend = await page.$$eval(".legend-item", (items) =>
      items.map((i) => [i.textContent ?? "", getComputedStyle(i.querySelector(".wf-swatch") as Element).backgroundColor] as const),
    );
    assert.deepEqual(legend.map(([s]) => s), ["gateway", "rag-service", "tools-service"]);
    const legendColor = new Map(legend);
    assert.equal(new Set(legendColor.values()).size, 3);
    const bars = await page.$$eval("#trace-tree tr.wf-row", (trs) =>
      trs.map((tr) => [(tr.querySelector(".wf-link")?.textContent ?? ""), (tr as HTMLElement).dataset.service ?? "", getComputedStyle(tr.querySelector(".wf-bar") as Element).backgroundColor] as const),
    );
    for (const [name, service, color] of bars) assert.equal(color, legendColor.get(service), `${name} (${service})`);
    assert.equal(bars.find(([n]) => n === "ChatOpenAI")?.[1], "rag-service", "an unlabelled run takes its parent's service");

    // The failing tool is highlighted.
    const failing = page.locator("#trace-tree tr.wf-row", { hasText: "fetch_order_status" });
    assert.match((await failing.getAttribute("class")) ?? "", /wf-error/);
    assert.equal(await failing.locator(".wf-bar-error").count(), 1);

    // Click a run: its inputs, streamed tokens and service appear, and the URL names it.
    await page.locator("#trace-tree tr.wf-row", { hasText: "ChatOpenAI" }).click();
    const details = page.locator("#run-details");
    await details.locator("h2", { hasText: "ChatOpenAI" }).waitFor();
    assert.match((await details.textContent()) ?? "", /Inputs[\s\S]*How do I trace a request across services\?/);
    assert.match((await details.textContent()) ?? "", /streamed tokens?:/);
    assert.match(page.url(), /\?run=[0-9a-f-]{36}$/);
    assert.equal(await page.locator('#trace-tree tr[aria-selected="true"]').count(), 1);

    // The run that continued the trace in another service says where it came from.
    await page.locator("#trace-tree tr.wf-row", { hasText: "answer_question" }).click();
    await details.locator("h2", { hasText: "answer_question" }).waitFor();
    assert.match((await details.locator(".hop").textContent()) ?? "", /continued by rag-service from gateway/);
    await shot(page, "viewer-trace.png");

    // Keyboard: Home, Down, Enter selects; Left folds a subtree, Right unfolds it.
    const first = page.locator("#trace-tree tr.wf-row").first();
    await first.focus();
    await page.keyboard.press("Home");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await details.locator("h2", { hasText: "plan_request" }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.querySelector(".wf-link")?.textContent), "plan_request");
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement?.querySelector(".wf-link")?.textContent), "call rag-service");
    await page.keyboard.press("ArrowLeft");
    assert.equal(await page.locator("#trace-tree tr.wf-row", { hasText: "answer_question" }).isHidden(), true, "folded");
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement?.querySelector(".wf-link")?.textContent), "call tools-service", "folded rows are skipped");
    await page.keyboard.press("ArrowUp");
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.locator("#trace-tree tr.wf-row", { hasText: "answer_question" }).isVisible(), true, "unfolded");

    assert.deepEqual(problems, []);
    await page.close();
  });

  test("a broken trace looks broken: orphan section, rejected run, incomplete in the list", async () => {
    const { page, problems } = await newPage();
    await page.goto(`${traces.url}/`);
    const row = page.locator(`tr[data-trace-id="${demo.broken}"]`);
    assert.equal(await row.locator(".badge-broken").textContent(), "incomplete: 1 orphan, 1 rejected");
    await row.getByRole("link", { name: "POST /checkout" }).click();
    await page.waitForURL(`**/traces/${demo.broken}`);

    assert.match((await page.locator(".badges .badge-broken").textContent()) ?? "", /broken trace: 1 orphaned, 1 rejected/);
    assert.deepEqual(await treeRows(page), [{ name: "POST /checkout", level: 1, parent: null }]);
    const orphans = page.locator("#trace-orphans");
    assert.equal(await orphans.locator("h2").textContent(), "Orphaned runs (parent missing)");
    assert.deepEqual((await treeRows(page, "#trace-orphans")).map((r) => r.name), ["charge_card"]);
    assert.equal(await orphans.locator(".wf-orphan").first().textContent(), "orphan ");
    const rejected = page.locator("#trace-rejections tbody tr");
    assert.equal(await rejected.count(), 1);
    assert.match((await rejected.textContent()) ?? "", /child_segments[\s\S]*send_receipt/);

    await orphans.locator("tr.wf-row").click();
    await page.locator("#run-details .danger", { hasText: "is missing from this trace" }).waitFor();
    await shot(page, "viewer-broken.png");
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("a trace in progress updates in place: new runs appear and ended runs stop running", async () => {
    const { page, problems } = await newPage();
    const root = new RunTree({ name: "long_job", run_type: "chain", inputs: { step: 0 }, client, tracingEnabled: true, metadata: serviceMetadata("scheduler") });
    await root.postRun();
    const step = root.createChild({ name: "step_one", run_type: "tool", inputs: { n: 1 }, metadata: serviceMetadata("worker") });
    await step.postRun();
    await client.awaitPendingTraceBatches();

    await page.goto(`${traces.url}/traces/${root.trace_id}`);
    await page.locator("tr.wf-row").nth(1).waitFor();
    assert.equal(await page.locator("tr.wf-running").count(), 2);
    await page.locator("#live-status", { hasText: "2 runs still running" }).waitFor();
    // Marks this document: a reload would lose it.
    await page.evaluate(() => {
      (window as unknown as { marker: string }).marker = "same document";
    });

    const late = root.createChild({ name: "step_two", run_type: "llm", inputs: { n: 2 } });
    await late.postRun();
    await client.awaitPendingTraceBatches();
    await page.locator("#trace-tree tr.wf-row", { hasText: "step_two" }).waitFor();

    await step.end({ ok: true });
    await step.patchRun();
    await late.end({ ok: true });
    await late.patchRun();
    await root.end({ done: true });
    await root.patchRun();
    await client.awaitPendingTraceBatches();
    await page.waitForFunction(() => document.querySelectorAll("tr.wf-running").length === 0 && document.querySelectorAll("tr.wf-ok").length === 3);
    assert.equal(await page.locator(".badges .badge-running").count(), 0);
    assert.equal(await page.locator(".badges .badge-ok").textContent(), "complete");
    assert.deepEqual((await treeRows(page)).map((r) => `${r.level}:${r.name}`), ["1:long_job", "2:step_one", "2:step_two"]);
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), "same document");
    await page.locator("#live-status", { hasText: "all runs ended" }).waitFor();
    await shot(page, "viewer-live.png");
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("the list shows a trace that arrives after it loaded, and its end, without a reload", async () => {
    const { page, problems } = await newPage();
    const tag = `arrives-later-${randomUUID().slice(0, 8)}`;
    await page.goto(`${traces.url}/?name=${tag}`);
    await page.locator("#trace-rows td.empty", { hasText: "No traces match these filters." }).waitFor();
    await page.evaluate(() => {
      (window as unknown as { marker: string }).marker = "same document";
    });

    const run = new RunTree({ name: `${tag} job`, run_type: "chain", inputs: {}, client, tracingEnabled: true, metadata: serviceMetadata("scheduler") });
    await run.postRun();
    await client.awaitPendingTraceBatches();
    const row = page.locator(`tr[data-trace-id="${run.trace_id}"]`);
    await row.locator(".badge-running", { hasText: "running" }).waitFor();
    assert.equal(await row.getByRole("link").textContent(), `${tag} job`);

    await run.end({ done: true });
    await run.patchRun();
    await client.awaitPendingTraceBatches();
    await row.locator(".badge-ok", { hasText: /^ok$/ }).waitFor();
    assert.equal(await page.locator("tr.trace-row").count(), 1, "the page's name filter holds for the rows it swaps in");
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), "same document");
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("the list opens on the project the SDK writes to; All projects in the picker shows the others", async () => {
    const { page, problems } = await newPage();
    const elsewhere = `elsewhere-${randomUUID().slice(0, 8)}`;
    const run = new RunTree({ name: `${elsewhere} job`, run_type: "chain", inputs: {}, client, tracingEnabled: true, project_name: elsewhere });
    await run.postRun();
    await run.end({ done: true });
    await run.patchRun();
    await client.awaitPendingTraceBatches();
    await waitForTrace(traces.url, run.trace_id, 1);

    await page.goto(`${traces.url}/`);
    await page.locator(`tr[data-trace-id="${demo.multiService}"]`).waitFor();
    const picker = page.getByRole("combobox", { name: "Project" });
    assert.equal(await picker.inputValue(), getDefaultProjectName(), "the SDK's project is chosen");
    assert.equal(await page.locator(`tr[data-trace-id="${run.trace_id}"]`).count(), 0, "another project's newer trace is not listed");

    await picker.selectOption({ label: "All projects" });
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/\/\?project=&/);
    await page.locator(`tr[data-trace-id="${run.trace_id}"]`).waitFor();
    assert.equal(await page.locator(`tr[data-trace-id="${demo.multiService}"]`).count(), 1, "and the SDK project's traces too");
    assert.equal(await page.getByRole("combobox", { name: "Project" }).inputValue(), "");
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("hostile run names and inputs render as text and run nothing", async () => {
    const { page, problems } = await newPage();
    const payload = `<img src=x onerror="alert('name')"><script>alert('script')</script>`;
    const run = new RunTree({ name: `xss ${payload}`, run_type: "chain", inputs: { q: `</pre>${payload}` }, client, tracingEnabled: true, metadata: { [`k${payload}`]: payload } });
    await run.postRun();
    await run.end({ a: payload }, `Error: ${payload}`);
    await run.patchRun();
    await client.awaitPendingTraceBatches();
    await waitForTrace(traces.url, run.trace_id, 1);

    await page.goto(`${traces.url}/traces/${run.trace_id}?run=${run.id}`);
    assert.equal(await page.locator("h1").textContent(), `xss ${payload}`);
    assert.match((await page.locator("#run-details").textContent()) ?? "", /onerror="alert\('name'\)"/);
    assert.equal(await page.locator("main img").count(), 0);
    assert.equal(await page.locator("main script").count(), 0);
    await page.goto(`${traces.url}/?name=xss`);
    assert.equal(await page.locator("main img").count(), 0);
    assert.deepEqual(problems, [], "no dialog, no script error");
    await page.close();
  });

  test("the notebook rendering draws the same tree in the same colours as the page", async () => {
    const runs = await readTrace(demo.multiService, { client, expectRuns: 9 });
    const { page, problems } = await newPage();
    await page.goto(`${traces.url}/traces/${demo.multiService}`);
    const pageColors = await page.$$eval("#trace-tree tr.wf-row", (trs) =>
      trs.map((tr) => [tr.querySelector(".wf-link")?.textContent ?? "", getComputedStyle(tr.querySelector(".wf-bar") as Element).backgroundColor]),
    );
    await page.setViewportSize({ width: 1100, height: 420 });
    await page.setContent(`<!doctype html><body style="margin:16px">${renderTraceHtml(runs, { viewerUrl: traces.url })}</body>`);
    const inlineColors = await page.$$eval("table tr", (trs) =>
      trs.flatMap((tr) => {
        const bar = tr.querySelector("td:last-child div div");
        const name = tr.querySelector("td")?.textContent?.replace(/^[A-Z]/, "") ?? "";
        return bar ? [[name, getComputedStyle(bar).backgroundColor]] : [];
      }),
    );
    assert.deepEqual(inlineColors, pageColors);
    assert.equal(await page.locator(`a[href="${traces.url}/traces/${demo.multiService}"]`).count(), 1, "the stable link");
    await shot(page, "viewer-inline.png");
    assert.deepEqual(problems, []);
    await page.close();
  });
});
