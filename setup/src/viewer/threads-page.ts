// The viewer's threads pages. `/threads` lists conversations (LangSmith
// threads: root runs sharing metadata thread_id / session_id / conversation_id)
// per project with their totals; `/threads/<threadId>?project=<name|id>` shows
// one conversation's traces in turn order, each linking to its trace page,
// with the thread's totals (turns, errors, tokens, latency p50/p95/p99).
// Mounted by mountViewer: `mountThreadPages(router, store, auth)`.
import type { RequestHandler, Router } from "express";
import type { TraceStore } from "../trace-server/store.js";
import { RequestBudget } from "../trace-server/query-budget.js";
import { factsWithin, threadsInProject, threadTraces, totalsOf, type TraceFacts, type TraceTotals } from "../trace-server/thread-data.js";
import type { StoredProject, StoredRun } from "../trace-server/types.js";
import { HttpError } from "../trace-server/body.js";
import { firstLine, escapeHtml } from "./render-core.js";
import { filterForm, findProject, parseWindow, percent, seconds, usd, windowStart, type WindowName } from "./page-filters.js";
import { shell, tracePath } from "./pages.js";

export function mountThreadPages(router: Router, store: TraceStore, auth: RequestHandler): void {
  router.get("/threads", auth, async (req, res) => {
    const window = parseWindow(req.query.window);
    const project = findProject(store, req.query.project);
    const projects = store.listProjects({ limit: 100 });
    const min = windowStart(window);
    const budget = new RequestBudget(() => res.closed, "narrow it (one project, a shorter window)");
    const found: Array<{ project: StoredProject; id: string; turns: StoredRun[]; last: string }> = [];
    for (const p of project ? [project] : projects) {
      for (const [id, turns] of await threadsInProject(store, p.id, min === undefined ? {} : { min }, budget)) {
        found.push({ project: p, id, turns, last: turns[turns.length - 1]?.start_time ?? "" });
      }
    }
    found.sort((a, b) => b.last.localeCompare(a.last) || a.id.localeCompare(b.id));
    const threads: ListedThread[] = [];
    for (const t of found.slice(0, MAX_LISTED)) threads.push({ project: t.project, id: t.id, last: t.last, totals: totalsOf(await factsWithin(store, t.turns, budget)) });
    res.type("html").send(renderThreadList({ projects, project, window, threads, total: found.length }));
  });

  router.get("/threads/:threadId", auth, async (req, res) => {
    const project = findProject(store, req.query.project);
    if (!project) throw new HttpError(404, "a thread page needs ?project=<project name or id>: a thread belongs to one project");
    const threadId = String(req.params.threadId);
    const budget = new RequestBudget(() => res.closed, "open the thread's traces one by one");
    const facts = await factsWithin(store, await threadTraces(store, project.id, threadId, budget), budget);
    res.status(facts.length ? 200 : 404).type("html").send(renderThreadPage({ project, threadId, facts }));
  });
}

/** Threads listed at most; the rest are counted, not shown. */
const MAX_LISTED = 200;

export function threadPath(projectId: string, threadId: string): string {
  return `/threads/${encodeURIComponent(threadId)}?project=${encodeURIComponent(projectId)}`;
}

function time(iso: string | null | undefined): string {
  return iso ? `<time datetime="${escapeHtml(iso)}">${escapeHtml(iso.slice(0, 10))} ${escapeHtml(iso.slice(11, 19))} UTC</time>` : "-";
}

function preview(value: unknown): string {
  if (value === null || value === undefined) return "";
  return firstLine(typeof value === "string" ? value : JSON.stringify(value), 120);
}

interface ListedThread {
  project: StoredProject;
  id: string;
  totals: TraceTotals;
  last: string;
}

