/**
 * The trace doctor on the trace viewer's page: diagnoses a trace from the local trace server's
 * store (its runs, its rejections, the traces around it in time and the one its root claims as the
 * caller's), and renders the findings as one HTML section, every string escaped. The viewer's
 * app.ts computes the diagnosis per page state; pages.ts places the section.
 *
 *   const doctor = diagnoseStoredTrace(store, traceId, runs, rejections);
 *   html += renderDoctorSection(doctor, (runId) => tracePath(traceId, runId));
 */
import type { TraceStore } from "../trace-server/store.js";
import type { Rejection, StoredRun } from "../trace-server/types.js";
import { toMs } from "../traces/tree.js";
import { escapeHtml } from "../viewer/render-core.js";
import { metaText } from "./context.js";
import { diagnoseTrace } from "./diagnose.js";
import type { DoctorRun, RelatedTrace, TraceDiagnosis } from "./types.js";

/** How far before a trace the viewer looks for related traces, and how many it reads whole. */
const WINDOW_MS = 60_000;
const MAX_FULL_READS = 20;
/**
 * Runs read of each related trace, the first in execution order (as the trace page shows at most
 * 2,000 of its own): read whole, one big trace nearby in time made every view of a small one slow.
 */
const MAX_RELATED_RUNS = 2000;

function toDoctorRun(run: StoredRun): DoctorRun {
  return { ...run, start_time: run.start_time ?? undefined };
}

/** The same diagnosis `npm run doctor` makes, from the store instead of through the SDK. */
export function diagnoseStoredTrace(store: TraceStore, traceId: string, runs: readonly StoredRun[], rejections: readonly Rejection[]): TraceDiagnosis {
  const now = Date.now();
  const ids = new Set(runs.map((r) => r.id));
  const byRun = new Map(rejections.map((r) => [r.seq, r]));
  for (const run of runs) {
    if (run.parent_run_id && !ids.has(run.parent_run_id)) for (const r of store.listRejections({ runId: run.parent_run_id })) byRun.set(r.seq, r);
  }
  const starts = runs.flatMap((r) => toMs(r.start_time) ?? []);
  const related: RelatedTrace[] = [];
  if (starts.length > 0) {
    const start = Math.min(...starts);
    const end = Math.max(...runs.map((r) => toMs(r.end_time) ?? now));
    const nearby = store
      .listTraces({ since: new Date(start - WINDOW_MS).toISOString(), limit: 500 })
      .filter((t) => t.trace_id !== traceId && (toMs(t.start_time) ?? Infinity) <= end + 5000);
    const overlapping = new Set(
      nearby
        .filter((t) => (toMs(t.end_time) ?? now) >= start - 5000)
        .slice(0, MAX_FULL_READS)
        .map((t) => t.trace_id),
    );
    const root = runs.find((r) => r.id === traceId);
    const claimed = root ? metaText(toDoctorRun(root), "untrusted_parent_trace_id") : undefined;
    if (claimed && claimed !== traceId) overlapping.add(claimed);
    for (const id of overlapping) {
      const other = store.getTraceRuns(id, { limit: MAX_RELATED_RUNS });
      if (other.length > 0) related.push({ traceId: id, runs: other.map(toDoctorRun) });
    }
  }
  const projectNames = new Map(runs.map((r) => [r.session_id, store.getProject(r.session_id)?.name ?? r.session_id]));
  return diagnoseTrace({ traceId, runs: runs.map(toDoctorRun), rejections: [...byRun.values()], related, projectNames }, { now });
}

/** The findings as a page section: problems first, each with its runs (linked), cause and fix. */
export function renderDoctorSection(d: TraceDiagnosis, runHref: (runId: string) => string): string {
  const problems = d.findings.filter((f) => f.severity === "problem");
  const heading = problems.length
    ? `<h2 class="danger">Trace doctor: ${problems.length} problem${problems.length === 1 ? "" : "s"}</h2>`
    : `<h2>Trace doctor</h2><p class="explain">No problems found.</p>`;
  const items = d.findings
    .map((f) => {
      const runs = f.runs
        .slice(0, 12)
        .map((r) => {
          const label = `${escapeHtml(r.name)} [${escapeHtml(r.service ?? "?")}]`;
          // Runs of another trace link to that trace's page. A run that is not stored (rejected) selects nothing.
          const href = r.trace ? `/traces/${encodeURIComponent(r.trace)}?run=${encodeURIComponent(r.id)}` : runHref(r.id);
          return `<a href="${escapeHtml(href)}">${label}</a>`;
        })
        .join(", ");
      const related = f.relatedTraces.map((t) => `<a href="/traces/${encodeURIComponent(t)}"><code>${escapeHtml(t)}</code></a>`).join(", ");
      return (
        `<li class="doctor-${f.severity}"><p><b class="${f.severity === "problem" ? "danger" : "muted"}">${escapeHtml(f.kind)}${f.severity === "note" ? " (note)" : ""}</b>: ${escapeHtml(f.title)}</p>` +
        (runs ? `<p>Runs: ${runs}</p>` : "") +
        (related ? `<p>Other traces: ${related}</p>` : "") +
        `<p class="explain">Cause: ${escapeHtml(f.cause)}</p><p class="explain">Fix: ${escapeHtml(f.fix)}</p></li>`
      );
    })
    .join("");
  return `${heading}${items ? `<ol class="doctor">${items}</ol>` : ""}<p class="hint">The same check from a terminal: <code>npm run doctor -- ${escapeHtml(d.traceId)}</code></p>`;
}
