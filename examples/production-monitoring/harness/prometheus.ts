/**
 * A throwaway Prometheus for the demo and the tests: Debian's `prometheus` as a
 * child process on a free loopback port, its storage in a temporary directory
 * (deleted on stop), scraping every second the targets you give it (a file
 * Prometheus watches, so they can change while it runs), with this example's
 * recording and alert rules loaded. Never a system service.
 *
 *   const prom = await startPrometheus({ targets: { assistant: [url1], accounts: [url2] } });
 *   await prom.waitFor('sum(http_requests_total{service="assistant"})', (v) => v >= 10);
 *   await prom.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";

/** This example's rules (recording and alerts), checked by `promtool check rules`. */
export const RULES_FILE = join(dirname(fileURLToPath(import.meta.url)), "..", "prometheus", "rules.yml");

export interface PrometheusOptions {
  /** Job name -> base URLs of services that serve /metrics. */
  targets?: Record<string, string[]>;
  /** Default 0: a free loopback port. */
  port?: number;
  /** Default `prometheus` from PATH (Debian's package installs /usr/bin/prometheus). */
  bin?: string;
  /** Scrape and rule evaluation interval. Default "1s", so tests and demos see data quickly. */
  interval?: string;
  /** Deadline for /-/ready. Default 30000 ms. */
  timeoutMs?: number;
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface Prometheus {
  /** http://127.0.0.1:<port> (its UI and HTTP API). */
  url: string;
  /** Replaces the scrape targets; Prometheus re-reads the file by itself. */
  setTargets(targets: Record<string, string[]>): Promise<void>;
  /** An instant PromQL query through the HTTP API. */
  query(promql: string): Promise<Sample[]>;
  /** Polls `query` until the summed value satisfies `ok`; rejects with the last value at `timeoutMs` (default 30000). */
  waitFor(promql: string, ok: (value: number | undefined) => boolean, timeoutMs?: number): Promise<number | undefined>;
  output(): string;
  /** SIGTERM, wait, delete the storage. Idempotent. */
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions = {}): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), "prometheus-"));
  const port = options.port || (await freePort());
  const interval = options.interval ?? "1s";
  const targetsFile = join(dir, "targets.json");
  const setTargets = async (targets: Record<string, string[]>): Promise<void> => {
    const groups = Object.entries(targets).map(([job, urls]) => ({ targets: urls.map((u) => new URL(u).host), labels: { job } }));
    // Written whole and renamed, so Prometheus never reads half a file.
    await writeFile(`${targetsFile}.tmp`, JSON.stringify(groups));
    await rename(`${targetsFile}.tmp`, targetsFile);
  };
  await setTargets(options.targets ?? {});
  const config = [
    "global:",
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    "rule_files:",
    `  - ${JSON.stringify(RULES_FILE)}`,
    "scrape_configs:",
    "  - job_name: services",
    "    file_sd_configs:",
    `      - files: [${JSON.stringify(targetsFile)}]`,
    "        refresh_interval: 1s",
    "",
  ].join("\n");
  await writeFile(join(dir, "prometheus.yml"), config);

  const child = spawn(
    options.bin ?? "prometheus",
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  for (const stream of [child.stdout, child.stderr]) stream?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-64 * 1024)));
  // A test runner that dies must not leave Prometheus behind.
  const killOnExit = (): void => void child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    await ready(child, url, options.timeoutMs ?? 30_000, () => log);
  } catch (error) {
    await stop();
    throw error;
  }

  const query = async (promql: string): Promise<Sample[]> => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== "success" || !body.data) throw new Error(`PromQL ${promql}: ${body.error ?? response.status}`);
    if (body.data.resultType !== "vector") throw new Error(`PromQL ${promql}: expected a vector, got ${body.data.resultType}`);
    return body.data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  };
  return {
    url,
    setTargets,
    query,
    async waitFor(promql, ok, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: number | undefined;
      for (;;) {
        const samples = await query(promql);
        last = samples.length === 0 ? undefined : samples.reduce((sum, s) => sum + s.value, 0);
        if (ok(last)) return last;
        if (Date.now() > deadline) throw new Error(`PromQL ${promql}: still ${last} after ${timeoutMs} ms`);
        // Polling a condition, not waiting for time to pass: the next scrape is at most one interval away.
        await delay(250);
      }
    },
    output: () => log,
    stop,
  };
}

/** The Prometheus graph page with these expressions, over the last `range` (default 5m). */
export function graphUrl(base: string, expressions: readonly string[], range = "5m"): string {
  const params = new URLSearchParams();
  expressions.forEach((expr, i) => {
    params.set(`g${i}.expr`, expr);
    params.set(`g${i}.tab`, "0");
    params.set(`g${i}.range_input`, range);
  });
  return `${base}/graph?${params}`;
}

/** Resolves once GET /-/ready answers 200; rejects if the process exits first or at the deadline. */
async function ready(child: ChildProcess, url: string, timeoutMs: number, log: () => string): Promise<void> {
  const exited = once(child, "exit").then(([code, signal]) => {
    throw new Error(`prometheus exited (${code ?? signal}) before it was ready:\n${log()}`);
  });
  exited.catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answered = await Promise.race([
      fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      ),
      exited,
    ]);
    if (answered) return;
    await delay(100);
  }
  throw new Error(`prometheus was not ready within ${timeoutMs} ms:\n${log()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
