// The viewer's stats panel, `/stats?project=<name|id>&window=7d`: for one
// project over a time window, the requests (traces), error rate, latency
// p50/p95/p99, time to first token, tokens and cost (when runs report it),
// then the same per service. A run's service is the one the trace page shows:
// its LANGSMITH_SERVICE metadata, else its nearest ancestor's (serviceOf). A
// service's requests are the runs where a trace enters it (the root, or a run
// whose parent is in another service); its tokens are its own LLM calls'.
// Mounted by mountViewer: `mountStatsPage(router, store, auth)`.
import type { RequestHandler, Router } from "express";
import { serviceOf } from "../service.js";
import { RequestBudget } from "../trace-server/query-budget.js";
import { allMatchingRuns, latencySeconds, quantile, usageCost } from "../trace-server/stats.js";
import type { TraceStore } from "../trace-server/store.js";
import { totalsOf, traceFacts, type TraceFacts, type TraceTotals } from "../trace-server/thread-data.js";
import type { StoredProject, StoredRun } from "../trace-server/types.js";
import type { TraceRun } from "../traces/types.js";
import { filterForm, findProject, parseWindow, percent, seconds, usd, windowStart, type WindowName } from "./page-filters.js";
import { shell } from "./pages.js";
import { assignServiceColors, escapeHtml, serviceSwatch, UNKNOWN_SERVICE_COLOR } from "./render-core.js";

export function mountStatsPage(router: Router, store: TraceStore, auth: RequestHandler): void {
  router.get("/stats", auth, async (req, res) => {
    const window = parseWindow(req.query.window);
    const project = findProject(store, req.query.project) ?? latestProject(store);
    const budget = new RequestBudget(() => res.closed, "narrow it (a shorter window)");
    const view = project ? await projectStatsView(store, project, windowStart(window), budget) : undefined;
    res.type("html").send(renderStatsPage({ projects: store.listProjects({ limit: 100 }), project, window, view }));
  });
}

/** Label of runs no service claims (no LANGSMITH_SERVICE on them or any ancestor). */
export const NO_SERVICE = "(no service)";

export interface ServiceStats {
  service: string;
  requests: number;
  errors: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
  totalTokens: number;
  promptTokens: number;
  completionTokens: number;
  cost: number | null;
}

export interface ProjectStatsView {
  totals: TraceTotals;
  services: ServiceStats[];
}

const asTraceRun = (r: StoredRun): TraceRun => ({ ...r, start_time: r.start_time ?? undefined });

/** Per-service figures over the given traces (each: every run of one trace), yielding between slices of the budget. */
export async function serviceStats(traces: ReadonlyArray<readonly StoredRun[]>, budget: RequestBudget): Promise<ServiceStats[]> {
  const acc = new Map<string, { entries: StoredRun[]; llms: StoredRun[] }>();
  const slot = (service: string): { entries: StoredRun[]; llms: StoredRun[] } => {
    let s = acc.get(service);
    if (!s) acc.set(service, (s = { entries: [], llms: [] }));
    return s;
  };
  for (const runs of traces) {
    const index = new Map(runs.map((r) => [r.id, asTraceRun(r)]));
    const label = new Map(runs.map((r) => [r.id, serviceOf(asTraceRun(r), index) ?? NO_SERVICE]));
    for (const run of runs) {
      const service = label.get(run.id) as string;
      const parentService = run.parent_run_id ? label.get(run.parent_run_id) : undefined;
      if (parentService !== service) slot(service).entries.push(run);
      if (run.run_type === "llm") slot(service).llms.push(run);
    }
    // Labelling reads nothing (the runs were charged when read), but a big project takes a while.
    await budget.spend(0);
  }
  return [...acc]
    .map(([service, { entries, llms }]) => {
      const latencies = entries.map(latencySeconds).filter((v): v is number => v !== null).sort((a, b) => a - b);
      const costs = llms.map(usageCost).filter((c) => c !== null);
      const add = (pick: (r: StoredRun) => number | null): number => llms.reduce((n, r) => n + (pick(r) ?? 0), 0);
      return {
        service,
        requests: entries.length,
        errors: entries.filter((r) => r.error !== null).length,
        latencyP50: quantile(latencies, 0.5),
        latencyP95: quantile(latencies, 0.95),
        latencyP99: quantile(latencies, 0.99),
        totalTokens: add((r) => r.total_tokens),
        promptTokens: add((r) => r.prompt_tokens),
        completionTokens: add((r) => r.completion_tokens),
        cost: costs.length ? costs.reduce((n, c) => n + (c.total ?? 0), 0) : null,
      };
    })
    .sort((a, b) => (a.service === NO_SERVICE ? 1 : b.service === NO_SERVICE ? -1 : a.service.localeCompare(b.service)));
}

