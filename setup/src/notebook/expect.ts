/**
 * One-call checks for notebook cells: read a trace back through the SDK, show it, verify it, and
 * throw a readable report when it is not what the cell claims. Built on readTrace, verifyTrace,
 * displayTrace and formatReport (setup/src/traces).
 *
 *   const trace = await expectTrace(traceId, { rootName: "client_call", services: ["client", "server"], minRuns: 2,
 *     metadata: { "POST /summarize": { "trace.inbound": "continued" } } });
 *   trace.run("summarize").outputs;
 *   await expectBrokenTrace(otherId, { services: ["gateway", "orchestrator"], problem: 'no run from service "orchestrator"' });
 *   expectEqual("x-trace-id names the caller's trace", response.xTraceId, traceId);
 *
 * The report's first line, `trace <id>: OK`, is what the notebook runner counts as a verified trace.
 */
import { inspect, isDeepStrictEqual } from "node:util";
import type { Client, Run } from "langsmith";
import { readTrace, type ReadTraceOptions } from "../traces/read.js";
import { displayTrace, renderTraceText } from "../traces/render.js";
import { formatReport, verifyTrace, type TraceExpectations, type TraceReport } from "../traces/verify.js";
import type { FindingKind } from "../doctor/types.js";
import { doctorAgreesBroken, doctorAgreesHealthy, type FindingAllowance } from "./healthy.js";

export interface TraceCheck extends TraceExpectations {
  /** Metadata values by run name: every run of that name must carry each of them. */
  metadata?: Record<string, Record<string, unknown>>;
  /** The error of each named run: text it contains, a pattern it matches, or null for "no error". */
  errors?: Record<string, string | RegExp | null>;
  /** Read only this project: runs stored anywhere else are missing from the check. */
  project?: string;
  /** Passed to readTrace; `expectRuns` defaults to `minRuns`. */
  read?: ReadTraceOptions;
  /**
   * expectTrace: problems the trace doctor may find on this verified trace, each with the reason the
   * cell causes it on purpose (`{ oversized: "the cell traces a whole document" }`). Any other
   * problem the doctor finds fails the cell.
   */
  allowFindings?: FindingAllowance;
  /**
   * expectBrokenTrace: the kinds of finding (problems and notes) the trace doctor must report on the
   * broken trace, exactly (`[]`: a break the doctor cannot see, such as a callee that traces nothing).
   */
  diagnosis?: FindingKind[];
  /**
   * What the cell shows: the inline view and the report ("view", the default), the text tree and
   * the report ("tree"), the report alone ("report"), its first line ("line"), or nothing ("none").
   */
  show?: "view" | "tree" | "report" | "line" | "none";
}

export interface CheckedTrace {
  traceId: string;
  runs: Run[];
  report: TraceReport;
  /** The first run with this name; throws, listing the names there are, when none has it. */
  run(name: string): Run;
  /** That run's metadata (`extra.metadata`), `{}` when it has none. */
  metadata(name: string): Record<string, unknown>;
}

/**
 * Reads the trace, shows it, and throws the full report unless it verifies: one root, no orphans,
 * one trace id, the expected root, run names and services, children inside their parents' time
 * windows, every run ended, plus the `metadata` and `errors` of named runs. Then the trace doctor
 * must find no problem on it but the ones `allowFindings` names (notebook/healthy.ts).
 */
export async function expectTrace(traceId: string, check: TraceCheck = {}): Promise<CheckedTrace> {
  if (!traceId) throw new Error("expectTrace: no trace id (did the call make a trace? is tracing on?)");
  const runs = await readTrace(traceId, readOptions(check, check.minRuns));
  const trace = checked(traceId, runs, check);
  show(trace, check.show ?? "view");
  if (!trace.report.ok) throw new Error(formatReport(trace.report));
  await doctorAgreesHealthy(new Map([[traceId, runs]]), { helper: "expectTrace", ...doctorOptions(check) });
  return trace;
}

