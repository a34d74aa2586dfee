/**
 * The trace doctor's findings and a project's health figures as plain text, for the terminal
 * (`npm run doctor`) and notebooks. `--json` prints the objects themselves instead.
 *
 *   console.log(formatDiagnosis(diagnoseTrace(input)));
 */
import type { ProjectHealth } from "./scan.js";
import type { Finding, RunRef, TraceDiagnosis } from "./types.js";

const WIDTH = 100;

/** A trace's diagnosis: a summary line, each problem with its runs, cause and fix, then the notes. */
export function formatDiagnosis(d: TraceDiagnosis): string {
  const problems = d.findings.filter((f) => f.severity === "problem");
  const notes = d.findings.filter((f) => f.severity === "note");
  const lines = [
    `trace ${d.traceId}${d.source ? ` (read from ${d.source})` : ""}`,
    `  ${d.runCount} run${d.runCount === 1 ? "" : "s"} · services ${d.services.join(", ") || "(none)"} · project ${d.projects.join(", ") || "(unknown)"} · completeness ${pct(d.report.completeness)} · propagation ${pct(d.report.propagation)}`,
    "",
  ];
  if (problems.length === 0) lines.push("healthy: no problems found.");
  else {
    lines.push(`${problems.length} problem${problems.length === 1 ? "" : "s"} found:`, "");
    problems.forEach((f, i) => lines.push(findingText(f, i + 1), ""));
  }
  if (notes.length) {
    if (problems.length === 0) lines.push("");
    for (const f of notes) lines.push(findingText(f, undefined), "");
  }
  return lines.join("\n").trimEnd();
}

/** Words of `text` in lines of at most WIDTH characters, the first after `first`, the others after `rest`. */
function wrap(text: string, first: string, rest: string): string {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (empty ? "" : " ") + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join("\n");
}

function runText(r: RunRef): string {
  return `"${r.name}" [${r.service ?? "?"}] …${r.id.slice(-8)}${r.trace ? ` (trace …${r.trace.slice(-8)})` : ""}`;
}

function findingText(f: Finding, n: number | undefined): string {
  const head = n === undefined ? "note: " : `${n}. ${f.kind}: `;
  const pad = " ".repeat(n === undefined ? 6 : String(n).length + 2);
  const parts = [wrap(f.title, head, pad)];
  if (f.runs.length) parts.push(wrap(f.runs.slice(0, 8).map(runText).join(", ") + (f.runs.length > 8 ? `, and ${f.runs.length - 8} more` : ""), `${pad}runs:  `, `${pad}       `));
  parts.push(wrap(f.cause, `${pad}cause: `, `${pad}       `));
  parts.push(wrap(f.fix, `${pad}fix:   `, `${pad}       `));
  return parts.join("\n");
}

function pct(value: number | null): string {
  return value === null ? "n/a" : `${value}%`;
}

function column(values: string[], width: number, right = false): string[] {
  return values.map((v) => (right ? v.padStart(width) : v.padEnd(width)));
}

/** A project scan: the figures overall, a table per service, problems by kind and the worst requests. */
export function formatProjectHealth(h: ProjectHealth): string {
  const lines = [
    `project "${h.project}" since ${h.since}: ${h.traces} trace${h.traces === 1 ? "" : "s"}, ${h.requests} request${h.requests === 1 ? "" : "s"}` +
      (h.traces > h.requests ? ` (${h.traces - h.requests} split off another trace)` : ""),
    `  completeness  ${pct(h.completeness)}  (${h.completeRuns} of ${h.runs} runs connected to their request's root and ended; ${h.completeRequests} of ${h.requests} requests complete)`,
    `  propagation   ${pct(h.propagation)}  (${h.connectedAppearances} of ${h.serviceAppearances} services connected across requests; ${h.fullyPropagatedRequests} of ${h.requests} requests fully propagated)`,
  ];
  if (h.services.length) {
    const names = column(["service", ...h.services.map((s) => s.service)], Math.max(7, ...h.services.map((s) => s.service.length)));
    const runs = column(["runs", ...h.services.map((s) => String(s.runs))], 6, true);
    const comp = column(["completeness", ...h.services.map((s) => `${s.completeness}%`)], 12, true);
    const reqs = column(["requests", ...h.services.map((s) => String(s.requests))], 8, true);
    const prop = column(["propagation", ...h.services.map((s) => `${s.propagation}%`)], 11, true);
    lines.push("");
    names.forEach((n, i) => lines.push(`  ${n}  ${runs[i]}  ${comp[i]}  ${reqs[i]}  ${prop[i]}`));
  }
  const kinds = Object.entries(h.findingsByKind).sort((a, b) => b[1] - a[1]);
  lines.push("", kinds.length ? `  problems: ${kinds.map(([k, n]) => `${k} ${n}`).join(", ")}` : "  problems: none");
  if (h.worst.length) {
    lines.push("", "  worst requests:");
    for (const r of h.worst) {
      lines.push(
        `    ${r.traceId} "${r.rootName ?? "(no root)"}"  completeness ${pct(r.completeness)}  propagation ${pct(r.propagation)}` +
          (r.fragments.length ? `  (+${r.fragments.length} split-off trace${r.fragments.length === 1 ? "" : "s"})` : ""),
      );
      for (const f of r.problems.slice(0, 3)) lines.push(wrap(f.title, `      - ${f.kind}: `, "        "));
      if (r.problems.length > 3) lines.push(`      - and ${r.problems.length - 3} more (npm run doctor -- ${r.traceId})`);
    }
  }
  return lines.join("\n");
}
