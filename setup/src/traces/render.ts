import { createRequire } from "node:module";
import { DEFAULT_TRACE_SERVER_PORT } from "../config.js";
import type { TraceRun } from "./types.js";
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

/** The tail of a UUID: v7 ids of one trace share their leading (timestamp) digits. */
function shortId(id: string): string {
  return id.length > 8 ? `…${id.slice(-8)}` : id;
}

function firstLine(text: string, max = 80): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
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

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const NO_SERVICE_COLOR = "#9e9e9e";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface RenderHtmlOptions {
  /** Base URL of the trace viewer; when given, the header links to `${viewerUrl}/traces/<traceId>`. */
  viewerUrl?: string;
  title?: string;
}

/**
 * Compact self-contained HTML (inline styles, no external assets): the run tree with a waterfall
 * bar per run, coloured by service. For tslab.display.html or any HTML file.
 */
export function renderTraceHtml(runs: readonly TraceRun[], options: RenderHtmlOptions = {}): string {
  const tree = buildTraceTree(runs);
  const services = servicesOf(tree);
  const color = (service: string | undefined): string =>
    service === undefined ? NO_SERVICE_COLOR : (PALETTE[services.indexOf(service) % PALETTE.length] ?? NO_SERVICE_COLOR);
  const t0 = tree.startMs ?? 0;
  const span = Math.max(1, (tree.endMs ?? t0) - t0);
  const cell = "padding:1px 6px;white-space:nowrap;vertical-align:middle";
  const rows: string[] = [];
  const row = (node: TraceNode, depth: number, orphan: boolean): void => {
    const c = color(node.service);
    const status = runStatus(node.run);
    const statusColor = status === "error" ? "#c62828" : status === "running" ? "#ef6c00" : "#2e7d32";
    let bar = "";
    if (node.startMs !== undefined) {
      const left = ((node.startMs - t0) / span) * 100;
      const width = Math.max(0.5, (((node.endMs ?? tree.endMs ?? node.startMs) - node.startMs) / span) * 100);
      const style = node.endMs === undefined ? `background:repeating-linear-gradient(90deg,${c},${c} 4px,transparent 4px,transparent 6px)` : `background:${c}`;
      bar = `<div style="position:absolute;top:2px;bottom:2px;left:${left.toFixed(2)}%;width:${Math.min(width, 100 - left).toFixed(2)}%;${style};border-radius:2px"></div>`;
    }
    const mark = orphan ? `<span style="color:#c62828;font-weight:bold" title="parent ${escapeHtml(node.run.parent_run_id ?? "")} is not in this trace">orphan </span>` : "";
    const title = node.run.error ? ` title="${escapeHtml(node.run.error)}"` : "";
    rows.push(
      `<tr><td style="${cell};padding-left:${6 + depth * 14}px">${mark}${escapeHtml(node.run.name)}</td>` +
        `<td style="${cell};color:#666">${escapeHtml(node.run.run_type)}</td>` +
        `<td style="${cell}"><span style="display:inline-block;width:8px;height:8px;border-radius:2px;background:${c};margin-right:4px"></span>${escapeHtml(node.service ?? "?")}</td>` +
        `<td style="${cell};text-align:right">${formatDuration(duration(node))}</td>` +
        `<td style="${cell};color:${statusColor}"${title}>${escapeHtml(status === "error" ? `error: ${firstLine(node.run.error ?? "", 40)}` : status)}</td>` +
        `<td style="padding:1px 6px;width:40%;min-width:160px"><div style="position:relative;height:14px;background:#f2f2f2;border-radius:2px">${bar}</div></td></tr>`,
    );
    for (const child of node.children) row(child, depth + 1, false);
  };
  for (const root of tree.roots) row(root, 0, false);
  if (tree.orphans.length) {
    rows.push(`<tr><td colspan="6" style="${cell};padding-top:6px;color:#c62828">orphans (parent not in this trace)</td></tr>`);
    for (const orphan of tree.orphans) row(orphan, 0, true);
  }
  const link =
    options.viewerUrl && tree.traceId
      ? ` · <a href="${escapeHtml(traceUrl(tree.traceId, options.viewerUrl))}" target="_blank" rel="noopener">open in trace viewer</a>`
      : "";
  const legend = services
    .map((s) => `<span style="margin-right:10px"><span style="display:inline-block;width:8px;height:8px;border-radius:2px;background:${color(s)};margin-right:4px"></span>${escapeHtml(s)}</span>`)
    .join("");
  const title = options.title ? `<b>${escapeHtml(options.title)}</b> · ` : "";
  return (
    `<div style="font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;color:#222;line-height:1.4">` +
    `<div style="margin-bottom:4px">${title}trace <code>${escapeHtml(tree.traceId ?? "(unknown)")}</code> · ${tree.nodes.size} runs` +
    `${tree.roots.length !== 1 ? ` · <span style="color:#c62828">${tree.roots.length} roots</span>` : ""} · ${formatDuration(tree.endMs !== undefined && tree.startMs !== undefined ? tree.endMs - tree.startMs : undefined)}${link}</div>` +
    `<div style="margin-bottom:4px">${legend}</div>` +
    `<table style="border-collapse:collapse;width:100%;font-size:inherit">${rows.join("")}</table></div>`
  );
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

/** Shows a trace: rich HTML in a tslab notebook, the text tree on stdout elsewhere. */
export function displayTrace(runs: readonly TraceRun[], options: RenderHtmlOptions = {}): void {
  const tslab = tslabDisplay();
  if (tslab) tslab.display.html(renderTraceHtml(runs, options));
  else console.log(renderTraceText(runs));
}