/**
 * For the broken variant of a pattern: reads what arrived of the trace (nothing at all is a finding
 * too), shows it, and throws unless the check fails with a problem matching `problem` and, when
 * `diagnosis` is given, the trace doctor reports exactly those kinds of finding. Returns the trace
 * so the cell can show more of it.
 */
export async function expectBrokenTrace(traceId: string, check: TraceCheck & { problem: string | RegExp }): Promise<CheckedTrace> {
  if (!traceId) throw new Error("expectBrokenTrace: no trace id (did the call make a trace? is tracing on?)");
  let runs: Run[];
  try {
    runs = await readTrace(traceId, readOptions(check, undefined));
  } catch (error) {
    if (!(error instanceof Error && error.message.startsWith("No runs of trace"))) throw error;
    runs = [];
  }
  const trace = checked(traceId, runs, check);
  show(trace, runs.length === 0 ? "report" : (check.show ?? "view"));
  if (trace.report.ok) {
    throw new Error(`expected trace ${traceId} to be broken (${String(check.problem)}), and it verified OK:\n${formatReport(trace.report)}`);
  }
  if (!trace.report.problems.some((p) => matches(p, check.problem))) {
    throw new Error(`expected a problem matching ${String(check.problem)}; the report says:\n${formatReport(trace.report)}`);
  }
  if (check.diagnosis) await doctorAgreesBroken(traceId, runs, { helper: "expectBrokenTrace", ...doctorOptions(check), diagnosis: check.diagnosis });
  return trace;
}

/** Deep equality of a value the cell computed; prints `ok  <label>`, or throws naming what differs. */
export function expectEqual<T>(label: string, actual: T, expected: T): void {
  if (!isDeepStrictEqual(actual, expected)) throw new Error(`${label}: ${difference(actual, expected)}`);
  console.log(`ok  ${label}`);
}

/** A string (a header, an error message) that must match a pattern; prints `ok  <label>`. */
export function expectMatch(label: string, actual: string | null | undefined, pattern: RegExp): void {
  if (typeof actual !== "string" || !pattern.test(actual)) throw new Error(`${label}: ${JSON.stringify(actual)} does not match ${pattern}`);
  console.log(`ok  ${label}`);
}

