import type { TraceRun } from "./types.js";
import { buildTraceTree, connectedTo, formatDuration, type TraceNode } from "./tree.js";

export interface TraceExpectations {
  /** Services (LANGSMITH_SERVICE) that must have runs connected to the root. */
  services?: string[];
  /** Run names that must occur (anywhere in the run set). */
  runNames?: string[];
  minRuns?: number;
  rootName?: string;
  /** The trace id the runs must belong to. */
  traceId?: string;
  /** Clock-skew allowance for "child within its parent's window", in ms. Default 50. */
  skewMs?: number;
}

export interface ServiceHop {
  from: string;
  to: string;
  count: number;
}

export interface TraceReport {
  ok: boolean;
  traceId: string | undefined;
  rootName: string | undefined;
  runCount: number;
  rootCount: number;
  orphanCount: number;
  /** Runs whose trace_id differs from the trace's. */
  foreignCount: number;
  unendedCount: number;
  /** Runs with an error (reported, not a problem: failures can be what a trace shows). */
  errorCount: number;
  /** Services seen in the run set, sorted. */
  services: string[];
  /** Services with at least one run connected to the root, sorted. */
  connectedServices: string[];
  /** Parent-to-child service changes inside the connected tree. */
  hops: ServiceHop[];
  /** % of runs that are connected to the root and have ended. */
  completeness: number;
  /** % of services (expected ∪ seen) with runs connected to the root; null when there are none. */
  propagation: number | null;
  problems: string[];
}

function pct(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10;
}

function label(node: TraceNode): string {
  // The tail: UUIDv7 ids of one trace share their leading (timestamp) digits.
  return `"${node.run.name}" (…${node.run.id.slice(-8)})`;
}

/**
 * Checks a trace's structure: one root, no orphans, one trace id, expected services and run names,
 * children inside their parents' time windows, every run ended. Never throws; see assertTrace.
 */
