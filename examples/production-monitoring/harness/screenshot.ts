/**
 * A picture of Prometheus graphs for the README: Debian's Chromium (driven by
 * playwright-core, nothing downloaded) opens a graph page and saves it as PNG.
 *
 *   await screenshotGraphs(graphUrl(prom.url, ["sum(rate(http_requests_total[30s]))"]), "docs/images/x.png");
 */
import { chromium } from "playwright-core";

export async function screenshotGraphs(url: string, path: string): Promise<void> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(url, { waitUntil: "networkidle" });
    // Debian's Prometheus 2.42 serves the classic UI (Rickshaw charts): the page is complete when
    // every panel's legend lists at least one series.
    const panels = [...new URL(url).searchParams.keys()].filter((k) => k.endsWith(".expr")).length;
    await page.waitForFunction((n) => document.querySelectorAll(".rickshaw_legend:has(.line)").length >= n, panels, { timeout: 30_000 });
    // The navigation bar is fixed to the top; in a full-page picture it would sit across a chart.
    await page.addStyleTag({ content: "nav.navbar { position: static !important; } body { padding-top: 0 !important; }" });
    await page.screenshot({ path, fullPage: true });
  } finally {
    await browser.close();
  }
}
