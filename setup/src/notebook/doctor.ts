/**
 * The trace doctor in a notebook cell: reads a trace through the SDK from the configured backend,
 * as `npm run doctor -- <trace id>` does, diagnoses it, prints the diagnosis, and checks which kinds
 * of problem it found.
 *
 *   await expectDiagnosis(brokenTraceId, ["split"]);  // throws unless the problems are exactly splits
 *   await expectDiagnosis(fixedTraceId, []);          // throws unless "healthy: no problems found."
 *
 * Notes (findings of severity "note") are printed but never checked: they are not faults.
 */
import { diagnoseTrace } from "../doctor/diagnose.js";
import { formatDiagnosis } from "../doctor/format.js";
import { readDoctorInput, type DoctorReadOptions } from "../doctor/source.js";
import type { DoctorOptions, FindingKind, TraceDiagnosis } from "../doctor/types.js";
import { shownAs } from "./expect.js";

export interface DiagnosisCheck extends DoctorOptions, DoctorReadOptions {
  /** What the cell prints: the whole diagnosis (default), its problems' first lines, or nothing. */
  show?: "full" | "titles" | "none";
}

/**
 * Diagnoses the trace and throws, with the diagnosis, unless the kinds of its problems are exactly
 * `problems` (order and repetition do not matter; `[]` means healthy). Returns the diagnosis.
 */
export async function expectDiagnosis(traceId: string, problems: readonly FindingKind[], check: DiagnosisCheck = {}): Promise<TraceDiagnosis> {
  if (!traceId) throw new Error("expectDiagnosis: no trace id (did the call make a trace? is tracing on?)");
  const { show = "full", skewMs, staleMs, maxPayloadBytes, expectProject, now, ...read } = check;
  const options: DoctorOptions = { skewMs, staleMs, maxPayloadBytes, expectProject, now };
  const diagnosis = diagnoseTrace(await readDoctorInput(traceId, read), dropUndefined(options));
  const text = formatDiagnosis(diagnosis);
  if (show === "full") console.log(text);
  if (show === "titles") console.log(titles(diagnosis));
  const found = [...new Set(diagnosis.findings.filter((f) => f.severity === "problem").map((f) => f.kind))].sort();
  const wanted = [...new Set(problems)].sort();
  if (found.join() !== wanted.join()) {
    throw new Error(`expected the doctor to find ${wanted.length ? wanted.join(", ") : "no problem"}, it found ${found.length ? found.join(", ") : "none"}:\n${text}`);
  }
  return shownAs("", diagnosis);
}

function titles(d: TraceDiagnosis): string {
  const problems = d.findings.filter((f) => f.severity === "problem");
  if (problems.length === 0) return `trace ${d.traceId}: healthy: no problems found.`;
  return [`trace ${d.traceId}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`, ...problems.map((f) => `  - ${f.kind}: ${f.title}`)].join("\n");
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
