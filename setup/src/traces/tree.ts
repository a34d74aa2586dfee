import { serviceOf } from "../service.js";
import type { TraceRun } from "./types.js";

export interface TraceNode {
  run: TraceRun;
  children: TraceNode[];
  /** Own LANGSMITH_SERVICE, else the nearest ancestor's. */
  service: string | undefined;
  startMs: number | undefined;
  endMs: number | undefined;
}

export interface TraceTree {
  /** The trace most runs belong to (their common trace_id). */
  traceId: string | undefined;
  nodes: Map<string, TraceNode>;
  /** Runs without a parent. */
  roots: TraceNode[];
  /** Runs whose parent is not in the set (or that sit on a parent cycle), with their subtrees. */
  orphans: TraceNode[];
  /** The root the trace is about: the one whose id is the trace id, else the earliest. */
  mainRoot: TraceNode | undefined;
  startMs: number | undefined;
  endMs: number | undefined;
}

const HAS_ZONE = /(?:[zZ]|[+-]\d\d:?\d\d)$/;

/** Epoch milliseconds from the SDK's ISO strings (with or without a zone; LangSmith omits it) or numbers. */
export function toMs(value: number | string | null | undefined): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  const parsed = Date.parse(HAS_ZONE.test(value) ? value : `${value}Z`);
  return Number.isNaN(parsed) ? undefined : parsed;
}

function byStart(a: TraceNode, b: TraceNode): number {
  const sa = a.startMs ?? Number.POSITIVE_INFINITY;
  const sb = b.startMs ?? Number.POSITIVE_INFINITY;
  if (sa !== sb) return sa - sb;
  return (a.run.dotted_order ?? a.run.id).localeCompare(b.run.dotted_order ?? b.run.id);
}

function mostCommon(values: Iterable<string>): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  let bestCount = 0;
  for (const [v, n] of counts) {
    if (n > bestCount) {
      best = v;
      bestCount = n;
    }
  }
  return best;
}

/** Links runs into parent/child nodes; never throws on broken input (that is what verifyTrace reports). */
export function buildTraceTree(runs: readonly TraceRun[]): TraceTree {
  const byId = new Map<string, TraceRun>();
  for (const run of runs) byId.set(run.id, run);
  const nodes = new Map<string, TraceNode>();
  for (const run of byId.values()) {
    nodes.set(run.id, {
      run,
      children: [],
      service: serviceOf(run, byId),
      startMs: toMs(run.start_time),
      endMs: toMs(run.end_time),
    });
  }
  const roots: TraceNode[] = [];
  const orphans: TraceNode[] = [];
  for (const node of nodes.values()) {
    const parentId = node.run.parent_run_id;
    if (!parentId) roots.push(node);
    else {
      const parent = nodes.get(parentId);
      if (parent) parent.children.push(node);
      else orphans.push(node);
    }
  }
  // Nodes on a parent cycle are reachable from neither roots nor orphans; surface them as orphans,
  // cutting the edge from their parent so the tree stays acyclic for every recursive walker.
  const reached = new Set<string>();
  const mark = (start: TraceNode): void => {
    const stack = [start];
    while (stack.length > 0) {
      const n = stack.pop() as TraceNode;
      if (reached.has(n.run.id)) continue;
      reached.add(n.run.id);
      stack.push(...n.children);
    }
  };
  for (const n of [...roots, ...orphans]) mark(n);
  for (const node of nodes.values()) {
    if (!reached.has(node.run.id)) {
      const parent = node.run.parent_run_id ? nodes.get(node.run.parent_run_id) : undefined;
      if (parent) parent.children = parent.children.filter((c) => c !== node);
      orphans.push(node);
      mark(node);
    }
  }
  for (const node of nodes.values()) node.children.sort(byStart);
  roots.sort(byStart);
  orphans.sort(byStart);

  const traceId = mostCommon([...byId.values()].flatMap((r) => (r.trace_id ? [r.trace_id] : []))) ?? roots[0]?.run.id;
  const mainRoot = roots.find((r) => r.run.id === traceId) ?? roots[0];
  let startMs: number | undefined;
  let endMs: number | undefined;
  for (const n of nodes.values()) {
    if (n.startMs !== undefined) startMs = startMs === undefined ? n.startMs : Math.min(startMs, n.startMs);
    const last = n.endMs ?? n.startMs;
    if (last !== undefined) endMs = endMs === undefined ? last : Math.max(endMs, last);
  }
  return { traceId, nodes, roots, orphans, mainRoot, startMs, endMs };
}

/** Ids of the runs whose parent chain reaches `root`, root included. */
export function connectedTo(root: TraceNode | undefined): Set<string> {
  const ids = new Set<string>();
  if (!root) return ids;
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop() as TraceNode;
    if (ids.has(n.run.id)) continue;
    ids.add(n.run.id);
    stack.push(...n.children);
  }
  return ids;
}

export function runStatus(run: TraceRun): "error" | "running" | "ok" {
  if (run.error) return "error";
  if (toMs(run.end_time) === undefined) return "running";
  return "ok";
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
