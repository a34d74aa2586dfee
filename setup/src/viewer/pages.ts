// Server-rendered pages of the trace viewer. Every string that came from a
// client (run names, inputs, metadata, errors, rejected payloads) goes through
// escapeHtml; numbers and colours are produced here.
import type { JsonObject, Rejection, StoredProject, StoredRun, TraceSummary } from "../trace-server/types.js";
import type { TraceDiagnosis } from "../doctor/types.js";
import { renderDoctorSection } from "../doctor/viewer.js";
import { ownServiceOf } from "../service.js";
import { formatDuration, toMs } from "../traces/tree.js";
import {
  assignServiceColors,
  escapeHtml,
  firstLine,
  layoutTrace,
  renderLegend,
  renderWaterfall,
  runTypeBadge,
  serviceSwatch,
  shortId,
  UNKNOWN_SERVICE_COLOR,
  type TraceLayout,
} from "./render-core.js";

export const ASSET_PATH = "/_viewer";

/** The page path of a trace, the viewer's stable link. */
export function tracePath(traceId: string, runId?: string): string {
  return `/traces/${encodeURIComponent(traceId)}${runId ? `?run=${encodeURIComponent(runId)}` : ""}`;
}

export function shell(opts: { title: string; body: string; bodyAttrs?: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.title)} · trace viewer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSET_PATH}/viewer.css">
<script src="${ASSET_PATH}/viewer.js" defer></script>
</head>
<body${opts.bodyAttrs ? ` ${opts.bodyAttrs}` : ""}>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/">Trace viewer</a><nav class="top-nav" aria-label="Viewer pages"><a href="/">Traces</a><a href="/threads">Threads</a><a href="/stats">Stats</a></nav><span class="top-note">local LangSmith-compatible trace server</span></header>
<main id="main">
${opts.body}
</main>
</body>
</html>`;
}

function time(iso: string | null | undefined): string {
  if (!iso) return "-";
  const ms = toMs(iso);
  if (ms === undefined) return escapeHtml(iso);
  const d = new Date(ms);
  const text = `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 23)} UTC`;
  return `<time datetime="${d.toISOString()}">${text}</time>`;
}

function spanMs(start: string | null | undefined, end: string | null | undefined): number | undefined {
  const s = toMs(start);
  const e = toMs(end);
  return s !== undefined && e !== undefined ? e - s : undefined;
}

// ------------------------------------------------------------------ trace list

export type StatusFilter = "ok" | "error" | "running";

export interface ListFilters {
  /** Project name or id; none: every project. */
  project?: string;
  service?: string;
  status?: StatusFilter;
  /** Case-insensitive substring of the root run's name. */
  name?: string;
}

export interface ListPageInput {
  traces: TraceSummary[];
  filters: ListFilters;
  /** The project the list shows when its URL names none. */
  defaultProject: string;
  projects: StoredProject[];
  knownServices: string[];
  offset: number;
  pageSize: number;
  hasMore: boolean;
  version: string;
}

/** Complete: every run's parent arrived and nothing of the trace was rejected. */
export function isComplete(t: Pick<TraceSummary, "orphan_count" | "rejected_count">): boolean {
  return t.orphan_count === 0 && t.rejected_count === 0;
}

export function traceStatus(t: Pick<TraceSummary, "status">): StatusFilter {
  return t.status === "error" ? "error" : t.status === "pending" ? "running" : "ok";
}

function completenessBadge(t: TraceSummary): string {
  if (isComplete(t)) return `<span class="badge badge-ok">complete</span>`;
  const parts = [
    ...(t.orphan_count ? [`${t.orphan_count} orphan${t.orphan_count === 1 ? "" : "s"}`] : []),
    ...(t.rejected_count ? [`${t.rejected_count} rejected`] : []),
  ];
  return `<span class="badge badge-broken" title="A run's parent is missing or a run was rejected">incomplete: ${parts.join(", ")}</span>`;
}

function statusBadge(status: StatusFilter): string {
  return `<span class="badge badge-${status}">${status}</span>`;
}

function listQuery(filters: ListFilters, defaultProject: string, offset: number): string {
  const q = new URLSearchParams();
  // No parameter is the default project, so every project needs `project=`.
  if (filters.project !== defaultProject) q.set("project", filters.project ?? "");
  for (const key of ["service", "status", "name"] as const) {
    const v = filters[key];
    if (v) q.set(key, v);
  }
  if (offset > 0) q.set("offset", String(offset));
  const s = q.toString();
  return s ? `/?${s}` : "/";
}

function selectOptions(values: Array<{ value: string; label: string }>, selected: string | undefined): string {
  return values.map((v) => `<option value="${escapeHtml(v.value)}"${v.value === (selected ?? "") ? " selected" : ""}>${escapeHtml(v.label)}</option>`).join("");
}

/** The rows of the list table; also what live updates swap in. */
export function renderTraceRows(input: Pick<ListPageInput, "traces" | "filters" | "defaultProject">): string {
  const { traces, filters } = input;
  if (traces.length === 0) {
    const { project, ...others } = filters;
    const message = Object.values(others).some(Boolean)
      ? "No traces match these filters."
      : project === undefined
        ? "No traces yet. Run a notebook cell or an example with tracing on; its traces appear here."
        : `No traces in project ${escapeHtml(project)} yet.${project === input.defaultProject ? " Traced code writes here unless it names another project (LANGSMITH_PROJECT)." : ""} <a href="/?project=">All projects</a>`;
    return `<tr><td colspan="8" class="empty">${message}</td></tr>`;
  }
  const colors = assignServiceColors(traces.flatMap((t) => t.services));
  return traces
    .map((t) => {
      const status = traceStatus(t);
      const name = t.root_name ?? (t.root_run_id ? "(unnamed)" : "(root run missing)");
      const services = t.services.length
        ? `<ul class="chips">${t.services.map((s) => `<li class="chip" data-service="${escapeHtml(s)}">${serviceSwatch(colors.get(s) ?? UNKNOWN_SERVICE_COLOR, "page")}${escapeHtml(s)}</li>`).join("")}</ul>`
        : `<span class="muted">none</span>`;
      const projects = t.project_names.map(escapeHtml).join(", ");
      return (
        `<tr class="trace-row${isComplete(t) ? "" : " trace-broken"}" data-trace-id="${escapeHtml(t.trace_id)}">` +
        `<td>${time(t.start_time)}</td>` +
        `<td><a href="${escapeHtml(tracePath(t.trace_id))}">${escapeHtml(name)}</a><div class="sub">${projects} · <code>${escapeHtml(shortId(t.trace_id))}</code></div></td>` +
        `<td>${services}</td>` +
        `<td class="num">${t.run_count}</td>` +
        `<td class="num">${t.end_time ? formatDuration(spanMs(t.start_time, t.end_time)) : "running"}</td>` +
        `<td class="num${t.error_count ? " error-text" : ""}">${t.error_count}</td>` +
        `<td>${statusBadge(status)}</td>` +
        `<td>${completenessBadge(t)}</td>` +
        `</tr>`
      );
    })
    .join("");
}

export function renderListPage(input: ListPageInput): string {
  const { filters, offset, pageSize, defaultProject } = input;
  // The chosen project stays selectable before its first trace creates it.
  const names = input.projects.map((p) => p.name);
  const chosen = filters.project !== undefined && !input.projects.some((p) => p.name === filters.project || p.id === filters.project) ? [filters.project] : [];
  const projectOptions = selectOptions(
    [{ value: "", label: "All projects" }, ...[...chosen, ...names].map((name) => ({ value: name, label: name === defaultProject ? `${name} (default)` : name }))],
    filters.project === undefined ? "" : (input.projects.find((p) => p.id === filters.project)?.name ?? filters.project),
  );
  const statusOptions = selectOptions(
    [
      { value: "", label: "any status" },
      { value: "ok", label: "ok" },
      { value: "error", label: "error" },
      { value: "running", label: "running" },
    ],
    filters.status,
  );
  const services = input.knownServices.map((s) => `<option value="${escapeHtml(s)}"></option>`).join("");
  const prev = offset > 0 ? `<a rel="prev" href="${escapeHtml(listQuery(filters, defaultProject, Math.max(0, offset - pageSize)))}">Newer</a>` : "";
  const next = input.hasMore ? `<a rel="next" href="${escapeHtml(listQuery(filters, defaultProject, offset + pageSize))}">Older</a>` : "";
  const body = `
