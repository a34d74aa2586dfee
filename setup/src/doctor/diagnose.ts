/**
 * The trace doctor's diagnosis of one trace, from data already read: which runs are orphaned,
 * rejected, never ended, in the wrong project, skewed, duplicated by a retry or oversized, plus the
 * cross-trace checks of correlate.ts (split traces, lost context). Pure and synchronous, so the
 * viewer calls it on stored runs and the CLI on runs read through the SDK (source.ts).
 *
 *   const diagnosis = diagnoseTrace({ traceId, runs, rejections, related }, { skewMs: 50 });
 *   for (const f of diagnosis.findings) console.log(f.title, f.cause, f.fix);
 */
import { verifyTrace } from "../traces/verify.js";
import type { TraceNode } from "../traces/tree.js";
import {
  descendants,
  duration,
  finding,
  label,
  makeContext,
  plural,
  projectName,
  ref,
  servicesOf,
  shortId,
  type Context,
} from "./context.js";
import { correlate } from "./correlate.js";
import { duplicateRuns, oversizedRuns } from "./payloads.js";
import { rejectionFindings } from "./rejections.js";
import type { DiagnoseInput, DoctorOptions, DoctorRun, Finding, TraceDiagnosis } from "./types.js";

/** Every finding for one trace, problems first; `healthy` when none is a problem. */
export function diagnoseTrace(input: DiagnoseInput, options: DoctorOptions = {}): TraceDiagnosis {
  const ctx = makeContext(input, options);
  const findings: Finding[] = [
    ...rejectionFindings(ctx),
    ...orphans(ctx),
    ...correlate(ctx),
    ...unended(ctx),
    ...projectMismatch(ctx),
    ...clockSkew(ctx),
    ...duplicateRuns(ctx),
    ...oversizedRuns(ctx),
  ];
  if (input.runs.length === 0 && !findings.some((f) => f.kind === "rejected")) {
    findings.push(
      finding({
        kind: "no-runs",
        severity: "problem",
        title: `no runs of trace ${input.traceId} were found`,
        cause: "The id is not a trace id (a run id of a trace is resolved, other ids are not), the runs went to another endpoint or workspace, or they have not been sent yet.",
        fix: "Check LANGSMITH_ENDPOINT and the API key the services use, and that they flush before exiting.",
        runs: [],
      }),
    );
  }
  findings.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "problem" ? -1 : 1));
  const nodes = [...ctx.tree.nodes.values()];
  return {
    traceId: input.traceId,
    runCount: nodes.length,
    services: servicesOf(nodes),
    projects: [...new Set(nodes.flatMap((n) => {
      const name = projectName(ctx, (n.run as DoctorRun).session_id);
      return name ? [name] : [];
    }))].sort(),
    report: verifyTrace(input.runs, { traceId: input.traceId, skewMs: ctx.skewMs }),
    findings,
    healthy: !findings.some((f) => f.severity === "problem"),
  };
}

/** The run ids a dotted order names, root first (the segment's last 36 characters). */
function dottedIds(dottedOrder: string | undefined): string[] {
  return (dottedOrder ?? "").split(".").filter((s) => s.length > 36).map((s) => s.slice(-36).toLowerCase());
}

