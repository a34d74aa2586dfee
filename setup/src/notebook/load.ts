/**
 * Concurrency drivers and judges for notebook cells that ask "does every request get exactly its
 * own trace under load?". A request is identified by a `request_id` input on its root and on every
 * step doing its work; the isolation check (examples/async-streaming's checkIsolation, passed in)
 * looks for runs carrying another request's id, which the structural checks cannot see.
 *
 *   const isolation = { checkIsolation, formatIsolation };
 *   const traces = await concurrentRequests(100, (request_id) => handle(request_id));
 *   await expectIsolated(traces, { runNames: ["lookup"], ownRuns: 6, ...isolation });
 *   const worst = await expectLeaks(brokenTraces, { runNames: ["lookup"], ownRuns: 5, ...isolation });
 *
 * HTTP services: `postConcurrently(url, 20)` sends `{ request_id }` bodies and collects x-trace-id.
 */
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { isRunTree } from "langsmith/run_trees";
import type { Run } from "langsmith";
import { readTrace, type ReadTraceOptions } from "../traces/read.js";
import { formatReport, verifyTrace, type TraceExpectations } from "../traces/verify.js";
import { postJson } from "./calls.js";
import { shownAs } from "./expect.js";
import { doctorAgreesHealthy } from "./healthy.js";

/** The shape of examples/async-streaming's IsolationReport that the judges read. */
export interface IsolationResult {
  ok: boolean;
  /** Runs that carry this request's id. */
  own: number;
}

export interface RequestChecks<R extends IsolationResult = IsolationResult> extends TraceExpectations {
  /** Runs per trace that must carry the request's own id (the root's `request_id` counts). */
  ownRuns: number;
  checkIsolation: (runs: Run[], requestId: string) => R;
  formatIsolation: (result: R) => string;
  /** Passed to readTrace for each trace: other processes' runs arrive on their own schedule. */
  read?: ReadTraceOptions;
}

export interface Verdict {
  requestId: string;
  traceId: string;
  runs: Run[];
  ok: boolean;
  report: string;
  isolation: string;
}

/** Request ids `req-000`, `req-001`, ...: zero-padded so they sort and never contain one another. */
export function requestIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `req-${String(i).padStart(3, "0")}`);
}

/**
 * Starts `count` requests at once, each a traced root (`name`, default "handle_request") whose input
 * is `{ request_id }`, running `body(requestId)` inside it. Resolves with request id -> trace id.
 */
export async function concurrentRequests(count: number, body: (requestId: string) => Promise<unknown>, options: { name?: string } = {}): Promise<Map<string, string>> {
  const traces = new Map<string, string>();
  const handle = traceable(
    async (input: { request_id: string }) => {
      const current = getCurrentRunTree(true);
      if (isRunTree(current)) traces.set(input.request_id, current.trace_id);
      return body(input.request_id);
    },
    { name: options.name ?? "handle_request" },
  );
  await Promise.all(requestIds(count).map((request_id) => handle({ request_id })));
  return traces;
}

/** `count` concurrent JSON POSTs of `{ request_id }` to url; resolves with request id -> the response's x-trace-id. */
export async function postConcurrently(url: string, count: number): Promise<Map<string, string>> {
  const traces = new Map<string, string>();
  await Promise.all(
    requestIds(count).map(async (request_id) => {
      const response = await postJson(url, { request_id });
      traces.set(request_id, response.traceId);
    }),
  );
  return traces;
}

/** Reads many traces, at most `concurrency` (default 16) at a time, in the order given. */
export async function readTraces(traceIds: readonly string[], options: ReadTraceOptions = {}, concurrency = 16): Promise<Run[][]> {
  const out: Run[][] = new Array<Run[]>(traceIds.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < traceIds.length; i = next++) out[i] = await readTrace(traceIds[i] ?? "", options);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, traceIds.length) }, worker));
  return out;
}

/** Reads every request's trace and judges its structure (verifyTrace) and isolation. */
export async function judgeRequests<R extends IsolationResult>(traces: Map<string, string>, checks: RequestChecks<R>): Promise<Verdict[]> {
  const { ownRuns, checkIsolation, formatIsolation, read, ...expectations } = checks;
  const entries = [...traces];
  const all = await readTraces(entries.map(([, traceId]) => traceId), read);
  return entries.map(([requestId, traceId], i) => {
    const runs = all[i] ?? [];
    const report = verifyTrace(runs, { rootName: "handle_request", ...expectations, traceId });
    const isolation = checkIsolation(runs, requestId);
    return {
      requestId,
      traceId,
      runs,
      ok: report.ok && isolation.ok && isolation.own === ownRuns,
      report: formatReport(report),
      isolation: formatIsolation(isolation),
    };
  });
}

/**
 * For a correct variant: every request's trace must be one complete tree holding exactly its own
 * runs. Prints the summary and one request's report; throws with the first failure's report.
 */
export async function expectIsolated<R extends IsolationResult>(traces: Map<string, string>, checks: RequestChecks<R>): Promise<void> {
  const verdicts = await judgeRequests(traces, checks);
  console.log(summary(verdicts));
  const failed = verdicts.filter((v) => !v.ok);
  const first = failed[0];
  if (first) throw new Error(`${failed.length} of ${verdicts.length} requests failed; the first:\n${first.report}\n${first.isolation}`);
  const shown = verdicts[0];
  if (shown) console.log(`${shown.report}\n${shown.isolation}`);
  await doctorAgreesHealthy(new Map(verdicts.map((v) => [v.traceId, v.runs])), { helper: "expectIsolated", ...(checks.read?.client ? { client: checks.read.client } : {}) });
}

/**
 * For a broken variant: the checks must catch it. Prints the summary, the worst trace's findings
 * (the one with the most runs) and, when different, a request whose work ran elsewhere; returns
 * the worst. Throws when every request was isolated.
 */
export async function expectLeaks<R extends IsolationResult>(traces: Map<string, string>, checks: RequestChecks<R>): Promise<Verdict> {
  const verdicts = await judgeRequests(traces, checks);
  console.log(summary(verdicts));
  const failed = verdicts.filter((v) => !v.ok);
  const [firstFailed] = failed;
  if (!firstFailed) throw new Error(`expected the broken variant to mix runs between requests, and all ${verdicts.length} requests were isolated`);
  const worst = failed.reduce((a, b) => (b.runs.length > a.runs.length ? b : a), firstFailed);
  console.log(`\nworst trace (${worst.requestId}):\n${clip(worst.report, 10)}\n${clip(worst.isolation, 5)}`);
  const fewest = failed.reduce((a, b) => (b.runs.length < a.runs.length ? b : a), firstFailed);
  if (fewest !== worst) console.log(`\na request whose work ran elsewhere (${fewest.requestId}):\n${fewest.report}\n${fewest.isolation}`);
  return shownAs("", worst);
}

function summary(verdicts: readonly Verdict[]): string {
  const passed = verdicts.filter((v) => v.ok).length;
  const sizes = verdicts.map((v) => v.runs.length);
  return `${passed}/${verdicts.length} requests: one complete tree each with exactly their own runs (runs per trace: min ${Math.min(...sizes)}, max ${Math.max(...sizes)})`;
}

/** The first `lines` lines of a report, and how many were left out. */
function clip(text: string, lines: number): string {
  const all = text.split("\n");
  return all.length <= lines ? text : [...all.slice(0, lines), `    ... ${all.length - lines} more lines`].join("\n");
}
