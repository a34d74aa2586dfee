// The loop of the hostile-input campaign: fast-check generates the cases of one target from a seed,
// each is sent to a real server process, its answer is judged, and every `probeEvery` cases the
// server must still answer a health probe promptly and still be alive. Use:
//   const report = await runCampaign({ name: "otlp", arbitrary, seed: 42, numRuns: 200, send, judge, probe, alive });
//   // report.cases, report.statuses ({ "200": 180, "400": 20 }), report.violations (the first few, with the case)
import { performance } from "node:perf_hooks";
import fc from "fast-check";

export interface Verdict {
  /** A status bucket to count: "202", "422", "node 400", "no answer". */
  bucket: string;
  /** Set when a property does not hold: what went wrong. */
  violation?: string;
  /** A documented exception (a 501 for a feature the server does not have), counted apart. */
  documented?: boolean;
  /** Valid runs or spans sent beside bad ones that the case found stored. */
  verified?: number;
}

export interface CampaignSpec<C> {
  name: string;
  arbitrary: fc.Arbitrary<C>;
  seed: number;
  numRuns: number;
  /** Sends the case and judges the answer. */
  run: (c: C) => Promise<Verdict>;
  /** A cheap request to the server; resolves when answered 2xx, rejects otherwise. */
  probe: () => Promise<void>;
  /** False once the server's process has exited. */
  alive: () => boolean;
  /** Cases between two health probes. Default 25. */
  probeEvery?: number;
  /** The longest a health probe may take (generous: a loaded 2-core machine). Default 5000 ms. */
  probeBoundMs?: number;
  /** A short description of a case, for a violation report. */
  describe: (c: C) => string;
}

export interface CampaignReport {
  name: string;
  seed: number;
  cases: number;
  statuses: Record<string, number>;
  documented: number;
  /** Valid runs or spans sent beside bad ones, found stored. */
  verified: number;
  violations: Array<{ index: number; problem: string; case: string }>;
  violationCount: number;
  crashed: boolean;
  probes: number;
  worstProbeMs: number;
  elapsedMs: number;
}

const MAX_REPORTED = 10;

/**
 * Runs every case, even after a violation, so the figures count them all. The cases are
 * fc.sample's for the seed: the same seed and numRuns give the same cases.
 */
export async function runCampaign<C>(spec: CampaignSpec<C>): Promise<CampaignReport> {
  const started = performance.now();
  const cases = fc.sample(spec.arbitrary, { seed: spec.seed, numRuns: spec.numRuns });
  const report: CampaignReport = {
    name: spec.name, seed: spec.seed, cases: 0, statuses: {}, documented: 0, verified: 0, violations: [], violationCount: 0, crashed: false, probes: 0, worstProbeMs: 0, elapsedMs: 0,
  };
  const violation = (index: number, problem: string, c: string): void => {
    report.violationCount += 1;
    if (report.violations.length < MAX_REPORTED) report.violations.push({ index, problem, case: c.slice(0, 600) });
  };
  const probeEvery = spec.probeEvery ?? 25;
  const bound = spec.probeBoundMs ?? 5000;
  const probe = async (index: number, last: string): Promise<void> => {
    const t = performance.now();
    try {
      await withDeadline(spec.probe(), bound);
    } catch (err) {
      violation(index, `health probe failed after this case: ${String(err)}`, last);
    }
    const ms = performance.now() - t;
    report.probes += 1;
    report.worstProbeMs = Math.max(report.worstProbeMs, ms);
    if (ms > bound) violation(index, `health probe took ${ms.toFixed(0)} ms`, last);
  };
  for (const [index, c] of cases.entries()) {
    let verdict: Verdict;
    try {
      verdict = await spec.run(c);
    } catch (err) {
      verdict = { bucket: "harness error", violation: `the harness threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}` };
    }
    report.cases += 1;
    report.statuses[verdict.bucket] = (report.statuses[verdict.bucket] ?? 0) + 1;
    if (verdict.documented) report.documented += 1;
    report.verified += verdict.verified ?? 0;
    if (verdict.violation !== undefined) violation(index, verdict.violation, spec.describe(c));
    if (!spec.alive()) {
      report.crashed = true;
      violation(index, "the server process exited", spec.describe(c));
      break;
    }
    if ((index + 1) % probeEvery === 0) await probe(index, spec.describe(c));
  }
  if (!report.crashed) await probe(report.cases - 1, "(end of campaign)");
  report.elapsedMs = performance.now() - started;
  return report;
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Checks shared by every target: a status that is not 5xx, and a refusal that says why. */
export function judgeStatus(status: number, message: string | undefined, documented5xx: readonly number[] = []): Verdict {
  const bucket = String(status);
  if (status >= 500) {
    return documented5xx.includes(status) ? { bucket, documented: true } : { bucket, violation: `answered ${status}${message ? `: ${message.slice(0, 300)}` : ""}` };
  }
  if (status < 200 || (status >= 300 && status < 400 && status !== 303)) return { bucket, violation: `unexpected status ${status}` };
  if (status >= 400 && (message === undefined || message.trim() === "")) return { bucket, violation: `a ${status} without a message` };
  return { bucket };
}