function orphans(ctx: Context): Finding[] {
  const groups = new Map<string, TraceNode[]>();
  for (const node of ctx.tree.orphans) {
    const parent = node.run.parent_run_id ?? "";
    groups.set(parent, [...(groups.get(parent) ?? []), node]);
  }
  const out: Finding[] = [];
  for (const [parentId, nodes] of groups) {
    const first = nodes[0] as TraceNode;
    if (!parentId || ctx.tree.nodes.has(parentId)) {
      out.push(
        finding({
          kind: "orphan",
          severity: "problem",
          title: `${label(first)} sits on a parent cycle: its ancestors lead back to itself`,
          cause: "Runs were created with parent ids set by hand, and two of them name each other.",
          fix: "Let the SDK link runs (createChild, traceable, withRunTree) instead of setting parent_run_id.",
          runs: nodes.map((n) => ref(ctx, n)),
        }),
      );
      continue;
    }
    const affected = nodes.flatMap((n) => [n, ...descendants(n)]);
    const rejected = ctx.input.rejections?.find((r) => r.run_id === parentId);
    const elsewhere = ctx.input.related?.find((t) => t.runs.some((r) => r.id === parentId));
    const ancestors = dottedIds(first.run.dotted_order).slice(0, -1);
    const missing = ancestors.filter((id) => !ctx.tree.nodes.has(id));
    const continued = nodes.some((n) => (n.run.extra?.metadata as Record<string, unknown> | undefined)?.["trace.inbound"] === "continued");
    const services = servicesOf(nodes).map((s) => `"${s}"`).join(", ") || "an unlabelled service";
    let cause: string;
    if (rejected) {
      cause = `The parent was rejected by the trace server ([${rejected.rule}] ${rejected.message}), so its children arrived without it.`;
    } else if (elsewhere) {
      cause = `The parent is stored in trace ${elsewhere.traceId}: the two runs disagree about their trace id, which happens when ids or dotted orders are set by hand or a context is taken from another trace.`;
    } else {
      cause =
        `The parent never reached this backend${missing.length > 1 ? `, nor ${plural(missing.length - 1, "run")} above it` : ""}. ` +
        (continued
          ? `${services} continued a context that arrived in the langsmith-trace header, so it is the caller's runs that are missing: the`
          : "The") +
        " process that owned the parent crashed or was killed before it flushed its batch (the SDK sends runs in the background), " +
        "it writes to another endpoint or workspace, it sampled the trace out (a lower LANGSMITH_TRACING_SAMPLING_RATE than this service's), or the parent was rejected by a backend that does not record rejections.";
    }
    out.push(
      finding({
        kind: "orphan",
        severity: "problem",
        title: `${plural(affected.length, "run")} of ${services.replaceAll('"', "")} ${affected.length === 1 ? "is" : "are"} orphaned: the parent of ${label(first)}, run ${shortId(parentId)}, is not in the trace`,
        cause,
        fix: rejected
          ? "Fix the run the server rejected (see the rejected-run finding), then the tree reconnects."
          : "Flush before a process stops: installGracefulShutdown on SIGTERM, awaitPendingTraceBatches() at the end of scripts, flushBeforeEnd on serverless. Point every service at the same endpoint and workspace, and give every service the same LANGSMITH_TRACING_SAMPLING_RATE (the SDK decides per trace id, so equal rates keep or drop a trace whole).",
        runs: affected.map((n) => ref(ctx, n)),
        relatedTraces: elsewhere ? [elsewhere.traceId] : [],
        evidence: { missingParent: parentId, missingAncestors: missing.length },
      }),
    );
  }
  return out;
}

function unended(ctx: Context): Finding[] {
  const out: Finding[] = [];
  for (const node of ctx.tree.nodes.values()) {
    if (node.endMs !== undefined) continue;
    const parent = node.run.parent_run_id ? ctx.tree.nodes.get(node.run.parent_run_id) : undefined;
    // The topmost open run of a chain speaks for the open runs under it.
    if (parent && parent.endMs === undefined) continue;
    const open = descendants(node).filter((d) => d.endMs === undefined);
    const openMs = node.startMs !== undefined ? Math.max(0, ctx.now - node.startMs) : undefined;
    const afterParentMs = parent?.endMs !== undefined ? Math.max(0, ctx.now - parent.endMs) : undefined;
    const stale = afterParentMs !== undefined || (openMs !== undefined && openMs >= ctx.staleMs);
    const runs = [node, ...open].map((n) => ref(ctx, n));
    const evidence: Record<string, number> = {};
    if (openMs !== undefined) evidence.openMs = openMs;
    if (afterParentMs !== undefined) evidence.afterParentEndedMs = afterParentMs;
    if (!stale) {
      out.push(
        finding({
          kind: "in-progress",
          severity: "note",
          title: `${label(node)} is still running (open for ${duration(openMs)})${open.length ? ` with ${plural(open.length, "open run")} under it` : ""}`,
          cause: "The trace may simply not be finished yet.",
          fix: `Run the doctor again later; a run still open after ${duration(ctx.staleMs)} (or once its parent has ended) is reported as never ended.`,
          runs,
          evidence,
        }),
      );
      continue;
    }
    const service = node.service ?? "its service";
    out.push(
      finding({
        kind: "unended",
        severity: "problem",
        title:
          `${label(node)} never ended: open for ${duration(openMs)}` +
          (afterParentMs !== undefined && parent ? `, ${duration(afterParentMs)} after its parent ${label(parent)} ended` : "") +
          (open.length ? `; ${plural(open.length, "run")} under it ${open.length === 1 ? "is" : "are"} open too` : ""),
        cause:
          `The run's start reached the backend but its end did not. The process of ${service} stopped before it sent the update: ` +
          "it crashed or was killed (SIGKILL, out of memory, a deploy without graceful shutdown), a serverless platform froze it right after the response, " +
          "or the code never ends the run (an error path that skips end(), a stream nobody consumed).",
        fix: "Shut down gracefully (installGracefulShutdown: the middleware ends cut-off requests as 'client disconnected' and the runs are flushed), set flushBeforeEnd on serverless, and end runs in finally blocks.",
        runs,
        evidence,
      }),
    );
  }
  return out;
}

