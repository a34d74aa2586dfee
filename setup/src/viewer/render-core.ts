// The one tree + waterfall renderer, used by the viewer's trace page and by
// renderTraceHtml (inline in notebooks). The two differ only in skin: the page
// styles elements through classes from its stylesheet and adds tree-grid roles
// and links; the inline skin carries the same look in style attributes, since
// notebook output cannot rely on a stylesheet.
import type { TraceRun } from "../traces/types.js";
import { buildTraceTree, formatDuration, runStatus, type TraceNode, type TraceTree } from "../traces/tree.js";

/** Text made safe for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Service colours: hues far apart, each with at least 4.5:1 contrast on white,
 * so they work for bars, swatches and text alike. Red is left out (it means
 * "error"), and so is gray (a run whose service is unknown).
 */
export const SERVICE_PALETTE: readonly string[] = ["#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#be185d", "#0e7490", "#a16207"];
/** Runs whose service is not known (no LANGSMITH_SERVICE on them or any ancestor). */
export const UNKNOWN_SERVICE_COLOR = "#6b7280";
export const ERROR_COLOR = "#b42318";

/** FNV-1a: a stable, well-spread hash of a service name. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The colour a service prefers: a function of its name alone. */
export function preferredServiceColor(service: string): string {
  return SERVICE_PALETTE[hashName(service) % SERVICE_PALETTE.length] ?? UNKNOWN_SERVICE_COLOR;
}

/**
 * Colours for the services shown together. Each gets its preferred colour
 * unless an alphabetically earlier service already took it; then the next free
 * one. So a service keeps its colour across traces unless it would be
 * indistinguishable from a neighbour, and the same set of services always gets
 * the same colours (the viewer page and the notebook rendering agree).
 */
export function assignServiceColors(services: Iterable<string>): Map<string, string> {
  const sorted = [...new Set(services)].sort();
  const taken = new Set<number>();
  const out = new Map<string, string>();
  for (const service of sorted) {
    const preferred = hashName(service) % SERVICE_PALETTE.length;
    let slot = preferred;
    if (taken.size < SERVICE_PALETTE.length) {
      while (taken.has(slot)) slot = (slot + 1) % SERVICE_PALETTE.length;
    }
    taken.add(slot);
    out.set(service, SERVICE_PALETTE[slot] ?? UNKNOWN_SERVICE_COLOR);
  }
  return out;
}

export interface RunTypeBadge {
  letter: string;
  label: string;
  fg: string;
  bg: string;
}

const BADGES: Record<string, Omit<RunTypeBadge, "label">> = {
  chain: { letter: "C", fg: "#3730a3", bg: "#e0e7ff" },
  llm: { letter: "L", fg: "#9d174d", bg: "#fce7f3" },
  tool: { letter: "T", fg: "#92400e", bg: "#fef3c7" },
  retriever: { letter: "R", fg: "#166534", bg: "#dcfce7" },
  embedding: { letter: "E", fg: "#155e75", bg: "#cffafe" },
  prompt: { letter: "P", fg: "#334155", bg: "#f1f5f9" },
  parser: { letter: "O", fg: "#334155", bg: "#f1f5f9" },
};

/** A run type's letter badge (C chain, L llm, T tool, R retriever, ...); colours meet 4.5:1. */
export function runTypeBadge(runType: string): RunTypeBadge {
  const known = BADGES[runType];
  if (known) return { ...known, label: runType };
  const letter = (runType.trim()[0] ?? "?").toUpperCase();
  return { letter, label: runType || "unknown", fg: "#334155", bg: "#f1f5f9" };
}

export type RowStatus = "ok" | "error" | "running";

export interface WaterfallRow {
  node: TraceNode;
  id: string;
  depth: number;
  /** The row this one is nested under in the view; undefined for roots and orphans. */
  parentId: string | undefined;
  hasChildren: boolean;
  /** Top of an orphaned subtree: its parent run is not in the trace. */
  orphan: boolean;
  service: string | undefined;
  color: string;
  status: RowStatus;
  durationMs: number | undefined;
  /** Bar position in % of the trace's time span; undefined without a start time. */
  bar: { left: number; width: number; open: boolean } | undefined;
}

export interface TraceLayout {
  tree: TraceTree;
  traceId: string | undefined;
  /** Runs reachable from a root, depth first in start order. */
  rows: WaterfallRow[];
  /** Orphaned subtrees, each starting with its orphan row. */
  orphanRows: WaterfallRow[];
  services: string[];
  colors: Map<string, string>;
  startMs: number | undefined;
  endMs: number | undefined;
  durationMs: number | undefined;
  counts: { runs: number; errors: number; running: number; roots: number; orphans: number };
}