function totalsHtml(t: TraceTotals, label: string): string {
  const facts: Array<[string, string]> = [
    ["Turns", String(t.traces)],
    ["Errored turns", `${t.erroredRoots} (${percent(t.erroredRoots, t.traces)})`],
    ["Tokens", `${t.totalTokens} (prompt ${t.promptTokens}, completion ${t.completionTokens})`],
    ["Latency p50", seconds(t.latencyP50)],
    ["p95", seconds(t.latencyP95)],
    ["p99", seconds(t.latencyP99)],
  ];
  if (t.cost) facts.push(["Cost", usd(t.cost.total)]);
  return `<dl class="facts stat-facts" aria-label="${escapeHtml(label)}">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd data-stat="${escapeHtml(k)}">${v}</dd></div>`).join("")}</dl>`;
}

export function renderThreadList(input: { projects: StoredProject[]; project: StoredProject | undefined; window: WindowName; threads: ListedThread[]; total: number }): string {
  const rows = input.threads
    .map(
      (t) =>
        `<tr class="thread-row" data-thread-id="${escapeHtml(t.id)}">` +
        `<td><a href="${escapeHtml(threadPath(t.project.id, t.id))}">${escapeHtml(t.id)}</a></td>` +
        `<td>${escapeHtml(t.project.name)}</td>` +
        `<td class="num">${t.totals.traces}</td>` +
        `<td>${time(t.last)}</td>` +
        `<td class="num${t.totals.erroredRoots ? " error-text" : ""}">${t.totals.erroredRoots}</td>` +
        `<td class="num">${t.totals.totalTokens}</td>` +
        `<td class="num">${seconds(t.totals.latencyP50)}</td>` +
        `</tr>`,
    )
    .join("");
  const empty = `<tr><td colspan="7" class="empty">No threads in this window. A trace joins a thread when its root run's metadata has <code>thread_id</code>, <code>session_id</code> or <code>conversation_id</code>.</td></tr>`;
  const more = input.total > input.threads.length ? `<p class="muted">Showing the ${input.threads.length} most recent of ${input.total} threads.</p>` : "";
  const body = `
<h1>Threads</h1>
<p class="explain">Conversations: the traces whose root run's metadata names the same thread, newest activity first.</p>
${filterForm({ action: "/threads", label: "Choose threads", projects: input.projects, project: input.project, window: input.window, allowAll: true })}
<table class="traces threads" aria-label="Threads, newest activity first">
<thead><tr><th scope="col">Thread</th><th scope="col">Project</th><th scope="col" class="num">Turns</th><th scope="col">Last activity</th><th scope="col" class="num">Errored turns</th><th scope="col" class="num">Tokens</th><th scope="col" class="num">p50 latency</th></tr></thead>
<tbody>${rows || empty}</tbody>
</table>${more}`;
  return shell({ title: "Threads", body, bodyAttrs: `class="page-threads"` });
}

export function renderThreadPage(input: { project: StoredProject; threadId: string; facts: TraceFacts[] }): string {
  const { facts } = input;
  const totals = totalsOf(facts);
  const rows = facts
    .map((f, i) => {
      const r = f.root;
      const status = r.error ? "error" : r.end_time ? "ok" : "running";
      return (
        `<tr class="turn-row" data-trace-id="${escapeHtml(r.trace_id)}">` +
        `<td class="num">${i + 1}</td>` +
        `<td>${time(r.start_time)}</td>` +
        `<td><a href="${escapeHtml(tracePath(r.trace_id))}">${escapeHtml(r.name || "(unnamed)")}</a></td>` +
        `<td><span class="badge badge-${status}">${status}</span></td>` +
        `<td class="num">${seconds(f.latency)}</td>` +
        `<td class="num">${f.totalTokens}</td>` +
        `<td class="preview"><code>${escapeHtml(preview(r.inputs))}</code></td>` +
        `<td class="preview"><code>${escapeHtml(preview(r.error ?? r.outputs))}</code></td>` +
        `</tr>`
      );
    })
    .join("");
  const span = facts.length ? `${time(facts[0]?.root.start_time)} to ${time(facts[facts.length - 1]?.root.start_time)}` : "-";
  const body = `
<nav class="crumbs" aria-label="Breadcrumb"><a href="/threads">Threads</a> / <span>${escapeHtml(input.threadId)}</span></nav>
<h1>Thread <code>${escapeHtml(input.threadId)}</code></h1>
<p class="muted">Project ${escapeHtml(input.project.name)} · ${span}</p>
${totalsHtml(totals, "Thread totals")}
<table class="traces turns" aria-label="Turns of this thread, in order">
<thead><tr><th scope="col" class="num">Turn</th><th scope="col">Started</th><th scope="col">Trace</th><th scope="col">Status</th><th scope="col" class="num">Latency</th><th scope="col" class="num">Tokens</th><th scope="col">Input</th><th scope="col">Output or error</th></tr></thead>
<tbody>${rows || `<tr><td colspan="8" class="empty">No traces of this thread in project ${escapeHtml(input.project.name)}.</td></tr>`}</tbody>
</table>`;
  return shell({ title: `Thread ${input.threadId}`, body, bodyAttrs: `class="page-thread"` });
}

