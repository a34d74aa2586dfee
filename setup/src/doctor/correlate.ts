/**
 * The trace doctor's cross-trace checks. A split trace (a service started a new root instead of
 * continuing the caller's trace) is found from other traces near this one: a root whose metadata
 * names this trace as the caller's claimed parent (the tracing middleware's
 * untrusted_parent_trace_id), a shared request id (x-request-id as the middleware records it, or
 * request_id metadata), a shared thread id in overlapping time, or a root of another service that
 * starts and ends inside a childless run of this trace whose name or known service hops match it.
 * Lost context ("flat" traces) is the same-service form: work that ran as a root of its own while a
 * run of this trace was waiting for it, or a run that sits beside the run it belongs under.
 */
import { buildTraceTree, type TraceNode, type TraceTree } from "../traces/tree.js";
import { finding, isEntryRun, label, metaText, plural, recordedHeader, ref, type Context } from "./context.js";
import type { DoctorRun, Finding, RelatedTrace } from "./types.js";

interface Other {
  traceId: string;
  tree: TraceTree;
  root: TraceNode | undefined;
}

const REQUEST_ID_KEYS = ["request_id", "requestId", "x-request-id", "http.request_id"];
const THREAD_ID_KEYS = ["thread_id", "session_id", "conversation_id"];

export function correlate(ctx: Context): Finding[] {
  const others: Other[] = (ctx.input.related ?? [])
    .filter((t) => t.traceId !== ctx.input.traceId && t.runs.length > 0)
    .map((t: RelatedTrace) => {
      const tree = buildTraceTree(t.runs);
      return { traceId: t.traceId, tree, root: tree.roots.find((r) => r.run.id === t.traceId) ?? tree.mainRoot };
    });
  const out: Finding[] = [];
  const linked = new Set<string>();
  const root = ctx.tree.mainRoot;
  const hops = hopsOf([ctx.tree, ...others.map((o) => o.tree)]);
  const split = (other: Other, title: string, cause: string, fix: string, nodes: TraceNode[], otherNodes: TraceNode[], evidence: Record<string, string | number | boolean>): void => {
    linked.add(other.traceId);
    out.push(
      finding({
        kind: "split",
        severity: "problem",
        title,
        cause,
        fix,
        runs: [...nodes.map((n) => ref(ctx, n)), ...otherNodes.map((n) => ({ ...ref(ctx, n), trace: other.traceId }))],
        relatedTraces: [other.traceId],
        evidence,
      }),
    );
  };

  // This trace's root says which caller it restarted from, and that caller's trace exists.
  const claimed = root ? metaText(root.run, "untrusted_parent_trace_id") : undefined;
  const claimedBy = claimed ? others.find((o) => o.traceId === claimed) : undefined;
  if (root && claimedBy) {
    const callerId = metaText(root.run, "untrusted_parent_run_id");
    const caller = callerId ? claimedBy.tree.nodes.get(callerId) : undefined;
    const reason = metaText(root.run, "trace.inbound_reason");
    const { cause, fix } = restartCause(root.service ?? "this service", reason);
    split(
      claimedBy,
      `split trace: ${label(root)} started this trace as a new root instead of continuing trace ${claimedBy.traceId}${caller ? ` from ${label(caller)}` : ""}`,
      cause,
      fix,
      [root],
      caller ? [caller] : [],
      { direction: "downstream", reason: reason ?? "unknown", via: "untrusted_parent_trace_id" },
    );
  }
  // Another trace's root names this trace as the one it was called from.
  for (const other of others) {
    if (!other.root || linked.has(other.traceId) || metaText(other.root.run, "untrusted_parent_trace_id") !== ctx.input.traceId) continue;
    const callerId = metaText(other.root.run, "untrusted_parent_run_id");
    const caller = callerId ? ctx.tree.nodes.get(callerId) : undefined;
    const reason = metaText(other.root.run, "trace.inbound_reason");
    const { cause, fix } = restartCause(other.root.service ?? "the callee", reason);
    split(
      other,
      `split trace: the call from ${caller ? label(caller) : "this trace"} continued in trace ${other.traceId} (${label(other.root)}), which restarted it as a new root`,
      cause,
      fix,
      caller ? [caller] : [],
      [other.root],
      { direction: "upstream", reason: reason ?? "unknown", via: "untrusted_parent_trace_id" },
    );
  }

  // A request id or, in overlapping time, a thread id that this trace shares with another.
  const own = new Map<string, TraceNode>();
  const ownThreads = new Map<string, TraceNode>();
  for (const node of ctx.tree.nodes.values()) {
    for (const id of requestIds(node.run)) if (!own.has(id)) own.set(id, node);
    for (const id of threadIds(node.run)) if (!ownThreads.has(id)) ownThreads.set(id, node);
  }
  for (const other of others) {
    if (linked.has(other.traceId) || !other.root) continue;
    for (const node of other.tree.nodes.values()) {
      const shared = requestIds(node.run).find((id) => own.has(id));
      const thread = shared === undefined ? threadIds(node.run).find((id) => ownThreads.has(id)) : undefined;
      if (shared === undefined && (thread === undefined || !root || !within(other.root, root, ctx.skewMs, ctx.now))) continue;
      const mine = own.get(shared ?? "") ?? ownThreads.get(thread ?? "") ?? root;
      split(
        other,
        `split trace: trace ${other.traceId} (${label(other.root)}) shares ${shared !== undefined ? `request id ${shared}` : `thread ${thread}`} with ${mine ? label(mine) : "this trace"} but is a separate trace`,
        DROPPED.cause,
        DROPPED.fix,
        mine ? [mine] : [],
        [other.root],
        {
          direction: (root?.startMs ?? 0) <= (other.root.startMs ?? 0) ? "upstream" : "downstream",
          ...(shared !== undefined ? { requestId: shared } : { threadId: thread ?? "" }),
        },
      );
      break;
    }
  }

  out.push(...windowMatches(ctx, others, linked, hops), ...siblingInsideLeaf(ctx));
  return out;
}

