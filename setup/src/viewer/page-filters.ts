// What the viewer's threads and stats pages share: the time window and project
// they read (query parameters `window` and `project`), the filter form for
// them, and number formatting. Every client string goes through escapeHtml.
import type { TraceStore } from "../trace-server/store.js";
import { msToIso } from "../trace-server/time.js";
import type { StoredProject } from "../trace-server/types.js";
import { isUuid } from "../trace-server/validate.js";
import { formatDuration } from "../traces/tree.js";
import { escapeHtml } from "./render-core.js";

export const WINDOWS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000, all: undefined } as const;
export type WindowName = keyof typeof WINDOWS;
export const DEFAULT_WINDOW: WindowName = "7d";

export function parseWindow(value: unknown): WindowName {
  return typeof value === "string" && Object.hasOwn(WINDOWS, value) ? (value as WindowName) : DEFAULT_WINDOW;
}

/** The earliest start time the window takes in, or undefined for all time. */
export function windowStart(window: WindowName, nowMs = Date.now()): string | undefined {
  const span = WINDOWS[window];
  return span === undefined ? undefined : msToIso(nowMs - span);
}

/** A project by name or id. */
export function findProject(store: TraceStore, value: unknown): StoredProject | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  return isUuid(value) ? store.getProject(value.toLowerCase()) : store.getProjectByName(value);
}

/** The filter form: project (optionally "all projects") and window, plain GET so it works without script. */
export function filterForm(opts: { action: string; label: string; projects: readonly StoredProject[]; project: StoredProject | undefined; window: WindowName; allowAll: boolean }): string {
  const projectOptions = [
    ...(opts.allowAll ? [`<option value=""${opts.project ? "" : " selected"}>all projects</option>`] : []),
    ...opts.projects.map((p) => `<option value="${escapeHtml(p.name)}"${p.id === opts.project?.id ? " selected" : ""}>${escapeHtml(p.name)}</option>`),
  ].join("");
  const windowOptions = (Object.keys(WINDOWS) as WindowName[])
    .map((w) => `<option value="${w}"${w === opts.window ? " selected" : ""}>${w === "all" ? "all time" : `last ${w}`}</option>`)
    .join("");
  return `<form class="filters" method="get" action="${escapeHtml(opts.action)}" role="search" aria-label="${escapeHtml(opts.label)}">
  <label>Project <select name="project">${projectOptions}</select></label>
  <label>Window <select name="window">${windowOptions}</select></label>
  <button type="submit">Show</button>
</form>`;
}

export function seconds(value: number | null): string {
  return value === null ? "-" : formatDuration(value * 1000);
}

export function percent(part: number, whole: number): string {
  return whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)}%`;
}

export function usd(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : `$${value.toFixed(4)}`;
}