<h1>Traces</h1>
<form class="filters" method="get" action="/" role="search" aria-label="Filter traces">
  <label>Project <select name="project">${projectOptions}</select></label>
  <label>Service <input name="service" list="services" value="${escapeHtml(filters.service ?? "")}" placeholder="any"></label>
  <datalist id="services">${services}</datalist>
  <label>Status <select name="status">${statusOptions}</select></label>
  <label>Name <input name="name" type="search" value="${escapeHtml(filters.name ?? "")}" placeholder="root run name contains"></label>
  <button type="submit">Filter</button>
  <a href="/">Clear</a>
</form>
<table class="traces" aria-label="Traces, newest first">
<thead><tr><th scope="col">Started</th><th scope="col">Trace</th><th scope="col">Services</th><th scope="col" class="num">Runs</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Errors</th><th scope="col">Status</th><th scope="col">Complete</th></tr></thead>
<tbody id="trace-rows">${renderTraceRows(input)}</tbody>
</table>
<nav class="pager" aria-label="Pages">${prev}${next}</nav>`;
  const live = offset === 0 ? ` data-live-list="1" data-version="${escapeHtml(input.version)}"` : "";
  return shell({ title: "Traces", body, bodyAttrs: `class="page-list"${live}` });
}

// ------------------------------------------------------------------ trace page

export interface TracePageInput {
  traceId: string;
  /** The runs shown: all of the trace, or its first runs in execution order. */
  runs: StoredRun[];
  /** How many runs the trace has; more than `runs.length` when the page shows only the first. */
  runCount?: number;
  rejections: Rejection[];
  projectNames: Map<string, string>;
  selectedRunId: string | undefined;
  version: string;
  /** The trace doctor's diagnosis (setup/src/doctor), computed only when the regions are drawn. */
  doctor?: () => TraceDiagnosis;
}

/** What the trace page shows in each live-updated region. */
export interface TraceRegions {
  summary: string;
  tree: string;
  orphans: string;
  rejections: string;
  doctor: string;
}

function traceTitle(layout: TraceLayout): string {
  return layout.tree.mainRoot?.run.name ?? "(root run missing)";
}

function summaryHtml(input: TracePageInput, layout: TraceLayout): string {
  const { counts } = layout;
  const broken = counts.orphans > 0 || input.rejections.length > 0 || counts.roots > 1;
  const badges: string[] = [];
  if (input.runs.length === 0) badges.push(`<span class="badge badge-running">no runs yet</span>`);
  else if (counts.running > 0) badges.push(`<span class="badge badge-running">running: ${counts.running} run${counts.running === 1 ? "" : "s"} not ended</span>`);
  if (counts.errors > 0) badges.push(`<span class="badge badge-error">${counts.errors} error${counts.errors === 1 ? "" : "s"}</span>`);
  if (broken) {
    const parts = [
      ...(counts.orphans ? [`${counts.orphans} orphaned`] : []),
      ...(input.rejections.length ? [`${input.rejections.length} rejected`] : []),
      ...(counts.roots > 1 ? [`${counts.roots} roots`] : []),
    ];
    badges.push(`<span class="badge badge-broken">broken trace: ${parts.join(", ")}</span>`);
  } else if (input.runs.length > 0) {
    badges.push(`<span class="badge badge-ok">complete</span>`);
  }
  const projects = [...new Set(input.runs.map((r) => input.projectNames.get(r.session_id) ?? r.session_id))];
  const started = layout.startMs !== undefined ? new Date(layout.startMs).toISOString() : undefined;
  return `
