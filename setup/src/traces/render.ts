import { createRequire } from "node:module";
import { DEFAULT_TRACE_SERVER_PORT } from "../config.js";
import type { TraceRun } from "./types.js";
import { ERROR_COLOR, escapeHtml, firstLine, layoutTrace, renderLegend, renderWaterfall, shortId } from "../viewer/render-core.js";
import { buildTraceTree, formatDuration, runStatus, type TraceNode, type TraceTree } from "./tree.js";

/** The trace viewer page of a trace: `${viewerUrl}/traces/<traceId>`, viewer defaulting to the local trace server. */
export function traceUrl(traceId: string, viewerUrl?: string): string {
  const base =
    viewerUrl ??
    process.env.TRACE_VIEWER_URL ??
    process.env.TRACE_SERVER_URL ??
    `http://127.0.0.1:${DEFAULT_TRACE_SERVER_PORT}`;
  return `${base.replace(/\/+$/, "")}/traces/${encodeURIComponent(traceId)}`;
}

function statusText(run: TraceRun): string {
  const status = runStatus(run);
  return status === "error" ? `error: ${firstLine(run.error ?? "")}` : status;
}

function duration(node: TraceNode): number | undefined {
  return node.startMs !== undefined && node.endMs !== undefined ? node.endMs - node.startMs : undefined;
}

function notes(node: TraceNode, tree: TraceTree, orphan: boolean): string {
  const out: string[] = [];
  if (orphan && node.run.parent_run_id) out.push(`missing parent ${shortId(node.run.parent_run_id)}`);
  if (node.run.trace_id && tree.traceId && node.run.trace_id !== tree.traceId) out.push(`other trace ${shortId(node.run.trace_id)}`);
  return out.length ? `  (${out.join(", ")})` : "";
}

function servicesOf(tree: TraceTree): string[] {
  const set = new Set<string>();
  for (const n of tree.nodes.values()) if (n.service) set.add(n.service);
  return [...set].sort();
}

/** A text tree: name, run_type, [service], duration, status; orphans listed separately and marked "!". */
export function renderTraceText(runs: readonly TraceRun[]): string {
  const tree = buildTraceTree(runs);
  const services = servicesOf(tree);
  const header = [
    `trace ${tree.traceId ?? "(unknown)"}`,
    `${tree.nodes.size} run${tree.nodes.size === 1 ? "" : "s"}`,
    ...(tree.roots.length !== 1 ? [`${tree.roots.length} roots`] : []),
    `services: ${services.length ? services.join(", ") : "(none)"}`,
  ].join(" · ");
  const lines = [header];
  const line = (node: TraceNode, prefix: string, orphan: boolean): string =>
    `${prefix}${node.run.name}  ${node.run.run_type}  [${node.service ?? "?"}]  ${formatDuration(duration(node))}  ${statusText(node.run)}${notes(node, tree, orphan)}`;
  const walk = (node: TraceNode, indent: string): void => {
    node.children.forEach((child, i) => {
      const last = i === node.children.length - 1;
      lines.push(line(child, `${indent}${last ? "└─ " : "├─ "}`, false));
      walk(child, `${indent}${last ? "   " : "│  "}`);
    });
  };
  for (const root of tree.roots) {
    lines.push(line(root, "", false));
    walk(root, "");
  }
  if (tree.orphans.length) {
    lines.push("orphans (parent not in this trace):");
    for (const orphan of tree.orphans) {
      lines.push(line(orphan, "! ", true));
      walk(orphan, "  ");
    }
  }
  return lines.join("\n");
}

export interface RenderHtmlOptions {
  /** Base URL of the trace viewer; when given, the header links to `${viewerUrl}/traces/<traceId>`. */
  viewerUrl?: string;
  title?: string;
}

/**
 * Compact self-contained HTML (inline styles, no external assets or scripts): the run tree with a
 * waterfall bar per run, coloured by service, orphans in their own section. The trace viewer's page
 * draws the same table with the same colours (setup/src/viewer/render-core.ts). For
 * tslab.display.html or any HTML file.
 */
