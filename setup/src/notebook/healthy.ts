/**
 * The trace doctor behind the notebooks' verifying helpers: every trace a cell verifies as healthy
 * (expectTrace, expectIsolated) is also diagnosed, and a problem the doctor finds on it fails the
 * cell, naming the findings; a trace a cell breaks on purpose (expectBrokenTrace with `diagnosis`)
 * must give the doctor exactly the problems the cell names. So the doctor raises no false alarm on a
 * trace the notebooks call healthy, and finds what they break. Silent when it agrees, so cells print
 * what they did.
 *
 *   await doctorAgreesHealthy(new Map([[traceId, runs]]), { helper: "expectTrace", allow: { oversized: "the cell uploads a 1.5 MB document on purpose" } });
 *   await doctorAgreesBroken(traceId, runs, { helper: "expectBrokenTrace", diagnosis: ["split"] });
 *
 * Runs only against the local trace server: the doctor reads related traces around each one (up
 * to 25 more queries), which a notebook run against LangSmith should not spend its rate limit on.
 * With TRACING_PATTERNS_DOCTOR_LOG set (the notebook runner sets it), appends one JSON line per
 * call: the helper, how many traces, how long it took, and the kinds of problem found.
 */
import { appendFileSync } from "node:fs";
import type { Client, Run } from "langsmith";
import { readDoctorBatch } from "../doctor/batch.js";
import { diagnoseTrace } from "../doctor/diagnose.js";
import { formatDiagnosis } from "../doctor/format.js";
import { doctorClient, isLocalTraceServer, readDoctorContext, readDoctorInput } from "../doctor/source.js";
import type { DiagnoseInput, FindingKind, TraceDiagnosis } from "../doctor/types.js";

/** Problems a healthy trace may show, each with the reason the cell expects it: `{ oversized: "why" }`. */
export type FindingAllowance = Partial<Record<FindingKind, string>>;

export interface DoctorCheckOptions {
  /** Which helper asks, for the messages and the log. */
  helper: string;
  allow?: FindingAllowance;
  /** The client the helper read with; the doctor reads through it too. */
  client?: Client;
  /**
   * The one project the helper read. The doctor reads the trace again from every project, as
   * `npm run doctor` does: a trace spread over projects is no fault in itself.
   */
  project?: string;
}

/**
 * Diagnoses each trace (trace id to the runs the helper read) and throws unless every problem found
 * is one `allow` names, and every allowance was needed by some trace.
 */
export async function doctorAgreesHealthy(traces: ReadonlyMap<string, Run[]>, options: DoctorCheckOptions): Promise<void> {
  const started = performance.now();
  const diagnoses = await diagnose(traces, options);
  if (diagnoses === undefined) return;
  const allow = options.allow ?? {};
  // An allowance is used by a finding of its kind at either severity: how sure the doctor is of a
  // split found by time alone depends on which neighbours it read.
  const found = new Set(diagnoses.flatMap((d) => d.findings.map((f) => f.kind)));
  const unexplained = diagnoses.filter((d) => problemKinds(d).some((k) => allow[k] === undefined));
  log(options.helper, traces.size, started, [...found].sort(), Object.keys(allow));
  const first = unexplained[0];
  if (first) {
    const kinds = [...new Set(unexplained.flatMap((d) => problemKinds(d).filter((k) => allow[k] === undefined)))].sort();
    throw new Error(
      `${options.helper}: the trace verified, but the trace doctor reports ${kinds.join(", ")} on ${unexplained.length === 1 ? "it" : `${unexplained.length} of the ${diagnoses.length} traces`}. ` +
        "Either the doctor raises a false alarm (fix its rule in setup/src/doctor, with a test) or the trace is broken in a way the checks missed; " +
        `a problem the cell causes on purpose is named in allowFindings with its reason.${unexplained.length > 1 ? " The first:" : ""}\n${formatDiagnosis(first)}`,
    );
  }
  const unused = (Object.keys(allow) as FindingKind[]).filter((k) => !found.has(k));
  if (unused.length) throw new Error(`${options.helper}: allowFindings names ${unused.join(", ")}, and the doctor found no such problem; drop the allowance.`);
}

/**
 * Diagnoses a trace a cell broke on purpose and throws unless the kinds of what the doctor reports
 * are exactly `diagnosis`. Notes count: a split found by time alone is a note or a problem depending
 * on which neighbours the doctor read, and a note can be the whole story (a trace spread over
 * projects, shown from one of them).
 */
export async function doctorAgreesBroken(traceId: string, runs: Run[], options: DoctorCheckOptions & { diagnosis: readonly FindingKind[] }): Promise<void> {
  const started = performance.now();
  const diagnoses = await diagnose(new Map([[traceId, runs]]), options);
  const d = diagnoses?.[0];
  if (d === undefined) return;
  const found = [...new Set(d.findings.map((f) => f.kind))].sort();
  log(options.helper, 1, started, [...new Set(problemKinds(d))].sort(), []);
  const wanted = [...new Set(options.diagnosis)].sort();
  if (found.join() !== wanted.join()) {
    throw new Error(
      `${options.helper}: the trace is broken as the cell expects, but the trace doctor ${found.length ? `reports ${found.join(", ")}` : "reports nothing"}, ` +
        `not ${wanted.join(", ") || "nothing"}: fix the doctor's diagnosis in setup/src/doctor (with a test), or the cell's.\n${formatDiagnosis(d)}`,
    );
  }
}

function problemKinds(d: TraceDiagnosis): FindingKind[] {
  return d.findings.filter((f) => f.severity === "problem").map((f) => f.kind);
}

const localServers = new Map<string, Promise<boolean>>();

async function diagnose(traces: ReadonlyMap<string, Run[]>, options: DoctorCheckOptions): Promise<TraceDiagnosis[] | undefined> {
  const read = { ...(options.client ? { client: options.client } : {}), waitMs: 1000 };
  const { apiUrl, apiKey } = doctorClient(read);
  let local = localServers.get(apiUrl);
  if (!local) localServers.set(apiUrl, (local = isLocalTraceServer(apiUrl, apiKey)));
  if (!(await local)) return undefined;
  let inputs: DiagnoseInput[];
  if (options.project !== undefined) inputs = await Promise.all([...traces.keys()].map((id) => readDoctorInput(id, read)));
  else if (traces.size === 1) inputs = await Promise.all([...traces].map(([id, runs]) => readDoctorContext(id, runs, read)));
  else inputs = await readDoctorBatch(traces, read);
  return inputs.map((input) => ({ ...diagnoseTrace(input), source: apiUrl }));
}

function log(helper: string, traces: number, started: number, problems: string[], allowed: string[]): void {
  const file = process.env.TRACING_PATTERNS_DOCTOR_LOG;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ helper, traces, ms: Math.round(performance.now() - started), problems, allowed })}\n`);
}