function requestIds(run: DoctorRun): string[] {
  const ids = REQUEST_ID_KEYS.flatMap((k) => {
    const v = metaText(run, k);
    return v ? [v] : [];
  });
  const header = recordedHeader(run, "x-request-id");
  return header ? [...ids, header] : ids;
}

function threadIds(run: DoctorRun): string[] {
  return THREAD_ID_KEYS.flatMap((k) => {
    const v = metaText(run, k);
    return v ? [`${k}=${v}`] : [];
  });
}

function tokens(text: string): Set<string> {
  return new Set(text.toLowerCase().split(/[^a-z0-9]+/).filter((t) => t.length > 0));
}

/** Whether a caller's run name refers to the service or route it calls: "call_retrieval" and retrieval's "POST /search". */
function nameMatches(caller: TraceNode, callee: TraceNode): boolean {
  const words = tokens(caller.run.name);
  const targets = [callee.service ?? "", ...callee.run.name.replace(/^[A-Z]+ /, "").split("/")].map((s) => s.toLowerCase()).filter((s) => s.length > 0 && !/^:/.test(s));
  return targets.some((t) => words.has(t) || [...tokens(t)].every((w) => words.has(w)));
}

function leaves(tree: TraceTree): TraceNode[] {
  return [...tree.nodes.values()].filter((n) => n.children.length === 0 && n.startMs !== undefined);
}

/**
 * `inner` ran inside `outer`'s time window, allowing `slackMs` of clock difference between the two
 * services; and it took no longer than `outer` (clocks may be offset, but they tick at the same rate).
 * An `outer` that never ended has no window to speak of (its process may have died long ago).
 */
function within(inner: TraceNode, outer: TraceNode, slackMs: number, now: number): boolean {
  if (inner.startMs === undefined || outer.startMs === undefined || outer.endMs === undefined) return false;
  const outerEnd = outer.endMs;
  const innerEnd = inner.endMs ?? now;
  return inner.startMs >= outer.startMs - slackMs && innerEnd <= outerEnd + slackMs && innerEnd - inner.startMs <= outerEnd - outer.startMs;
}

function hopsOf(trees: Iterable<TraceTree>): Set<string> {
  const hops = new Set<string>();
  for (const tree of trees) {
    for (const node of tree.nodes.values()) {
      for (const child of node.children) if (node.service && child.service && node.service !== child.service) hops.add(`${node.service}\u0000${child.service}`);
    }
  }
  return hops;
}