function projectMismatch(ctx: Context): Finding[] {
  const byProject = new Map<string, TraceNode[]>();
  for (const node of ctx.tree.nodes.values()) {
    const project = projectName(ctx, (node.run as DoctorRun).session_id);
    if (project !== undefined) byProject.set(project, [...(byProject.get(project) ?? []), node]);
  }
  if (ctx.expectProject !== undefined) {
    const outside = [...byProject].filter(([p]) => p !== ctx.expectProject);
    if (outside.length === 0) return [];
    const nodes = outside.flatMap(([, n]) => n);
    return [
      finding({
        kind: "project-mismatch",
        severity: "problem",
        title: `${plural(nodes.length, "run")} of ${servicesOf(nodes).join(", ") || "this trace"} went to ${outside.map(([p]) => `project "${p}"`).join(", ")}, not "${ctx.expectProject}"`,
        cause: `LANGSMITH_PROJECT differs in ${servicesOf(nodes).join(", ") || "those services"}, code passes project_name for some runs, or a caller's baggage chose the project (langsmith-project).`,
        fix: `Set LANGSMITH_PROJECT=${ctx.expectProject} in every service of this request, and do not let callers choose the project (the middleware's allowProjectOverride stays off).`,
        runs: nodes.map((n) => ref(ctx, n)),
        evidence: { projects: [...byProject.keys()].sort().join(", ") },
      }),
    ];
  }
  if (byProject.size < 2) return [];
  const projectsOfService = new Map<string, Set<string>>();
  for (const [project, nodes] of byProject) {
    for (const n of nodes) {
      const key = n.service ?? "(unlabelled)";
      projectsOfService.set(key, (projectsOfService.get(key) ?? new Set()).add(project));
    }
  }
  const mixed = [...projectsOfService].filter(([, projects]) => projects.size > 1);
  const projects = [...byProject.keys()].sort();
  if (mixed.length === 0) {
    return [
      finding({
        kind: "project-mismatch",
        severity: "note",
        title: `this trace spans ${plural(projects.length, "project")} (${projects.join(", ")}), one per service`,
        cause: "Each service writes to its own project. That is a valid layout, but each project shows only its part of the trace.",
        fix: "Nothing, if per-service projects are intended; otherwise set the same LANGSMITH_PROJECT everywhere. Pass --project NAME to check against the project this trace belongs to.",
        runs: [],
        services: servicesOf(ctx.tree.nodes.values()),
        evidence: { projects: projects.join(", ") },
      }),
    ];
  }
  const nodes = [...ctx.tree.nodes.values()].filter((n) => mixed.some(([s]) => s === (n.service ?? "(unlabelled)")));
  return [
    finding({
      kind: "project-mismatch",
      severity: "problem",
      title: `${mixed.map(([s, p]) => `service "${s}" wrote runs of this one trace to ${[...p].sort().map((x) => `"${x}"`).join(" and ")}`).join("; ")}`,
      cause: "Some of its runs name another project: code passes project_name for some runs, or a caller's baggage chose the project (langsmith-project) for the runs that continued its context.",
      fix: "Write every run of a service to one project: drop per-call project_name, and do not let callers choose the project (the middleware's allowProjectOverride stays off).",
      runs: nodes.map((n) => ref(ctx, n)),
      evidence: { projects: projects.join(", ") },
    }),
  ];
}

function clockSkew(ctx: Context): Finding[] {
  const pairs = new Map<string, { parent: TraceNode; child: TraceNode; byMs: number; count: number }>();
  for (const node of ctx.tree.nodes.values()) {
    for (const child of node.children) {
      if (node.startMs === undefined || child.startMs === undefined) continue;
      const byMs = node.startMs - child.startMs;
      if (byMs <= ctx.skewMs) continue;
      const key = `${node.service ?? "?"}\u0000${child.service ?? "?"}`;
      const seen = pairs.get(key);
      if (!seen || byMs > seen.byMs) pairs.set(key, { parent: node, child, byMs, count: (seen?.count ?? 0) + 1 });
      else seen.count++;
    }
  }
  return [...pairs.values()].map(({ parent, child, byMs, count }) => {
    const cross = parent.service !== child.service;
    return finding({
      kind: "clock-skew",
      severity: "problem",
      title: cross
        ? `service "${child.service ?? "?"}" starts runs before their parent in "${parent.service ?? "?"}" (by up to ${duration(byMs)}, ${plural(count, "run")}, e.g. ${label(child)} under ${label(parent)}): its clock is about ${duration(byMs)} behind`
        : `${label(child)} starts ${duration(byMs)} before its parent ${label(parent)} in the same service`,
      cause: cross
        ? "The two machines' clocks disagree (no NTP, a container or VM whose clock drifts). Runs are ordered and drawn by these times, so the child appears to begin before it was called."
        : "A start_time was set explicitly (a time taken from the request, a queue message's enqueue time, or a reused RunTree) instead of when the run began.",
      fix: cross
        ? `Synchronise the clocks (chrony or systemd-timesyncd) on the hosts of ${parent.service ?? "?"} and ${child.service ?? "?"}; never pass a start_time taken on another machine.`
        : "Let the SDK set start_time when the run begins.",
      runs: [ref(ctx, parent), ref(ctx, child)],
      evidence: { skewMs: byMs, runs: count, toleranceMs: ctx.skewMs },
    });
  });
}