<h1>${escapeHtml(traceTitle(layout))}</h1>
<div class="badges">${badges.join(" ")}</div>
<dl class="facts">
  <div><dt>Trace id</dt><dd><code>${escapeHtml(input.traceId)}</code></dd></div>
  <div><dt>Started</dt><dd>${time(started)}</dd></div>
  <div><dt>Duration</dt><dd>${formatDuration(layout.durationMs)}</dd></div>
  <div><dt>Runs</dt><dd>${counts.runs}</dd></div>
  <div><dt>Projects</dt><dd>${projects.map(escapeHtml).join(", ") || "-"}</dd></div>
</dl>
${truncationNote(input)}
${renderLegend(layout, "page")}`;
}

/** Said when the page shows only the first runs of a big trace, with where the rest can be read. */
function truncationNote(input: TracePageInput): string {
  const total = input.runCount ?? input.runs.length;
  if (total <= input.runs.length) return "";
  const next = `/api/traces/${encodeURIComponent(input.traceId)}?offset=${input.runs.length}`;
  return `<p class="truncated" role="note">This trace has ${total} runs; this page shows the first ${input.runs.length}, in execution order, and counts and times cover only those. Read the rest as JSON at <a href="${escapeHtml(next)}"><code>${escapeHtml(next)}</code></a>.</p>`;
}

function orphansHtml(input: TracePageInput, layout: TraceLayout): string {
  if (layout.orphanRows.length === 0) return "";
  const missing = [...new Set(layout.tree.orphans.map((o) => o.run.parent_run_id).filter((p): p is string => !!p))];
  return `
