// The viewer's threads pages, stats panel and shared trace page in real headless
// Chromium (Debian's, driven by playwright-core), on runs seeded through the
// SDK's routes: navigation from the header, a conversation's turns in order,
// the stats figures and service colours, and a share link opened in a fresh
// browser (no API key cookie) that reaches nothing but its trace.
// Screenshots land in test-artifacts/screenshots/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client } from "langsmith";
import { chromium, type Browser, type Page } from "playwright-core";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { startTraceServer } from "../setup/src/trace-server/index.js";
import { CHROMIUM_PATH, chromiumLaunchOptions } from "../setup/src/viewer/demo.js";
import { LOCAL_KEY } from "./fixtures/trace-server/helpers.js";
import { MINUTE, post, seedConversations, seedServiceRequests, wireRun, type Conversations } from "./fixtures/trace-server/conversations.js";

const SHOTS = join(process.cwd(), "test-artifacts", "screenshots");
const haveChromium = existsSync(CHROMIUM_PATH);
const skip = !haveChromium && !process.env.CI ? `Debian chromium not found at ${CHROMIUM_PATH}; run \`npm test\` (it installs it) or apt-get install chromium` : false;
const HOSTILE = `<img src=x onerror="alert(1)">`;

describe("threads, stats and share pages in Chromium", { skip, timeout: 120_000 }, () => {
  let server: TraceServerHandle;
  let browser: Browser;
  let seed: Conversations;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // With an API key, so the share page is shown to a browser that does not have it.
    server = await startTraceServer({ port: 0, apiKey: LOCAL_KEY });
    seed = await seedConversations(server);
    await seedServiceRequests(server);
    browser = await chromium.launch(chromiumLaunchOptions());
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A page in its own context; `withKey` logs in once through ?key= as a user of the viewer does. */
  async function open(path: string, withKey: boolean): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    page.on("dialog", (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    const url = new URL(path, server.url);
    if (withKey) url.searchParams.set("key", LOCAL_KEY);
    await page.goto(url.toString());
    return { page, problems };
  }

  test("header -> Threads -> a conversation's turns in order -> one turn's trace", async () => {
    const { page, problems } = await open("/", true);
    await page.getByRole("navigation", { name: "Viewer pages" }).getByRole("link", { name: "Threads" }).click();
    await page.waitForURL("**/threads");
    await page.selectOption("select[name=project]", "chat");
    await page.selectOption("select[name=window]", "24h");
    await page.getByRole("button", { name: "Show" }).click();
    await page.waitForURL("**/threads?project=chat&window=24h");
    const threads = await page.locator("tr.thread-row").evaluateAll((rows) => rows.map((r) => [(r as HTMLElement).dataset.threadId, r.querySelectorAll("td")[2]?.textContent]));
    assert.deepEqual(threads, [["t-3", "1"], ["t-2", "1"], ["t-1", "3"]]);
    await page.screenshot({ path: join(SHOTS, "viewer-threads.png"), fullPage: true });

    await page.getByRole("link", { name: "t-1", exact: true }).click();
    await page.waitForURL("**/threads/t-1?project=*");
    const turns = await page.locator("tr.turn-row td:nth-child(3)").allTextContents();
    assert.deepEqual(turns, ["old turn", "turn one", "turn two", "turn three"]);
    assert.equal(await page.locator('[data-stat="Turns"]').textContent(), "4");
    assert.equal(await page.locator('[data-stat="Errored turns"]').textContent(), "1 (25.0%)");
    assert.equal(await page.locator("tr.turn-row").nth(2).locator(".badge").textContent(), "error");
    await page.screenshot({ path: join(SHOTS, "viewer-thread.png"), fullPage: true });

    await page.getByRole("link", { name: "turn two" }).click();
    await page.waitForURL(`**/traces/${seed.t1[2]?.root.trace_id}`);
    assert.equal(await page.locator("h1").textContent(), "turn two");
    assert.deepEqual(problems, []);
  });

  test("Stats: project figures and one row per service, in the trace page's service colours", async () => {
    const { page, problems } = await open("/stats?project=svc&window=24h", true);
    const card = (label: string): Promise<string | null> => page.locator(`[data-stat="${label}"]`).textContent();
    assert.equal(await card("Requests"), "5");
    assert.equal(await card("Error rate"), "20.0%");
    assert.equal(await card("Latency p50"), "300 ms");
    assert.equal(await card("Latency p99"), "500 ms");
    assert.equal(await card("Tokens"), "65");
    const rows = await page.locator("tr.service-row").evaluateAll((trs) =>
      trs.map((tr) => ({
        service: (tr as HTMLElement).dataset.service,
        cells: Array.from(tr.querySelectorAll("td"), (td) => td.textContent),
        color: getComputedStyle(tr.querySelector(".wf-swatch") as Element).backgroundColor,
      })),
    );
    assert.deepEqual(rows.map((r) => [r.service, r.cells[0], r.cells[1], r.cells[5]]), [["gateway", "5", "20.0%", "0"], ["rag-service", "5", "20.0%", "65"]]);
    await page.screenshot({ path: join(SHOTS, "viewer-stats.png"), fullPage: true });

    // The same services on a trace page of the project have the same colours.
    await page.goto(`${server.url}/?project=svc`);
    await page.locator("tr.trace-row a").first().click();
    await page.waitForURL("**/traces/*");
    const legend = new Map(
      await page.$$eval(".legend-item", (items) => items.map((i) => [(i as HTMLElement).dataset.service ?? "", getComputedStyle(i.querySelector(".wf-swatch") as Element).backgroundColor] as const)),
    );
    for (const r of rows) assert.equal(legend.get(r.service ?? ""), r.color, `${r.service} is coloured alike`);
    assert.deepEqual(problems, []);
  });

  test("a share link opens the trace read-only for a browser without the key; unshared, it is a 404", async () => {
    const start = Date.now() - MINUTE;
    const root = wireRun(undefined, { name: "shared request", startMs: start, ms: 40, project: "pub" });
    const child = wireRun(root, { name: HOSTILE, startMs: start + 5, ms: 10, project: "pub", runType: "tool" });
    child.inputs = { note: HOSTILE };
    await post(server, [root, child]);
    const client = new Client({ apiUrl: server.url, apiKey: LOCAL_KEY, webUrl: server.url });
    const url = await client.shareRun(root.id);

    const { page, problems } = await open(url, false);
    assert.equal(await page.locator("h1").textContent(), "shared request");
    assert.equal(await page.evaluate(() => document.scripts.length), 0, "no script");
    await page.locator("tr.wf-row").nth(1).locator(".wf-link").click();
    await page.waitForURL(`**?run=${child.id}`);
    assert.equal(await page.locator("#run-details h2").textContent(), `T${HOSTILE}`, "the tool badge, then the hostile name as text");
    assert.match((await page.locator("#run-details").textContent()) ?? "", /"note": "<img src=x onerror=\\"alert\(1\)\\">"/);
    const hrefs = await page.$$eval("a[href]", (links) => links.map((a) => new URL((a as HTMLAnchorElement).href).pathname));
    assert.ok(hrefs.length >= 2);
    assert.ok(hrefs.every((h) => h === new URL(url).pathname), `every link stays on the shared trace: ${hrefs.join(", ")}`);
    await page.screenshot({ path: join(SHOTS, "viewer-shared.png"), fullPage: true });

    const privatePage = await page.goto(`${server.url}/traces/${root.id}`);
    assert.equal(privatePage?.status(), 401, "the token opens nothing else");
    await client.unshareRun(root.id);
    const revoked = await page.goto(url);
    assert.equal(revoked?.status(), 404);
    assert.equal(await page.locator("h1").textContent(), "Not found");
    assert.deepEqual(problems.filter((p) => !p.includes("status of 40")), []);
  });
});
