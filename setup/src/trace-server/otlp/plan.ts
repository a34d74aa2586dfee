// Which spans of one OTLP request can be stored now, in what order, and which must wait:
//
//   const { ready, waiting } = planSpans(spans, storedDepth, { route, rejections });
//
// A span is ready when its parent is stored, or is itself ready in the same request (parents are
// then stored first), or when it is a root or carries its own dotted_order; otherwise it waits
// for its parent. Spans whose chain of parents loops, that would nest deeper than MAX_SPAN_DEPTH,
// or past the request's DERIVE_BUDGET, are refused into `rejections`.
import { MAX_TREE_DEPTH } from "../limits.js";
import type { RejectionInput } from "../types.js";
import type { MappedSpan } from "./mapping.js";

/**
 * Levels a span may nest: the store's limit for every run. Checked here as well because spans
 * carry no dotted_order: the server derives one per span, and refusing a too-deep chain before
 * deriving it saves the work, and refuses everything below it with it.
 */
export const MAX_SPAN_DEPTH = MAX_TREE_DEPTH;

/**
 * dotted_order segments one request (or one release of waiting spans) may derive: the sum of
 * the depths of the spans it stores. Deriving costs about a microsecond per segment, all of it
 * synchronous; without a budget one 20 MB request of chained spans would hold the server for
 * minutes. A full exporter batch (512 spans) at the deepest allowed level stays under it.
 */
export const DERIVE_BUDGET = 250_000;

export interface SpanPlan {
  /** Storable now, parents before children. */
  ready: MappedSpan[];
  /** Waiting for a parent that is not stored. */
  waiting: MappedSpan[];
}

/** Plan one request's spans; `storedDepth` gives a stored run's levels (a root is 1), undefined when not stored. */
export function planSpans(spans: readonly MappedSpan[], storedDepth: (runId: string) => number | undefined, ctx: { route: string; rejections: RejectionInput[] }): SpanPlan {
  const byId = new Map(spans.map((s) => [s.run.id, s]));
  const status = new Map<string, "ready" | "waiting" | "loop">();
  /** Levels from the trace's root (a root is 1), for the spans that can be stored now. */
  const depth = new Map<string, number>();
  // Walk up each span's chain of parents in this request (iteratively: a request may hold a
  // chain thousands deep) until a span whose fate is known, then settle the whole chain.
  for (const span of spans) {
    const chain: MappedSpan[] = [];
    const onChain = new Set<string>();
    let current: MappedSpan | undefined = span;
    let outcome: "ready" | "waiting" = "waiting";
    let above = 0;
    while (current) {
      const known = status.get(current.run.id);
      if (known !== undefined) {
        outcome = known === "ready" ? "ready" : "waiting";
        above = depth.get(current.run.id) ?? 0;
        break;
      }
      if (onChain.has(current.run.id)) {
        const start = chain.findIndex((c) => c.run.id === current?.run.id);
        for (const member of chain.splice(start)) {
          status.set(member.run.id, "loop");
          ctx.rejections.push({ route: ctx.route, op: "post", run_id: member.run.id, rule: "invalid_field", message: `span ${member.run.id}: its chain of parents loops back to itself`, payload: member.run });
        }
        break;
      }
      chain.push(current);
      onChain.add(current.run.id);
      const parentId = current.parentId;
      if (parentId === undefined || current.run.dotted_order !== undefined) {
        outcome = "ready";
        // Its own dotted_order says how deep it is; the spans below it count from there.
        above = (current.run.dotted_order?.split(".").length ?? 1) - 1;
        break;
      }
      current = byId.get(parentId);
      if (!current) {
        const parentDepth = storedDepth(parentId);
        outcome = parentDepth === undefined ? "waiting" : "ready";
        above = parentDepth ?? 0;
      }
    }
    chain.reverse().forEach((s, i) => {
      status.set(s.run.id, outcome);
      depth.set(s.run.id, above + i + 1);
    });
  }
  const levelOf = (s: MappedSpan): number => depth.get(s.run.id) ?? 1;
  const candidates = spans.filter((s) => status.get(s.run.id) === "ready").sort((x, y) => levelOf(x) - levelOf(y));
  const ready: MappedSpan[] = [];
  let derived = 0;
  for (const s of candidates) {
    const level = levelOf(s);
    derived += level;
    // Shallow first, so a span refused here takes only deeper spans (its descendants among them) with it.
    const refusal = level > MAX_SPAN_DEPTH ? tooDeepMessage(s.run.id, level) : derived > DERIVE_BUDGET ? `span ${s.run.id}: this request's spans would derive more than ${DERIVE_BUDGET} dotted_order segments; send fewer or shallower spans per request` : undefined;
    if (refusal === undefined) ready.push(s);
    else ctx.rejections.push({ route: ctx.route, op: "post", run_id: s.run.id, rule: "invalid_field", message: refusal, payload: { name: s.run.name, parent_run_id: s.parentId } });
  }
  const waiting = spans.filter((s) => status.get(s.run.id) === "waiting");
  return { ready, waiting };
}

export function tooDeepMessage(runId: string, level: number): string {
  return `span ${runId} would be ${level} levels deep; spans nest at most ${MAX_SPAN_DEPTH} levels (each level lengthens every descendant's dotted_order)`;
}