<h2 class="danger">Orphaned runs (parent missing)</h2>
<p class="explain">${layout.counts.orphans} run${layout.counts.orphans === 1 ? " names a parent that is" : "s name parents that are"} not in this trace
(${missing.map((m) => `<code>${escapeHtml(m)}</code>`).join(", ")}). The parent was lost, rejected, sent to another server, or has not been sent yet.</p>
${renderWaterfall(layout, layout.orphanRows, { skin: "page", selectedRunId: input.selectedRunId, runHref: (id) => tracePath(input.traceId, id), label: "Orphaned runs" })}`;
}

function rejectionsHtml(input: TracePageInput): string {
  if (input.rejections.length === 0) return "";
  const rows = input.rejections
    .map(
      (r) =>
        `<tr><td>${time(r.received_at)}</td><td><code>${escapeHtml(r.rule)}</code></td><td>${escapeHtml(r.op ?? "-")}</td>` +
        `<td>${r.run_id ? `<code>${escapeHtml(r.run_id)}</code>` : "-"}</td><td>${escapeHtml(r.message)}</td>` +
        `<td>${r.payload ? `<details><summary>payload</summary><pre>${escapeHtml(prettyJsonText(r.payload))}</pre></details>` : "-"}</td></tr>`,
    )
    .join("");
  return `
<h2 class="danger">Rejected runs (${input.rejections.length})</h2>
<p class="explain">The trace server refused these operations for this trace, so the runs are missing or incomplete above. The rule names are listed in docs/local-stack.md.</p>
<table class="rejections" aria-label="Rejected runs"><thead><tr><th scope="col">Received</th><th scope="col">Rule</th><th scope="col">Op</th><th scope="col">Run</th><th scope="col">Message</th><th scope="col">Payload</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function treeHtml(input: TracePageInput, layout: TraceLayout): string {
  if (layout.rows.length === 0) {
    return input.runs.length === 0
      ? `<p class="empty">No runs of this trace have arrived yet. This page updates when they do.</p>`
      : `<p class="empty danger">No root run: every run of this trace is orphaned (below).</p>`;
  }
  return renderWaterfall(layout, layout.rows, {
    skin: "page",
    selectedRunId: input.selectedRunId,
    runHref: (id) => tracePath(input.traceId, id),
    label: "Runs of this trace",
  });
}

/** The layout of stored runs (the store says null where the SDK's types leave a field out). */
export function layoutStoredRuns(runs: readonly StoredRun[]): TraceLayout {
  return layoutTrace(runs.map((r) => ({ ...r, start_time: r.start_time ?? undefined })));
}

export function renderTraceRegions(input: TracePageInput, layout = layoutStoredRuns(input.runs)): TraceRegions {
  return {
    summary: summaryHtml(input, layout),
    tree: treeHtml(input, layout),
    orphans: orphansHtml(input, layout),
    rejections: rejectionsHtml(input),
    doctor: input.doctor ? renderDoctorSection(input.doctor(), (id) => tracePath(input.traceId, id)) : "",
  };
}

