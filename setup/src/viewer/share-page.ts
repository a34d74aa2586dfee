// The read-only page a share link opens: `/public/<token>/r`, the URL the SDK's
// `shareRun` returns (with `webUrl` set to the trace server). It shows the one
// shared trace (tree, waterfall, a run's details via `?run=<id>`) and nothing
// else of the viewer: no header links, no script, no link to another page, and
// no API key needed. An unknown or revoked token is a 404 page, as on LangSmith.
// Mounted by mountViewer: `mountSharePage(router, store)`.
import type { Request, Router } from "express";
import { shareByToken, sharedRuns, type TraceShare } from "../trace-server/share-store.js";
import type { TraceStore } from "../trace-server/store.js";
import type { StoredRun } from "../trace-server/types.js";
import { isUuid } from "../trace-server/validate.js";
import { formatDuration } from "../traces/tree.js";
import { ASSET_PATH, layoutStoredRuns, renderRunDetails } from "./pages.js";
import { escapeHtml, renderLegend, renderWaterfall } from "./render-core.js";

/** `GET /public/:token/r`, public (no API key), under the viewer's security headers. */
export function mountSharePage(router: Router, store: TraceStore): void {
  router.get("/public/:token/r", (req, res) => {
    const token = String(req.params.token);
    const share = isUuid(token) ? shareByToken(store, token) : undefined;
    const runs = share ? sharedRuns(store, share) : [];
    if (!share || runs.length === 0) {
      res.status(404).type("html").send(notShared());
      return;
    }
    res.type("html").send(renderSharedTrace(share, runs, oneParam(req, "run")));
  });
}

export function sharePath(token: string, runId?: string): string {
  return `/public/${encodeURIComponent(token)}/r${runId ? `?run=${encodeURIComponent(runId)}` : ""}`;
}

/** A page with the viewer's stylesheet only: the shared view runs no script and links nowhere else. */
function publicShell(title: string, body: string, status: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · shared trace</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSET_PATH}/viewer.css">
</head>
<body class="page-shared" data-status="${status}">
<header class="top"><span class="brand">Shared trace</span><span class="top-note">read-only, shared from a local LangSmith-compatible trace server</span></header>
<main id="main">
${body}
</main>
</body>
</html>`;
}

function notShared(): string {
  return publicShell(
    "Not found",
    `<h1>Not found</h1><p>This share link does not open a trace: it was never issued, or the trace was unshared.</p>`,
    "404",
  );
}

export function renderSharedTrace(share: TraceShare, runs: StoredRun[], selectedId: string | undefined): string {
  const layout = layoutStoredRuns(runs);
  const root = layout.tree.mainRoot?.run;
  const title = root?.name ?? "(root run missing)";
  const selected = runs.find((r) => r.id === selectedId);
  const href = (id: string): string => sharePath(share.token, id);
  const errors = runs.filter((r) => r.error !== null).length;
  const running = runs.filter((r) => r.end_time === null).length;
  const badge = errors ? `<span class="badge badge-error">${errors} error${errors === 1 ? "" : "s"}</span>` : running ? `<span class="badge badge-running">running</span>` : `<span class="badge badge-ok">ok</span>`;
  const started = layout.startMs !== undefined ? new Date(layout.startMs).toISOString() : undefined;
  const orphans = layout.orphanRows.length
    ? `<h2 class="danger">Orphaned runs (parent missing)</h2>${renderWaterfall(layout, layout.orphanRows, { skin: "page", selectedRunId: selected?.id, runHref: href, label: "Orphaned runs" })}`
    : "";
  // Shared pages leave the project out, as LangSmith's public run shape does.
  const projectNames = new Map(runs.map((r) => [r.session_id, "(not shown on shared pages)"]));
  const body = `
<section class="summary" aria-label="Trace summary">
<h1>${escapeHtml(title)}</h1>
<div class="badges">${badge}</div>
<dl class="facts">
  <div><dt>Trace id</dt><dd><code>${escapeHtml(share.trace_id)}</code></dd></div>
  <div><dt>Started</dt><dd>${started ? `<time datetime="${started}">${started.slice(0, 10)} ${started.slice(11, 23)} UTC</time>` : "-"}</dd></div>
  <div><dt>Duration</dt><dd>${formatDuration(layout.durationMs)}</dd></div>
  <div><dt>Runs</dt><dd>${runs.length}</dd></div>
</dl>
${renderLegend(layout, "page")}
</section>
<div class="trace-layout">
  <div class="trace-runs">
    <section id="trace-tree" aria-label="Run tree and timeline">${renderWaterfall(layout, layout.rows, { skin: "page", selectedRunId: selected?.id, runHref: href, label: "Runs of this trace" })}</section>
    ${orphans}
    <p class="hint">Select a run's name to see its inputs, outputs and metadata.</p>
  </div>
  <aside id="run-details" class="details" aria-label="Run details">${renderRunDetails({ traceId: share.trace_id, projectNames, runs }, layout, selected, href)}</aside>
</div>`;
  return publicShell(title, body, "200");
}

function oneParam(req: Request, name: string): string | undefined {
  const v = req.query[name];
  return typeof v === "string" ? v : undefined;
}