/** Calls fn and expects it to throw (or reject) with a message matching `pattern`; prints the message's first line. */
export async function expectThrows(label: string, fn: () => unknown, pattern: RegExp): Promise<void> {
  let message: string | undefined;
  try {
    await fn();
  } catch (error) {
    message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
  if (message === undefined) throw new Error(`${label}: expected an error matching ${pattern}, and the call succeeded`);
  if (!pattern.test(message)) throw new Error(`${label}: expected an error matching ${pattern}, got ${message}`);
  console.log(`ok  ${label}: ${message.split("\n")[0]}`);
}

/** The first run of that name in a run set; throws, listing the names there are, when none has it. */
export function runNamed(runs: readonly Run[], name: string): Run {
  const run = runs.find((r) => r.name === name);
  if (!run) throw new Error(`no run named "${name}" (runs: ${[...new Set(runs.map((r) => r.name))].join(", ") || "none"})`);
  return run;
}

/** A run's metadata (`extra.metadata`), `{}` when it has none. */
export function metadataOf(run: Run): Record<string, unknown> {
  const metadata = (run.extra as { metadata?: unknown } | undefined)?.metadata;
  return typeof metadata === "object" && metadata !== null ? (metadata as Record<string, unknown>) : {};
}

function readOptions(check: TraceCheck, minRuns: number | undefined): ReadTraceOptions {
  const options: ReadTraceOptions = { ...check.read };
  if (options.expectRuns === undefined && minRuns !== undefined) options.expectRuns = minRuns;
  if (check.project !== undefined) options.projectName = check.project;
  return options;
}

function doctorOptions(check: TraceCheck): { allow?: FindingAllowance; client?: Client; project?: string } {
  return {
    ...(check.allowFindings ? { allow: check.allowFindings } : {}),
    ...(check.read?.client ? { client: check.read.client } : {}),
    ...(check.project !== undefined ? { project: check.project } : {}),
  };
}

function checked(traceId: string, runs: Run[], check: TraceCheck): CheckedTrace {
  const expectations: TraceExpectations = { traceId };
  for (const key of ["services", "runNames", "minRuns", "rootName", "traceId", "skewMs"] as const) {
    if (check[key] !== undefined) Object.assign(expectations, { [key]: check[key] });
  }
  const report = verifyTrace(runs, expectations);
  const extra = [...metadataProblems(runs, check.metadata ?? {}), ...errorProblems(runs, check.errors ?? {})];
  if (check.skewMs !== undefined) {
    // A relaxed time window is a decision the reader should see: say what the default one flags.
    const strict = verifyTrace(runs, { ...expectations, skewMs: undefined }).problems.filter((p) => !report.problems.includes(p));
    if (strict.length) console.log(`time window relaxed (skewMs ${check.skewMs}); the default 50 ms window reports:\n${strict.map((p) => `  - ${p}`).join("\n")}`);
  }
  const full: TraceReport = { ...report, ok: report.ok && extra.length === 0, problems: [...report.problems, ...extra] };
  return shownAs("", {
    traceId,
    runs,
    report: full,
    run: (name) => runNamed(runs, name),
    metadata: (name) => metadataOf(runNamed(runs, name)),
  });
}

/**
 * tslab prints the value of a cell's last expression, so `await expectTrace(...)` at the end of a
 * cell would print every run a second time; the check has already shown the trace and the report.
 */
export function shownAs<T extends object>(text: string, value: T): T {
  Object.defineProperty(value, inspect.custom, { value: () => text, enumerable: false });
  return value;
}

function metadataProblems(runs: readonly Run[], expected: Record<string, Record<string, unknown>>): string[] {
  const problems: string[] = [];
  for (const [name, values] of Object.entries(expected)) {
    const named = runs.filter((r) => r.name === name);
    if (named.length === 0) problems.push(`no run named "${name}" to check metadata on`);
    for (const run of named) {
      const metadata = metadataOf(run);
      for (const [key, value] of Object.entries(values)) {
        if (!isDeepStrictEqual(metadata[key], value)) {
          problems.push(`run "${name}" (…${run.id.slice(-8)}): metadata ${key} is ${JSON.stringify(metadata[key])}, expected ${JSON.stringify(value)}`);
        }
      }
    }
  }
  return problems;
}

function errorProblems(runs: readonly Run[], expected: Record<string, string | RegExp | null>): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(expected)) {
    const named = runs.filter((r) => r.name === name);
    if (named.length === 0) problems.push(`no run named "${name}" to check its error`);
    for (const run of named) {
      const error = run.error ?? null;
      const ok = want === null ? error === null : error !== null && matches(error, want);
      if (!ok) problems.push(`run "${name}" (…${run.id.slice(-8)}): error is ${JSON.stringify(error?.split("\n")[0] ?? null)}, expected ${want === null ? "none" : String(want)}`);
    }
  }
  return problems;
}

function matches(text: string, pattern: string | RegExp): boolean {
  return typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
}

function show(trace: CheckedTrace, mode: NonNullable<TraceCheck["show"]>): void {
  if (mode === "view" && trace.runs.length > 0) displayTrace(trace.runs);
  if (mode === "tree" && trace.runs.length > 0) console.log(renderTraceText(trace.runs));
  if (mode === "line") console.log(formatReport(trace.report).split("\n")[0]);
  else if (mode !== "none") console.log(formatReport(trace.report));
}

function difference(actual: unknown, expected: unknown): string {
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isRecord(actual) && isRecord(expected)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].filter((k) => !isDeepStrictEqual(actual[k], expected[k]));
    return keys.map((k) => `${k} is ${JSON.stringify(actual[k])}, expected ${JSON.stringify(expected[k])}`).join("; ");
  }
  return `got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`;
}