export function verifyTrace(runs: readonly TraceRun[], expectations: TraceExpectations = {}): TraceReport {
  const skew = expectations.skewMs ?? 50;
  const tree = buildTraceTree(runs);
  const problems: string[] = [];
  const nodes = [...tree.nodes.values()];
  const traceId = expectations.traceId ?? tree.traceId;
  const root =
    (expectations.rootName !== undefined ? tree.roots.find((r) => r.run.name === expectations.rootName) : undefined) ??
    tree.roots.find((r) => r.run.id === traceId) ??
    tree.roots[0];

  if (nodes.length === 0) problems.push("no runs");
  if (expectations.minRuns !== undefined && nodes.length < expectations.minRuns) {
    problems.push(`expected at least ${expectations.minRuns} runs, found ${nodes.length}`);
  }
  if (nodes.length > 0 && tree.roots.length !== 1) {
    problems.push(
      `expected exactly one root run, found ${tree.roots.length}${tree.roots.length ? `: ${tree.roots.map(label).join(", ")}` : ""}`,
    );
  }
  if (expectations.rootName !== undefined && root && root.run.name !== expectations.rootName) {
    problems.push(`root is "${root.run.name}", expected "${expectations.rootName}"`);
  }
  for (const orphan of tree.orphans) {
    problems.push(
      orphan.run.parent_run_id && !tree.nodes.has(orphan.run.parent_run_id)
        ? `orphan run ${label(orphan)}: its parent ${orphan.run.parent_run_id} is not in the trace`
        : `run ${label(orphan)} is on a parent cycle`,
    );
  }
  let foreignCount = 0;
  for (const node of nodes) {
    if (traceId && node.run.trace_id && node.run.trace_id !== traceId) {
      foreignCount++;
      problems.push(`run ${label(node)} belongs to trace ${node.run.trace_id}, not ${traceId}`);
    } else if (traceId && !node.run.trace_id) {
      problems.push(`run ${label(node)} has no trace_id`);
    }
  }
  if (expectations.traceId && root && root.run.id !== expectations.traceId) {
    problems.push(`root ${label(root)} is not the trace's root run ${expectations.traceId}`);
  }

  const connected = connectedTo(root);
  const names = new Set(nodes.map((n) => n.run.name));
  for (const name of expectations.runNames ?? []) {
    if (!names.has(name)) problems.push(`no run named "${name}"`);
  }

  const seen = new Set<string>();
  const connectedServices = new Set<string>();
  for (const node of nodes) {
    if (!node.service) continue;
    seen.add(node.service);
    if (connected.has(node.run.id)) connectedServices.add(node.service);
  }
  for (const service of expectations.services ?? []) {
    if (!seen.has(service)) problems.push(`no run from service "${service}"`);
    else if (!connectedServices.has(service)) {
      problems.push(`service "${service}" has runs, but none connected to the root (trace context not propagated)`);
    }
  }
  const measured = new Set([...(expectations.services ?? []), ...seen]);
  const propagation = measured.size === 0 ? null : pct([...measured].filter((s) => connectedServices.has(s)).length, measured.size);

  let unendedCount = 0;
  let errorCount = 0;
  let completeRuns = 0;
  const hopCounts = new Map<string, ServiceHop>();
  for (const node of nodes) {
    if (node.run.error) errorCount++;
    if (node.endMs === undefined) {
      unendedCount++;
      problems.push(`run ${label(node)} has not ended`);
    } else if (connected.has(node.run.id)) completeRuns++;
    for (const child of node.children) {
      if (node.startMs !== undefined && child.startMs !== undefined && child.startMs < node.startMs - skew) {
        problems.push(`run ${label(child)} starts ${formatDuration(node.startMs - child.startMs)} before its parent ${label(node)}`);
      }
      if (node.endMs !== undefined && child.endMs !== undefined && child.endMs > node.endMs + skew) {
        problems.push(`run ${label(child)} ends ${formatDuration(child.endMs - node.endMs)} after its parent ${label(node)}`);
      }
      if (connected.has(child.run.id) && node.service && child.service && node.service !== child.service) {
        const key = `${node.service}\u0000${child.service}`;
        const hop = hopCounts.get(key) ?? { from: node.service, to: child.service, count: 0 };
        hop.count++;
        hopCounts.set(key, hop);
      }
    }
  }

  return {
    ok: problems.length === 0,
    traceId,
    rootName: root?.run.name,
    runCount: nodes.length,
    rootCount: tree.roots.length,
    orphanCount: tree.orphans.length,
    foreignCount,
    unendedCount,
    errorCount,
    services: [...seen].sort(),
    connectedServices: [...connectedServices].sort(),
    hops: [...hopCounts.values()],
    completeness: pct(completeRuns, nodes.length),
    propagation,
    problems,
  };
}

/** The report as text, e.g. for a notebook cell or an assertion message. */
export function formatReport(report: TraceReport): string {
  const lines = [
    `trace ${report.traceId ?? "(unknown)"}: ${report.ok ? "OK" : "FAILED"}`,
    `  runs ${report.runCount}, roots ${report.rootCount}, orphans ${report.orphanCount}, other-trace runs ${report.foreignCount}, unended ${report.unendedCount}, errors ${report.errorCount}`,
    `  completeness ${report.completeness}%  propagation ${report.propagation === null ? "n/a (no services)" : `${report.propagation}%`}`,
    `  services ${report.services.length ? report.services.join(", ") : "(none)"}; connected to root: ${report.connectedServices.length ? report.connectedServices.join(", ") : "(none)"}`,
  ];
  if (report.hops.length) lines.push(`  service hops ${report.hops.map((h) => `${h.from} -> ${h.to} (${h.count})`).join(", ")}`);
  if (report.problems.length) {
    lines.push("  problems:");
    for (const p of report.problems) lines.push(`    - ${p}`);
  }
  return lines.join("\n");
}

/** verifyTrace, throwing an Error carrying the full report when the trace is not ok. */
export function assertTrace(runs: readonly TraceRun[], expectations: TraceExpectations = {}): TraceReport {
  const report = verifyTrace(runs, expectations);
  if (!report.ok) throw new Error(formatReport(report));
  return report;
}