function restartCause(service: string, reason: string | undefined): { cause: string; fix: string } {
  if (reason === "untrusted-caller") {
    return {
      cause: `"${service}" runs the tracing middleware with trust "edge" (the default), which restarts every inbound trace and keeps the caller's ids as metadata (untrusted_parent_trace_id). Right for public traffic, wrong for calls between your own services.`,
      fix: `Use trust: "mesh" in "${service}" if only your services call it, or a function that trusts them (an mTLS identity, an internal network interface).`,
    };
  }
  if (reason?.startsWith("baggage-")) {
    return {
      cause: `"${service}" refused the baggage header it received (${reason}) and started a new trace rather than continue a context it could not read.`,
      fix: "Keep baggage small and well-formed: send it as the SDK builds it (tracedFetch / injectTraceHeaders trims it to 8 KiB), and make sure no proxy rewrites it.",
    };
  }
  return {
    cause: `"${service}" refused the langsmith-trace header it received (${reason ?? "no reason recorded"}) and started a new trace.`,
    fix: "Send the header as the SDK builds it (tracedFetch / injectTraceHeaders); a proxy must not rewrite, truncate or duplicate it.",
  };
}

const DROPPED = {
  cause:
    "The langsmith-trace and baggage headers did not arrive: the caller did not inject them (a plain fetch instead of tracedFetch), a proxy or API gateway dropped them, " +
    "or the callee has no middleware that continues them.",
  fix: 'Inject with tracedFetch / injectTraceHeaders, let both headers through every proxy, and continue them in the callee with the middleware (trust "mesh" between your services).',
};

/** Roots of other traces that ran inside a childless run of this one (and, reversed, this root inside theirs). */
function windowMatches(ctx: Context, others: Other[], linked: Set<string>, hops: Set<string>): Finding[] {
  const pairs: Array<{ caller: TraceNode; callee: TraceNode; callerTrace: string; calleeTrace: string; other: Other }> = [];
  const root = ctx.tree.mainRoot;
  for (const other of others) {
    if (linked.has(other.traceId) || !other.root) continue;
    for (const leaf of leaves(ctx.tree)) {
      if (within(other.root, leaf, ctx.skewMs, ctx.now)) pairs.push({ caller: leaf, callee: other.root, callerTrace: ctx.input.traceId, calleeTrace: other.traceId, other });
    }
    if (root && other.tree.nodes.size > 1) {
      for (const leaf of leaves(other.tree)) {
        if (within(root, leaf, ctx.skewMs, ctx.now)) pairs.push({ caller: leaf, callee: root, callerTrace: other.traceId, calleeTrace: ctx.input.traceId, other });
      }
    }
  }
  // Strongest evidence first: a trace is linked once, by its best match.
  const strength = (p: (typeof pairs)[number]): number =>
    (p.caller.service === p.callee.service ? 4 : 0) + (nameMatches(p.caller, p.callee) ? 2 : 0) + (hops.has(`${p.caller.service}\u0000${p.callee.service}`) ? 2 : 0);
  pairs.sort((a, b) => strength(b) - strength(a));
  const out: Finding[] = [];
  for (const pair of pairs) {
    const { caller, callee, other } = pair;
    if (linked.has(other.traceId) || caller.service === undefined || callee.service === undefined) continue;
    const unique = pairs.filter((p) => p.callee === callee).length === 1 && pairs.filter((p) => p.caller === caller).length === 1;
    const upstream = pair.callerTrace === ctx.input.traceId;
    const evidence = { direction: upstream ? "upstream" : "downstream", via: "time window" };
    if (caller.service === callee.service) {
      // Same service: work that lost its context became a root of its own while the caller waited.
      if (isEntryRun(callee.run) || callee.startMs === undefined || caller.startMs === undefined || callee.startMs < caller.startMs + 1) continue;
      // A root like the caller's own (same name, same service) is a concurrent peer request of the same process.
      const callerRoot = upstream ? root : other.root;
      if (callerRoot && callee.run.name === callerRoot.run.name && callee.service === callerRoot.service) continue;
      linked.add(other.traceId);
      out.push(
        finding({
          kind: "flat",
          severity: "problem",
          title: `lost context: ${label(callee)} ran as the root of trace ${pair.calleeTrace} while ${label(caller)} of trace ${pair.callerTrace} was waiting for it`,
          cause:
            "The work ran in a callback, an event listener or a pooled connection's context instead of the request's, so the SDK found no current run and started a new trace " +
            "(AsyncLocalStorage follows where code was scheduled, not who asked for it).",
          fix: "Bind the callback to the request's context when you register it (AsyncResource.bind), await the event and do the work after the await, or pass the run explicitly (withRunTree).",
          runs: [ref(ctx, caller), ref(ctx, callee)],
          relatedTraces: [other.traceId],
          evidence: { ...evidence, unique },
        }),
      );
      continue;
    }
    // A root of the same kind as the caller's trace is a concurrent peer request, not the callee.
    if (callee.service === (upstream ? root?.service : other.root?.service)) continue;
    const named = nameMatches(caller, callee);
    const known = hops.has(`${caller.service}\u0000${callee.service}`);
    if (!named && !known && !unique) continue;
    linked.add(other.traceId);
    const noHeader = metaText(callee.run, "trace.inbound") === "none";
    const strong = named || known;
    out.push(
      finding({
        kind: "split",
        severity: strong ? "problem" : "note",
        title:
          `${strong ? "split trace" : "possibly a split trace"}: ${label(callee)} started trace ${pair.calleeTrace} while ${label(caller)} of trace ${pair.callerTrace} was calling ` +
          `${named ? "it" : `(the only root in that window${known ? `; ${caller.service} -> ${callee.service} is a hop seen in connected traces` : ""})`}`,
        cause: `${DROPPED.cause}${noHeader ? ` "${callee.service}"'s middleware recorded that no langsmith-trace header arrived (trace.inbound=none).` : ""}`,
        fix: DROPPED.fix,
        runs: [ref(ctx, caller), ref(ctx, callee)],
        relatedTraces: [other.traceId],
        evidence: { ...evidence, nameMatch: named, knownHop: known, unique, gapMs: (callee.startMs ?? 0) - (caller.startMs ?? 0) },
      }),
    );
  }
  return out;
}