export function renderTraceHtml(runs: readonly TraceRun[], options: RenderHtmlOptions = {}): string {
  const layout = layoutTrace(runs);
  const { counts } = layout;
  const red = `color:${ERROR_COLOR}`;
  const url = options.viewerUrl && layout.traceId ? traceUrl(layout.traceId, options.viewerUrl) : undefined;
  const link = url ? ` · trace viewer <a href="${escapeHtml(url)}" target="_blank" rel="noopener">${escapeHtml(url)}</a>` : "";
  const title = options.title ? `<b>${escapeHtml(options.title)}</b> · ` : "";
  const problems = [
    ...(counts.roots !== 1 ? [`${counts.roots} roots`] : []),
    ...(counts.orphans ? [`${counts.orphans} orphan${counts.orphans === 1 ? "" : "s"}`] : []),
    ...(counts.errors ? [`${counts.errors} error${counts.errors === 1 ? "" : "s"}`] : []),
    ...(counts.running ? [`${counts.running} running`] : []),
  ];
  const table = renderWaterfall(layout, layout.rows, {
    skin: "inline",
    extraSections: [{ heading: "orphans (parent not in this trace)", rows: layout.orphanRows }],
  });
  return (
    `<div style="font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;color:#1f2328;line-height:1.4">` +
    `<div style="margin-bottom:4px">${title}trace <code>${escapeHtml(layout.traceId ?? "(unknown)")}</code> · ${counts.runs} runs` +
    `${problems.map((p) => ` · <span style="${p.endsWith("running") ? "color:#9a6700" : red}">${p}</span>`).join("")} · ${formatDuration(layout.durationMs)}${link}</div>` +
    `<div style="margin-bottom:4px">${renderLegend(layout, "inline")}</div>` +
    table +
    `</div>`
  );
}

/**
 * The viewer that shows traces written in this process, when there is one: TRACE_VIEWER_URL, else
 * the local trace server (TRACE_SERVER_URL) when the SDK writes to it (local mode, or mirrored).
 */
export function knownViewerUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TRACE_VIEWER_URL) return env.TRACE_VIEWER_URL;
  const server = env.TRACE_SERVER_URL?.replace(/\/+$/, "");
  if (!server) return undefined;
  const endpoint = (env.LANGSMITH_ENDPOINT ?? env.LANGCHAIN_ENDPOINT)?.replace(/\/+$/, "");
  if (endpoint === server || endpoint === `${server}/api/v1`) return server;
  return env.LANGSMITH_RUNS_ENDPOINTS?.includes(server) ? server : undefined;
}

interface TslabLike {
  display: { html(html: string): void };
}

/** tslab's module as the running kernel sees it, or undefined outside a tslab kernel. */
function tslabDisplay(): TslabLike | undefined {
  // tslab sets globalThis.__tslab__ in its kernel process; elsewhere tslab is never loaded.
  const marker = (globalThis as { __tslab__?: { require?: (id: string) => unknown } }).__tslab__;
  if (!marker) return undefined;
  try {
    const load = marker.require ?? createRequire(import.meta.url);
    const mod = load("tslab") as Partial<TslabLike>;
    return typeof mod.display?.html === "function" ? (mod as TslabLike) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Shows a trace: rich HTML in a tslab notebook, the text tree on stdout elsewhere; either way with
 * the trace's stable viewer link when a viewer is known (options.viewerUrl, else knownViewerUrl()).
 */
export function displayTrace(runs: readonly TraceRun[], options: RenderHtmlOptions = {}): void {
  const viewerUrl = options.viewerUrl ?? knownViewerUrl();
  const opts = viewerUrl ? { ...options, viewerUrl } : options;
  const tslab = tslabDisplay();
  if (tslab) {
    tslab.display.html(renderTraceHtml(runs, opts));
    return;
  }
  const traceId = buildTraceTree(runs).traceId;
  const link = viewerUrl && traceId ? `\ntrace viewer: ${traceUrl(traceId, viewerUrl)}` : "";
  console.log(renderTraceText(runs) + link);
}