export function renderTracePage(input: TracePageInput): string {
  const layout = layoutStoredRuns(input.runs);
  const regions = renderTraceRegions(input, layout);
  const selected = input.selectedRunId ? input.runs.find((r) => r.id === input.selectedRunId) : undefined;
  const body = `
<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Traces</a> / <span>${escapeHtml(traceTitle(layout))}</span></nav>
<section id="trace-summary" class="summary" aria-label="Trace summary">${regions.summary}</section>
<section id="trace-doctor" aria-label="Trace doctor">${regions.doctor}</section>
<p id="live-status" class="live-status" role="status"></p>
<div class="trace-layout">
  <div class="trace-runs">
    <section id="trace-tree" aria-label="Run tree and timeline">${regions.tree}</section>
    <section id="trace-orphans" aria-label="Orphaned runs">${regions.orphans}</section>
    <section id="trace-rejections" aria-label="Rejected runs">${regions.rejections}</section>
    <p class="hint">Arrow keys move through the runs, Left and Right fold and unfold, Enter shows a run's details.</p>
  </div>
  <aside id="run-details" class="details" aria-label="Run details">${renderRunDetails(input, layout, selected)}</aside>
</div>`;
  const pending = input.runs.length === 0 || input.runs.some((r) => r.end_time === null);
  const attrs = `class="page-trace" data-trace-id="${escapeHtml(input.traceId)}" data-version="${escapeHtml(input.version)}" data-pending="${pending ? "1" : "0"}"${selected ? ` data-selected="${escapeHtml(selected.id)}"` : ""}`;
  return shell({ title: traceTitle(layout), body, bodyAttrs: attrs });
}

// ------------------------------------------------------------------ run details

const JSON_LIMIT = 200_000;

function prettyJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2) ?? "null";
  return text.length > JSON_LIMIT ? `${text.slice(0, JSON_LIMIT)}\n… (${text.length - JSON_LIMIT} more characters)` : text;
}