/** A run beside a childless sibling of the same service that was open the whole time it ran: it belongs under that sibling. */
function siblingInsideLeaf(ctx: Context): Finding[] {
  const out: Finding[] = [];
  for (const parent of ctx.tree.nodes.values()) {
    for (const waiting of parent.children) {
      if (waiting.children.length > 0 || waiting.startMs === undefined || waiting.endMs === undefined) continue;
      const inside = parent.children.filter(
        (x) =>
          x !== waiting &&
          x.service === waiting.service &&
          x.run.name !== waiting.run.name &&
          x.startMs !== undefined &&
          x.endMs !== undefined &&
          x.startMs >= (waiting.startMs as number) + 2 &&
          x.startMs < (waiting.endMs as number) &&
          x.endMs <= (waiting.endMs as number),
      );
      if (inside.length === 0) continue;
      out.push(
        finding({
          kind: "flat",
          severity: "problem",
          title: `flat tree: ${plural(inside.length, "run")} (${inside.map((x) => label(x)).join(", ")}) ran while ${label(waiting)} was waiting, but ${inside.length === 1 ? "sits" : "sit"} beside it under ${label(parent)} instead of under it`,
          cause:
            "The work was started from a callback or event listener that runs in the parent's context (bound when the request began, or emitted from there), " +
            `so the SDK attached it to ${label(parent)} instead of ${label(waiting)}, which was the current run when the work was asked for.`,
          fix: `Bind the listener when ${label(waiting)} registers it (AsyncResource.bind inside it), or await the event inside it and do the work after the await.`,
          runs: [ref(ctx, waiting), ...inside.map((x) => ref(ctx, x)), ref(ctx, parent)],
          evidence: { waitingMs: (waiting.endMs as number) - (waiting.startMs as number), firstStartsAfterMs: Math.min(...inside.map((x) => (x.startMs as number) - (waiting.startMs as number))) },
        }),
      );
    }
  }
  return out;
}

