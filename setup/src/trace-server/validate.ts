import type { RejectionRule } from "./types.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEGMENT_RE = /^(\d{8})T(\d{6})(\d{6})Z([0-9a-fA-F-]{36})$/;

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_RE.test(value);
}

export interface DottedSegment {
  /** `YYYYMMDDTHHMMSSffffffZ` */
  timestamp: string;
  /** ISO form of the timestamp, microseconds kept. */
  time: string;
  id: string;
}

export interface RuleViolation {
  rule: RejectionRule;
  message: string;
}

/**
 * Split a dotted_order into its segments, `YYYYMMDDTHHMMSSffffffZ<uuid>` each,
 * or say which segment is malformed.
 */
export function parseDottedOrder(dottedOrder: string): DottedSegment[] | RuleViolation {
  const raw = dottedOrder.split(".");
  const segments: DottedSegment[] = [];
  for (const [index, segment] of raw.entries()) {
    const m = SEGMENT_RE.exec(segment);
    const where = `dotted_order segment ${index + 1} of ${raw.length} (${JSON.stringify(segment.slice(0, 80))})`;
    if (!m) {
      return { rule: "dotted_order_format", message: `${where} is not <YYYYMMDDTHHMMSSffffffZ><uuid>` };
    }
    const [, ymd = "", hms = "", micros = "", id = ""] = m;
    const time = segmentTime(ymd, hms, micros);
    if (time === undefined) {
      return { rule: "dotted_order_format", message: `${where} has an impossible date/time` };
    }
    if (!UUID_RE.test(id)) {
      return { rule: "dotted_order_format", message: `${where} does not end in a UUID` };
    }
    segments.push({ timestamp: `${ymd}T${hms}${micros}Z`, time, id: id.toLowerCase() });
  }
  return segments;
}

/** ISO time of a dotted_order timestamp, or undefined for an impossible date (checked without Date: hot path). */
function segmentTime(ymd: string, hms: string, micros: string): string | undefined {
  const year = Number(ymd.slice(0, 4));
  const month = Number(ymd.slice(4, 6));
  const day = Number(ymd.slice(6, 8));
  const hour = Number(hms.slice(0, 2));
  const minute = Number(hms.slice(2, 4));
  const second = Number(hms.slice(4, 6));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return undefined;
  return `${ymd.slice(0, 4)}-${ymd.slice(4, 6)}-${ymd.slice(6, 8)}T${hms.slice(0, 2)}:${hms.slice(2, 4)}:${hms.slice(4, 6)}.${micros}Z`;
}

export function formatDottedOrder(segments: readonly DottedSegment[]): string {
  return segments.map((s) => s.timestamp + s.id).join(".");
}

/**
 * LangSmith's tree-consistency rules. A run without parent_run_id is a root:
 * trace_id equals its id and dotted_order has exactly one segment. A child's
 * first segment names the trace, its second-to-last segment the parent, and
 * every run's last segment names the run itself.
 */
export function checkTreeRules(run: {
  id: string;
  trace_id: string;
  parent_run_id: string | undefined;
  segments: readonly DottedSegment[];
}): RuleViolation | null {
  const { id, trace_id, parent_run_id, segments } = run;
  const last = segments[segments.length - 1];
  if (last === undefined) {
    return { rule: "dotted_order_format", message: "dotted_order is empty" };
  }
  if (last.id !== id) {
    return {
      rule: "dotted_order_self",
      message: `the last dotted_order segment names run ${last.id}, but the run id is ${id}`,
    };
  }
  if (parent_run_id === id) {
    return { rule: "cycle", message: `run ${id} names itself as its parent_run_id` };
  }
  if (parent_run_id !== undefined && trace_id === id) {
    return { rule: "cycle", message: `run ${id} is the root of its trace (its id is the trace_id) but has parent_run_id ${parent_run_id}` };
  }
  if (parent_run_id === undefined) {
    if (trace_id !== id) {
      return {
        rule: "root_trace_id",
        message: `root run (no parent_run_id) must have trace_id equal to its id, got trace_id ${trace_id}`,
      };
    }
    if (segments.length !== 1) {
      return {
        rule: "root_single_segment",
        message: `root run (no parent_run_id) must have exactly one dotted_order segment, got ${segments.length}`,
      };
    }
    return null;
  }
  if (segments.length < 2) {
    return {
      rule: "child_segments",
      message: `run has parent_run_id ${parent_run_id} but its dotted_order has only one segment`,
    };
  }
  const first = segments[0];
  if (first !== undefined && first.id !== trace_id) {
    return {
      rule: "child_trace_id",
      message: `the first dotted_order segment names run ${first.id}, but trace_id is ${trace_id}`,
    };
  }
  const parent = segments[segments.length - 2];
  if (parent !== undefined && parent.id !== parent_run_id) {
    return {
      rule: "child_parent_id",
      message: `the second-to-last dotted_order segment names run ${parent.id}, but parent_run_id is ${parent_run_id}`,
    };
  }
  const seen = new Set<string>();
  for (const segment of segments) {
    if (seen.has(segment.id)) return { rule: "cycle", message: `run ${segment.id} appears twice in the dotted_order, so it would be its own ancestor` };
    seen.add(segment.id);
  }
  return null;
}

/** The run ids of a stored dotted_order, root first. */
export function dottedOrderIds(dottedOrder: string): string[] {
  return dottedOrder.split(".").map((segment) => segment.slice(-36));
}

function sameIds(ids: readonly string[], segments: readonly DottedSegment[]): boolean {
  return ids.length === segments.length && ids.every((id, i) => id === segments[i]?.id);
}

const chain = (ids: readonly string[]): string => ids.join(" > ");

/**
 * A stored run must agree with the ancestry a related run's dotted_order gives it, as LangSmith's
 * tree is one tree per trace: `trace_id` is the id of the root, `parent_run_ids` lists every
 * ancestor. Checked both ways, whichever of parent and child arrives first, so no sequence of
 * requests can build a cycle (A under B under A) or hang a run under a parent in another trace.
 *
 * `run` is being stored with `segments`; `parent` is its stored parent, if any.
 */
export function checkParentAncestry(run: { id: string; trace_id: string; segments: readonly DottedSegment[] }, parent: { id: string; trace_id: string; dotted_order: string }): RuleViolation | null {
  if (parent.trace_id !== run.trace_id) {
    return { rule: "parent_trace", message: `parent run ${parent.id} belongs to trace ${parent.trace_id}, not to this run's trace ${run.trace_id}` };
  }
  const stored = dottedOrderIds(parent.dotted_order);
  if (!sameIds(stored, run.segments.slice(0, -1))) {
    return {
      rule: "parent_dotted_order",
      message: `the dotted_order gives parent run ${parent.id} the ancestry ${chain(run.segments.slice(0, -1).map((s) => s.id))}, but the stored parent's is ${chain(stored)}`,
    };
  }
  return null;
}

/** The same check from the parent's side: `child` was stored before the run it names as parent, which is now being stored with `segments`. */
export function checkChildAncestry(run: { id: string; segments: readonly DottedSegment[] }, child: { id: string; dotted_order: string }): RuleViolation | null {
  const claimed = dottedOrderIds(child.dotted_order).slice(0, -1);
  if (sameIds(claimed, run.segments)) return null;
  return {
    rule: "parent_dotted_order",
    message: `stored child run ${child.id} gives this run the ancestry ${chain(claimed)}, but this run's dotted_order says ${chain(run.segments.map((s) => s.id))}`,
  };
}