function prettyJsonText(text: string): string {
  try {
    return prettyJson(JSON.parse(text));
  } catch {
    return text;
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function jsonBlock(title: string, value: unknown, cls = ""): string {
  return `<section class="block${cls ? ` ${cls}` : ""}"><h3>${title}</h3><pre>${escapeHtml(prettyJson(value))}</pre></section>`;
}

function kvTable(entries: Array<[string, unknown]>, label: string): string {
  const rows = entries
    .map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(typeof v === "string" ? v : (JSON.stringify(v) ?? "null"))}</td></tr>`)
    .join("");
  return `<table class="kv" aria-label="${escapeHtml(label)}"><tbody>${rows}</tbody></table>`;
}

/** Metadata keys the tracing middleware writes about the inbound context (examples/express-middleware). */
const INBOUND_KEY = /^(?:trace\.|untrusted_parent_)/;

function metadataOf(run: StoredRun): JsonObject {
  const m = run.extra.metadata;
  return isObject(m) ? m : {};
}

function parentDottedOrder(run: StoredRun): string | undefined {
  const i = run.dotted_order.lastIndexOf(".");
  return i > 0 ? run.dotted_order.slice(0, i) : undefined;
}

function eventsHtml(run: StoredRun): string {
  if (run.events.length === 0) return "";
  const start = toMs(run.start_time);
  const tokens = run.events.filter((e) => e.name === "new_token");
  const streamed = tokens
    .map((e) => (isObject(e.kwargs) && typeof e.kwargs.token === "string" ? e.kwargs.token : ""))
    .join("");
  const shown = run.events.slice(0, 200);
  const rows = shown
    .map((e) => {
      const t = toMs(typeof e.time === "string" ? e.time : undefined);
      const offset = start !== undefined && t !== undefined ? `+${formatDuration(t - start)}` : "-";
      const { name, time: _time, ...rest } = e;
      const detail = isObject(rest.kwargs) && typeof rest.kwargs.token === "string" ? JSON.stringify(rest.kwargs.token) : JSON.stringify(rest);
      return `<tr><td class="num">${offset}</td><td>${escapeHtml(typeof name === "string" ? name : "event")}</td><td><code>${escapeHtml(firstLine(detail ?? "", 200))}</code></td></tr>`;
    })
    .join("");
  const more = run.events.length > shown.length ? `<p class="muted">${run.events.length - shown.length} more events not shown.</p>` : "";
  const streamedBlock = tokens.length ? `<p>${tokens.length} streamed token${tokens.length === 1 ? "" : "s"}: <q class="streamed">${escapeHtml(streamed)}</q></p>` : "";
  return `<section class="block"><h3>Events (${run.events.length})</h3>${streamedBlock}<table class="events" aria-label="Events"><thead><tr><th scope="col" class="num">At</th><th scope="col">Name</th><th scope="col">Data</th></tr></thead><tbody>${rows}</tbody></table>${more}</section>`;
}

/**
 * Where the run's context came from. The SDK records no "continued from"
 * field: a service that continues a trace from `langsmith-trace` + `baggage`
 * headers makes the caller's run the parent (its dotted order is the header's
 * value) and merges the baggage metadata and tags. So this shows the parent,
 * whether the run crossed a service boundary, the header value, what the run
 * shares with its parent, and what the tracing middleware recorded.
 */
function contextHtml(run: StoredRun, runs: readonly StoredRun[], layout: TraceLayout, runHref: (runId: string) => string): string {
  const node = layout.tree.nodes.get(run.id);
  const parentId = run.parent_run_id;
  const parentNode = parentId ? layout.tree.nodes.get(parentId) : undefined;
  const items: string[] = [];
  if (!parentId) items.push(`<li>Root run: no parent.</li>`);
  else if (!parentNode) items.push(`<li class="danger">Parent <code>${escapeHtml(parentId)}</code> is missing from this trace: this run is orphaned.</li>`);
  else {
    items.push(
      `<li>Parent: <a href="${escapeHtml(runHref(parentId))}" data-select-run="${escapeHtml(parentId)}">${escapeHtml(parentNode.run.name)}</a> (${escapeHtml(parentNode.service ?? "unknown service")})</li>`,
    );
  }
  const service = node?.service;
  const parentService = parentNode?.service;
  const header = parentDottedOrder(run);
  if (parentNode && service && parentService && service !== parentService) {
    items.push(
      `<li class="hop">Crossed a service boundary: continued by <b>${escapeHtml(service)}</b> from <b>${escapeHtml(parentService)}</b>, through propagated ${isObject(run.extra.otel) ? "OpenTelemetry context (W3C <code>traceparent</code>)" : "<code>langsmith-trace</code> and <code>baggage</code> headers"}.</li>`,
    );
  }
  if (header) items.push(`<li><code>langsmith-trace</code> it was continued from (the parent's dotted order):<br><code class="wrap">${escapeHtml(header)}</code></li>`);

  const meta = metadataOf(run);
  const inbound = Object.entries(meta).filter(([k]) => INBOUND_KEY.test(k));
  if (inbound.length) items.push(`<li>Inbound context recorded by the tracing middleware:${kvTable(inbound, "Inbound context")}</li>`);
  if (parentNode && parentId) {
    const parentRun = runs.find((r) => r.id === parentId);
    const parentMeta = parentRun ? metadataOf(parentRun) : {};
    const shared = Object.entries(meta).filter(
      ([k, v]) => !k.startsWith("LANGSMITH_") && !INBOUND_KEY.test(k) && k in parentMeta && JSON.stringify(parentMeta[k]) === JSON.stringify(v),
    );
    if (shared.length) items.push(`<li>Metadata shared with the parent (what <code>baggage</code> carries between services):${kvTable(shared, "Shared metadata")}</li>`);
    const parentTags = new Set(parentRun?.tags ?? []);
    const sharedTags = run.tags.filter((t) => parentTags.has(t));
    if (sharedTags.length) items.push(`<li>Tags shared with the parent: ${sharedTags.map((t) => `<code>${escapeHtml(t)}</code>`).join(" ")}</li>`);
  }
  return `<section class="block"><h3>Continued from</h3><ul class="context">${items.join("")}</ul></section>`;
}

/** `runHref` links the parent run; the shared (public) page passes its own so no link leads into the viewer. */
export function renderRunDetails(
  input: Pick<TracePageInput, "traceId" | "projectNames" | "runs">,
  layout: TraceLayout,
  run: StoredRun | undefined,
  runHref: (runId: string) => string = (id) => tracePath(input.traceId, id),
): string {
  if (!run) {
    return `<p class="muted">Select a run to see its inputs, outputs, error, metadata, tags, events and where its context came from.</p>`;
  }
  const node = layout.tree.nodes.get(run.id);
  const badge = runTypeBadge(run.run_type);
  const service = node?.service;
  const color = service ? (layout.colors.get(service) ?? UNKNOWN_SERVICE_COLOR) : UNKNOWN_SERVICE_COLOR;
  const status = run.error ? "error" : run.end_time ? "ok" : "running";
  const facts: Array<[string, string]> = [
    ["Run id", `<code>${escapeHtml(run.id)}</code>`],
    ["Type", escapeHtml(badge.label)],
    ["Service", `${serviceSwatch(color, "page")}${escapeHtml(service ?? "unknown")}${service && !ownServiceOf(run) ? " <span class=\"muted\">(inherited)</span>" : ""}`],
    ["Status", `<span class="badge badge-${status}">${status}</span>`],
    ["Started", time(run.start_time)],
    ["Ended", run.end_time ? time(run.end_time) : "not yet"],
    ["Duration", formatDuration(spanMs(run.start_time, run.end_time))],
    ["Project", escapeHtml(input.projectNames.get(run.session_id) ?? run.session_id)],
  ];
  if (run.total_tokens !== null) facts.push(["Tokens", `${run.total_tokens} (prompt ${run.prompt_tokens ?? "-"}, completion ${run.completion_tokens ?? "-"})`]);
  if (run.first_token_time) facts.push(["First token", `+${formatDuration(spanMs(run.start_time, run.first_token_time))}`]);
  const meta = metadataOf(run);
  const metaEntries = Object.entries(meta).sort(([a], [b]) => a.localeCompare(b));
  const runtime = run.extra.runtime;
  const attachments = Object.entries(run.attachments);
  return `
<h2><span class="wf-badge" style="color:${badge.fg};background:${badge.bg}" role="img" aria-label="${escapeHtml(badge.label)}" title="${escapeHtml(badge.label)}">${escapeHtml(badge.letter)}</span>${escapeHtml(run.name || "(unnamed)")}</h2>
<dl class="facts facts-run">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("")}</dl>
${run.error ? `<section class="block block-error"><h3>Error</h3><pre>${escapeHtml(run.error)}</pre></section>` : ""}
${contextHtml(run, input.runs, layout, runHref)}
${jsonBlock("Inputs", run.inputs)}
${run.outputs !== null ? jsonBlock("Outputs", run.outputs) : `<section class="block"><h3>Outputs</h3><p class="muted">${run.end_time ? "none" : "not yet (the run has not ended)"}</p></section>`}
${eventsHtml(run)}
<section class="block"><h3>Metadata</h3>${metaEntries.length ? kvTable(metaEntries, "Metadata") : `<p class="muted">none</p>`}</section>
<section class="block"><h3>Tags</h3>${run.tags.length ? run.tags.map((t) => `<code class="tag">${escapeHtml(t)}</code>`).join(" ") : `<p class="muted">none</p>`}</section>
${attachments.length ? `<section class="block"><h3>Attachments</h3><ul>${attachments.map(([name, a]) => `<li><code>${escapeHtml(name)}</code> ${escapeHtml(a.mime_type)}</li>`).join("")}</ul></section>` : ""}
${isObject(runtime) ? `<details class="block"><summary>Runtime</summary>${kvTable(Object.entries(runtime), "Runtime")}</details>` : ""}
<details class="block"><summary>Dotted order</summary><code class="wrap">${escapeHtml(run.dotted_order)}</code></details>`;
}

// ------------------------------------------------------------------ errors

export function renderErrorPage(status: number, title: string, message: string): string {
  return shell({
    title,
    body: `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p><a href="/">All traces</a></p>`,
    bodyAttrs: `class="page-error" data-status="${status}"`,
  });
}