/** Links runs into a tree and computes everything the waterfall draws. */
export function layoutTrace(runs: readonly TraceRun[]): TraceLayout {
  const tree = buildTraceTree(runs);
  const services = [...new Set([...tree.nodes.values()].flatMap((n) => (n.service ? [n.service] : [])))].sort();
  const colors = assignServiceColors(services);
  const t0 = tree.startMs ?? 0;
  const span = Math.max(1, (tree.endMs ?? t0) - t0);
  let errors = 0;
  let running = 0;

  const toRow = (node: TraceNode, depth: number, parentId: string | undefined, orphan: boolean): WaterfallRow => {
    const status = runStatus(node.run);
    if (status === "error") errors++;
    if (node.endMs === undefined) running++;
    let bar: WaterfallRow["bar"];
    if (node.startMs !== undefined) {
      const left = ((node.startMs - t0) / span) * 100;
      const end = node.endMs ?? tree.endMs ?? node.startMs;
      const width = Math.min(Math.max(0.5, ((end - node.startMs) / span) * 100), Math.max(0.5, 100 - left));
      bar = { left: round2(left), width: round2(width), open: node.endMs === undefined };
    }
    return {
      node,
      id: node.run.id,
      depth,
      parentId,
      hasChildren: node.children.length > 0,
      orphan,
      service: node.service,
      color: node.service ? (colors.get(node.service) ?? UNKNOWN_SERVICE_COLOR) : UNKNOWN_SERVICE_COLOR,
      status,
      durationMs: node.startMs !== undefined && node.endMs !== undefined ? node.endMs - node.startMs : undefined,
      bar,
    };
  };
  const flatten = (start: TraceNode, orphan: boolean, out: WaterfallRow[]): void => {
    const walk = (node: TraceNode, depth: number, parentId: string | undefined): void => {
      out.push(toRow(node, depth, parentId, orphan && depth === 0));
      for (const child of node.children) walk(child, depth + 1, node.run.id);
    };
    walk(start, 0, undefined);
  };
  const rows: WaterfallRow[] = [];
  for (const root of tree.roots) flatten(root, false, rows);
  const orphanRows: WaterfallRow[] = [];
  for (const orphan of tree.orphans) flatten(orphan, true, orphanRows);

  return {
    tree,
    traceId: tree.traceId,
    rows,
    orphanRows,
    services,
    colors,
    startMs: tree.startMs,
    endMs: tree.endMs,
    durationMs: tree.startMs !== undefined && tree.endMs !== undefined ? tree.endMs - tree.startMs : undefined,
    counts: { runs: tree.nodes.size, errors, running, roots: tree.roots.length, orphans: tree.orphans.length },
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** First line of a text, shortened to `max` characters. */
export function firstLine(text: string, max = 80): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The tail of a UUID: v7 ids of one trace share their leading (timestamp) digits. */
export function shortId(id: string): string {
  return id.length > 8 ? `…${id.slice(-8)}` : id;
}

export type Skin = "page" | "inline";

export interface WaterfallOptions {
  skin: Skin;
  /** Page skin: the run shown in the details panel. */
  selectedRunId?: string;
  /** Page skin: link target of a run's name (selecting it without script). */
  runHref?: (runId: string) => string;
  /** Accessible name of the table. */
  label?: string;
  /** Rows drawn before the given rows, under a heading row (inline skin: the orphans). */
  extraSections?: Array<{ heading: string; rows: WaterfallRow[] }>;
}

const STATUS_COLOR: Record<RowStatus, string> = { ok: "#1a7f37", error: ERROR_COLOR, running: "#9a6700" };

/**
 * Inline styles per element: the inline skin's whole look, and what the page's
 * stylesheet (assets/viewer.css) reproduces under the class of the same name.
 */
const INLINE: Record<string, string> = {
  "wf-table": "border-collapse:collapse;width:100%;font-size:inherit;table-layout:auto",
  "wf-head": "padding:1px 6px;text-align:left;font-weight:normal;color:#57606a;white-space:nowrap;border-bottom:1px solid #d0d7de",
  "wf-cell": "padding:1px 6px;white-space:nowrap;vertical-align:middle",
  "wf-name": "padding:1px 6px;white-space:nowrap;vertical-align:middle;max-width:420px;overflow:hidden;text-overflow:ellipsis",
  "wf-num": "padding:1px 6px;white-space:nowrap;vertical-align:middle;text-align:right",
  "wf-timeline": "padding:1px 6px;width:40%;min-width:160px;vertical-align:middle",
  "wf-track": "position:relative;height:14px;background:#eef1f4;border-radius:2px",
  "wf-badge": "display:inline-block;min-width:14px;padding:0 2px;margin-right:5px;border-radius:3px;font-size:10px;line-height:14px;text-align:center;font-weight:bold",
  "wf-swatch": "display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:4px;vertical-align:baseline",
  "wf-orphan": `color:${ERROR_COLOR};font-weight:bold`,
  "wf-section": `padding:6px 6px 2px;color:${ERROR_COLOR};font-weight:bold`,
  "wf-ticks": "position:relative;height:14px;min-width:160px",
  "wf-tick": "position:absolute;top:0;font-size:10px;color:#57606a;white-space:nowrap",
  "wf-note": `color:${ERROR_COLOR}`,
};

function attrs(skin: Skin, cls: string, dynamic = ""): string {
  if (skin === "page") return `class="${cls}"${dynamic ? ` style="${dynamic}"` : ""}`;
  const base = INLINE[cls] ?? "";
  const style = [base, dynamic].filter(Boolean).join(";");
  return style ? `style="${style}"` : "";
}

/** Short spans get a decimal, so "0 ms, 1 ms, 1 ms" reads "0 ms, 0.6 ms, 1.2 ms". */
function tickLabel(ms: number, span: number): string {
  return span < 10 ? `${ms.toFixed(1).replace(/\.0$/, "")} ms` : formatDuration(ms);
}

/** Tick labels above the waterfall: start, middle and end of the trace. */
function ticks(layout: TraceLayout, skin: Skin): string {
  const span = layout.durationMs;
  if (span === undefined) return "";
  return [0, 50, 100]
    .map((pct) => {
      const pos = pct === 100 ? "right:0" : pct === 0 ? "left:0" : `left:${pct}%;transform:translateX(-50%)`;
      return `<span ${attrs(skin, "wf-tick", pos)}>${tickLabel((span * pct) / 100, span)}</span>`;
    })
    .join("");
}

export function serviceSwatch(color: string, skin: Skin): string {
  return `<span ${attrs(skin, "wf-swatch", `background:${color}`)} aria-hidden="true"></span>`;
}

function badgeHtml(runType: string, skin: Skin): string {
  const b = runTypeBadge(runType);
  return `<span ${attrs(skin, "wf-badge", `color:${b.fg};background:${b.bg}`)} title="${escapeHtml(b.label)}" aria-label="${escapeHtml(b.label)}" role="img">${escapeHtml(b.letter)}</span>`;
}

/** The page shows the error itself in the details panel and the cell's tooltip; a notebook has only the cell. */
function statusText(row: WaterfallRow, skin: Skin): string {
  return row.status === "error" && skin === "inline" ? `error: ${firstLine(row.node.run.error ?? "", 40)}` : row.status;
}

function rowHtml(row: WaterfallRow, layout: TraceLayout, opts: WaterfallOptions): string {
  const { skin } = opts;
  const run = row.node.run;
  const page = skin === "page";
  const indent = 6 + row.depth * 14;
  const orphanNote = row.orphan
    ? `<span ${attrs(skin, "wf-orphan")} title="parent ${escapeHtml(run.parent_run_id ?? "")} is not in this trace">orphan </span>`
    : "";
  const foreign = run.trace_id && layout.traceId && run.trace_id !== layout.traceId ? ` <span ${attrs(skin, "wf-note")}>(other trace ${escapeHtml(shortId(run.trace_id))})</span>` : "";
  const name = escapeHtml(run.name || "(unnamed)");
  const nameHtml = page && opts.runHref ? `<a class="wf-link" href="${escapeHtml(opts.runHref(row.id))}">${name}</a>` : name;
  const missing = row.orphan && page ? ` <span class="wf-note">parent ${escapeHtml(shortId(run.parent_run_id ?? ""))} missing</span>` : "";

  let bar = "";
  if (row.bar) {
    const fill = row.bar.open ? `background:repeating-linear-gradient(90deg,${row.color},${row.color} 4px,transparent 4px,transparent 6px)` : `background:${row.color}`;
    const geometry = `left:${row.bar.left}%;width:${row.bar.width}%;${fill}`;
    const errorRing = row.status === "error" ? `;box-shadow:0 0 0 2px ${ERROR_COLOR}` : "";
    bar = page
      ? `<div class="wf-bar${row.status === "error" ? " wf-bar-error" : ""}${row.bar.open ? " wf-bar-open" : ""}" style="${geometry}"></div>`
      : `<div style="position:absolute;top:2px;bottom:2px;${geometry};border-radius:2px${errorRing}"></div>`;
  }
  const statusStyle = `color:${STATUS_COLOR[row.status]}`;
  const titleAttr = run.error ? ` title="${escapeHtml(firstLine(run.error, 300))}"` : "";
  const cells =
    `<td ${attrs(skin, "wf-name", `padding-left:${indent}px`)}${page ? ` role="gridcell" title="${name}"` : ""}>${orphanNote}${badgeHtml(run.run_type, skin)}${nameHtml}${missing}${foreign}</td>` +
    `<td ${attrs(skin, "wf-cell")}${page ? ' role="gridcell"' : ""}>${serviceSwatch(row.color, skin)}${escapeHtml(row.service ?? "?")}</td>` +
    `<td ${attrs(skin, "wf-num")}${page ? ' role="gridcell"' : ""}>${formatDuration(row.durationMs)}</td>` +
    `<td ${attrs(skin, "wf-cell", statusStyle)}${titleAttr}${page ? ' role="gridcell"' : ""}>${escapeHtml(statusText(row, skin))}</td>` +
    `<td ${attrs(skin, "wf-timeline")}${page ? ' role="gridcell"' : ""}><div ${attrs(skin, "wf-track")}>${bar}</div></td>`;
  if (!page) return `<tr>${cells}</tr>`;
  const classes = ["wf-row", `wf-${row.status}`, ...(row.orphan ? ["wf-orphan-row"] : []), ...(row.id === opts.selectedRunId ? ["wf-selected"] : [])];
  const aria = `aria-level="${row.depth + 1}"${row.hasChildren ? ' aria-expanded="true"' : ""} aria-selected="${row.id === opts.selectedRunId ? "true" : "false"}"`;
  const data = `data-run-id="${escapeHtml(row.id)}"${row.parentId ? ` data-parent-id="${escapeHtml(row.parentId)}"` : ""} data-depth="${row.depth}" data-service="${escapeHtml(row.service ?? "")}" data-color="${row.color}"`;
  return `<tr class="${classes.join(" ")}" role="row" ${aria} ${data}>${cells}</tr>`;
}

/** The tree + waterfall table for `rows` (a layout's `rows` or `orphanRows`). */
export function renderWaterfall(layout: TraceLayout, rows: readonly WaterfallRow[], opts: WaterfallOptions): string {
  const { skin } = opts;
  const page = skin === "page";
  const th = (text: string, extra = ""): string => `<th ${attrs(skin, "wf-head", extra)} scope="col"${page ? ' role="columnheader"' : ""}>${text}</th>`;
  const head =
    `<thead${page ? ' role="rowgroup"' : ""}><tr${page ? ' role="row"' : ""}>${th("Run")}${th("Service")}${th("Duration", "text-align:right")}${th("Status")}` +
    `${th(`<div ${attrs(skin, "wf-ticks")}>${ticks(layout, skin)}</div>`)}</tr></thead>`;
  const body = rows.map((r) => rowHtml(r, layout, opts));
  for (const section of opts.extraSections ?? []) {
    if (section.rows.length === 0) continue;
    body.push(`<tr><td colspan="5" ${attrs(skin, "wf-section")}>${escapeHtml(section.heading)}</td></tr>`);
    body.push(...section.rows.map((r) => rowHtml(r, layout, opts)));
  }
  const label = opts.label ? ` aria-label="${escapeHtml(opts.label)}"` : "";
  const role = page ? ' role="treegrid"' : "";
  return `<table ${attrs(skin, "wf-table")}${role}${label}>${head}<tbody${page ? ' role="rowgroup"' : ""}>${body.join("")}</tbody></table>`;
}

/** Swatch + name per service, in the colours the waterfall uses. */
export function renderLegend(layout: Pick<TraceLayout, "services" | "colors">, skin: Skin): string {
  if (layout.services.length === 0) return "";
  const item = (s: string): string =>
    skin === "page"
      ? `<li class="legend-item" data-service="${escapeHtml(s)}" data-color="${layout.colors.get(s) ?? UNKNOWN_SERVICE_COLOR}">${serviceSwatch(layout.colors.get(s) ?? UNKNOWN_SERVICE_COLOR, skin)}${escapeHtml(s)}</li>`
      : `<span style="margin-right:10px">${serviceSwatch(layout.colors.get(s) ?? UNKNOWN_SERVICE_COLOR, skin)}${escapeHtml(s)}</span>`;
  const items = layout.services.map(item).join("");
  return skin === "page" ? `<ul class="legend" aria-label="Services">${items}</ul>` : items;
}