/** The panel's figures: every trace of the project whose root started in the window, read within the budget. */
export async function projectStatsView(store: TraceStore, project: StoredProject, since: string | undefined, budget: RequestBudget): Promise<ProjectStatsView> {
  const roots = await allMatchingRuns(store, { projectIds: [project.id], isRoot: true, ...(since === undefined ? {} : { startTime: since }) }, budget);
  const traces: StoredRun[][] = [];
  const facts: TraceFacts[] = [];
  for (const root of roots) {
    const runs = store.getTraceRuns(root.trace_id).filter((r) => r.session_id === project.id);
    traces.push(runs);
    facts.push(traceFacts(store, root, runs));
    await budget.spend(runs.length);
  }
  return { totals: totalsOf(facts), services: await serviceStats(traces, budget) };
}

function card(label: string, value: string, note = ""): string {
  return `<div class="stat-card"><dt>${label}</dt><dd data-stat="${escapeHtml(label)}">${value}</dd>${note ? `<dd class="sub">${note}</dd>` : ""}</div>`;
}

export function renderStatsPage(input: { projects: StoredProject[]; project: StoredProject | undefined; window: WindowName; view: ProjectStatsView | undefined }): string {
  const form = filterForm({ action: "/stats", label: "Choose the project and window", projects: input.projects, project: input.project, window: input.window, allowAll: false });
  const { view } = input;
  if (!input.project || !view) {
    return shell({ title: "Stats", body: `<h1>Stats</h1>${form}<p class="empty">No project yet: traces create one when they arrive.</p>`, bodyAttrs: `class="page-stats"` });
  }
  const t = view.totals;
  const cards = [
    card("Requests", String(t.traces), "traces"),
    card("Error rate", percent(t.erroredRoots, t.traces), `${t.erroredRoots} failed`),
    card("Latency p50", seconds(t.latencyP50)),
    card("Latency p95", seconds(t.latencyP95)),
    card("Latency p99", seconds(t.latencyP99)),
    card("First token p50", seconds(t.firstTokenP50), `${t.streamed} streamed`),
    card("Tokens", String(t.totalTokens), `prompt ${t.promptTokens}, completion ${t.completionTokens}`),
    ...(t.cost ? [card("Cost", usd(t.cost.total), "as reported by the runs")] : []),
  ].join("");
  const colors = assignServiceColors(view.services.map((s) => s.service).filter((s) => s !== NO_SERVICE));
  const rows = view.services
    .map(
      (s) =>
        `<tr class="service-row" data-service="${escapeHtml(s.service)}">` +
        `<th scope="row">${serviceSwatch(colors.get(s.service) ?? UNKNOWN_SERVICE_COLOR, "page")}${escapeHtml(s.service)}</th>` +
        `<td class="num">${s.requests}</td>` +
        `<td class="num${s.errors ? " error-text" : ""}">${percent(s.errors, s.requests)}</td>` +
        `<td class="num">${seconds(s.latencyP50)}</td><td class="num">${seconds(s.latencyP95)}</td><td class="num">${seconds(s.latencyP99)}</td>` +
        `<td class="num">${s.totalTokens}</td>` +
        `<td class="num">${usd(s.cost)}</td>` +
        `</tr>`,
    )
    .join("");
  const body = `
<h1>Stats: ${escapeHtml(input.project.name)}</h1>
${form}
<section aria-label="Project totals"><dl class="stat-cards">${cards}</dl></section>
<h2>Per service</h2>
<p class="explain">A service's requests are the runs where a trace enters it: the root, or a run called from another service. Its tokens are those of its own LLM calls.</p>
<table class="traces services" aria-label="Stats per service">
<thead><tr><th scope="col">Service</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Error rate</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th><th scope="col" class="num">Tokens</th><th scope="col" class="num">Cost</th></tr></thead>
<tbody>${rows || `<tr><td colspan="8" class="empty">No traces in this window.</td></tr>`}</tbody>
</table>
<p class="hint">Percentiles are nearest-rank: the value at index floor(q × n) of the sorted latencies. The same numbers come from <code>client.getRunStats</code> (POST /runs/stats).</p>`;
  return shell({ title: `Stats · ${input.project.name}`, body, bodyAttrs: `class="page-stats"` });
}

/** The project whose runs arrived last: what a fresh `/stats` shows. */
function latestProject(store: TraceStore): StoredProject | undefined {
  const [latest] = store.listTraces({ limit: 1 });
  return latest?.project_ids[0] === undefined ? store.listProjects({ limit: 1 })[0] : store.getProject(latest.project_ids[0]);
}

