/* global document, window, history, location, URLSearchParams, Element */
// The trace viewer's only script: keyboard navigation and selection in the run
// tree, folding, live updates while a trace is in progress, and a live trace
// list. The server renders all HTML; this swaps in fragments it returns.
"use strict";

(function () {
  const body = document.body;
  const POLL_MS = 1000;
  const LIST_POLL_MS = 3000;
  // After the last run ends, late runs (another service's batch, an orphan's
  // parent) can still arrive; keep watching this long after the last change.
  const SETTLE_MS = 15000;

  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(d.getTime())) el.title = `${d.toLocaleString()} (local time)`;
    }
  }
  localTimes(document);

  if (body.classList.contains("page-list") && body.dataset.liveList === "1") watchList();
  if (body.classList.contains("page-trace")) tracePage();

  function watchList() {
    let timer;
    async function poll() {
      timer = undefined;
      if (document.visibilityState !== "visible") return;
      const params = new URLSearchParams(location.search);
      params.set("v", body.dataset.version || "");
      try {
        const res = await fetch(`/_viewer/list-state?${params}`, { headers: { accept: "application/json" } });
        if (res.status === 200) {
          const state = await res.json();
          const rows = document.getElementById("trace-rows");
          if (rows) {
            rows.innerHTML = state.rows;
            localTimes(rows);
          }
          body.dataset.version = state.version;
        }
      } catch {
        // The server may be restarting; try again on the next tick.
      }
      schedule();
    }
    function schedule() {
      if (timer === undefined && document.visibilityState === "visible") timer = window.setTimeout(poll, LIST_POLL_MS);
    }
    document.addEventListener("visibilitychange", schedule);
    schedule();
  }

  function tracePage() {
    const traceId = body.dataset.traceId;
    const status = document.getElementById("live-status");
    const details = document.getElementById("run-details");
    const collapsed = new Set();
    let lastChange = Date.now();
    let polling = false;

    const rows = () => Array.from(document.querySelectorAll("tr.wf-row"));
    const visibleRows = () => rows().filter((r) => !r.hidden);
    const rowById = (id) => rows().find((r) => r.dataset.runId === id);

    function setupRows() {
      const all = rows();
      const selected = body.dataset.selected;
      let focusable = all.find((r) => r.dataset.runId === selected) || all[0];
      for (const row of all) {
        row.tabIndex = row === focusable ? 0 : -1;
        for (const a of row.querySelectorAll("a")) a.tabIndex = -1;
        const isSelected = row.dataset.runId === selected;
        row.setAttribute("aria-selected", isSelected ? "true" : "false");
        row.classList.toggle("wf-selected", isSelected);
        if (row.hasAttribute("aria-expanded")) row.setAttribute("aria-expanded", collapsed.has(row.dataset.runId) ? "false" : "true");
      }
      applyFolding();
      if (focusable && focusable.hidden) {
        focusable.tabIndex = -1;
        focusable = visibleRows()[0];
        if (focusable) focusable.tabIndex = 0;
      }
    }

    function applyFolding() {
      const byId = new Map(rows().map((r) => [r.dataset.runId, r]));
      for (const row of byId.values()) {
        let hidden = false;
        let parent = row.dataset.parentId;
        while (parent && !hidden) {
          if (collapsed.has(parent)) hidden = true;
          parent = byId.get(parent) && byId.get(parent).dataset.parentId;
        }
        row.hidden = hidden;
      }
    }

    function focusRow(row) {
      if (!row) return;
      for (const r of rows()) r.tabIndex = -1;
      row.tabIndex = 0;
      row.focus();
    }

    function setExpanded(row, expanded) {
      if (!row.hasAttribute("aria-expanded")) return false;
      const id = row.dataset.runId;
      if (expanded === !collapsed.has(id)) return false;
      if (expanded) collapsed.delete(id);
      else collapsed.add(id);
      row.setAttribute("aria-expanded", expanded ? "true" : "false");
      applyFolding();
      return true;
    }

    async function select(id, focus) {
      const row = rowById(id);
      body.dataset.selected = id;
      for (const r of rows()) {
        const on = r.dataset.runId === id;
        r.setAttribute("aria-selected", on ? "true" : "false");
        r.classList.toggle("wf-selected", on);
      }
      if (row && focus) focusRow(row);
      const url = new URL(location.href);
      url.searchParams.set("run", id);
      history.replaceState(null, "", url);
      const state = await fetchState(true);
      if (state && state.details !== undefined && body.dataset.selected === id) showDetails(state.details);
    }

    function showDetails(html) {
      details.innerHTML = html;
      localTimes(details);
    }

    async function fetchState(wantDetails) {
      const params = new URLSearchParams({ v: body.dataset.version || "" });
      if (body.dataset.selected) params.set("run", body.dataset.selected);
      if (wantDetails) params.set("details", "1");
      const res = await fetch(`/traces/${encodeURIComponent(traceId)}/state?${params}`, { headers: { accept: "application/json" } });
      if (res.status === 204) return undefined;
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const state = await res.json();
      if (state.regions) applyRegions(state);
      return state;
    }

    function applyRegions(state) {
      const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.runId : undefined;
      for (const [key, id] of [["summary", "trace-summary"], ["tree", "trace-tree"], ["orphans", "trace-orphans"], ["rejections", "trace-rejections"], ["doctor", "trace-doctor"]]) {
        const el = document.getElementById(id);
        if (el) {
          el.innerHTML = state.regions[key];
          localTimes(el);
        }
      }
      if (state.details !== undefined) showDetails(state.details);
      body.dataset.version = state.version;
      body.dataset.pending = state.pending ? "1" : "0";
      const h1 = document.querySelector("#trace-summary h1");
      if (h1) document.title = `${h1.textContent} · trace viewer`;
      lastChange = Date.now();
      setupRows();
      if (focusedId) {
        const again = rowById(focusedId);
        if (again && !again.hidden) focusRow(again);
      }
    }

    function describeLive() {
      if (!status) return;
      const running = document.querySelectorAll("tr.wf-running").length;
      if (body.dataset.pending === "1") {
        status.textContent = running ? `Live: ${running} run${running === 1 ? "" : "s"} still running; updating.` : "Live: waiting for runs; updating.";
      } else if (polling) {
        status.textContent = "Live: all runs ended; still watching for late runs.";
      } else {
        status.textContent = "All runs ended. Reload to check for late runs.";
      }
    }

    async function poll() {
      try {
        await fetchState(false);
      } catch {
        // Server restarting or gone: keep trying while the trace is in progress.
      }
      const keep = body.dataset.pending === "1" || Date.now() - lastChange < SETTLE_MS;
      polling = keep;
      describeLive();
      if (keep) window.setTimeout(poll, POLL_MS);
    }

    document.addEventListener("click", (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!target) return;
      const jump = target.closest("[data-select-run]");
      if (jump) {
        event.preventDefault();
        void select(jump.getAttribute("data-select-run"), true);
        return;
      }
      const row = target.closest("tr.wf-row");
      if (row) {
        event.preventDefault();
        void select(row.dataset.runId, true);
      }
    });

    document.addEventListener("keydown", (event) => {
      const row = event.target instanceof Element ? event.target.closest("tr.wf-row") : null;
      if (!row || event.altKey || event.ctrlKey || event.metaKey) return;
      const list = visibleRows();
      const i = list.indexOf(row);
      let handled = true;
      switch (event.key) {
        case "ArrowDown":
          focusRow(list[Math.min(list.length - 1, i + 1)]);
          break;
        case "ArrowUp":
          focusRow(list[Math.max(0, i - 1)]);
          break;
        case "Home":
          focusRow(list[0]);
          break;
        case "End":
          focusRow(list[list.length - 1]);
          break;
        case "ArrowRight":
          if (!setExpanded(row, true) && row.getAttribute("aria-expanded") === "true") {
            const child = list[i + 1];
            if (child && child.dataset.parentId === row.dataset.runId) focusRow(child);
          }
          break;
        case "ArrowLeft":
          if (!setExpanded(row, false) && row.dataset.parentId) focusRow(rowById(row.dataset.parentId));
          break;
        case "Enter":
        case " ":
          void select(row.dataset.runId, true);
          break;
        default:
          handled = false;
      }
      if (handled) event.preventDefault();
    });

    setupRows();
    polling = body.dataset.pending === "1";
    describeLive();
    if (polling) window.setTimeout(poll, POLL_MS);
  }
})();
