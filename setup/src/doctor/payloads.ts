/**
 * Two checks of the trace doctor that look at what runs carry rather than how they link:
 * duplicate runs from retries (siblings doing the same work with the same inputs) and oversized
 * payloads (inputs, outputs or events above a size).
 */
import type { TraceNode } from "../traces/tree.js";
import { descendants, duration, finding, label, plural, ref, type Context } from "./context.js";
import type { DoctorRun, Finding } from "./types.js";

export function duplicateRuns(ctx: Context): Finding[] {
  const out: Finding[] = [];
  for (const parent of ctx.tree.nodes.values()) {
    const groups = new Map<string, TraceNode[]>();
    for (const child of parent.children) {
      const inputs = (child.run as DoctorRun).inputs;
      if (inputs === undefined) continue;
      const key = `${child.run.name}\u0000${child.service ?? ""}\u0000${json(inputs)}`;
      groups.set(key, [...(groups.get(key) ?? []), child]);
    }
    for (const group of groups.values()) {
      const first = group[0] as TraceNode;
      const same = group.filter((n) => sameWork(first, n));
      if (same.length < 2 || startedTogether(same)) continue;
      const worked = same.filter(didWork);
      const failed = same.filter((n) => n.run.error);
      const firstError = failed[0]?.run.error?.split("\n")[0];
      const gapMs = same.length > 1 && same[1]?.startMs !== undefined && first.startMs !== undefined ? same[1].startMs - first.startMs : undefined;
      const problem = worked.length >= 2;
      out.push(
        finding({
          kind: "duplicate",
          severity: problem ? "problem" : "note",
          title:
            `${label(first)} ran ${same.length} times under ${label(parent)} with the same inputs` +
            (problem ? `, and ${worked.length} of the attempts did the work` : `; ${plural(failed.length, "attempt")} failed before a later one succeeded`) +
            (firstError ? ` (first error: ${firstError})` : ""),
          cause: problem
            ? `A retry: ${parent.service ? `"${parent.service}"` : "the caller"} sent the call again (a timeout or a dropped connection on its side, a retrying HTTP client or queue redelivery) while the first attempt was still working` +
              `${gapMs !== undefined ? ` (the retry started ${duration(gapMs)} after the first)` : ""}, so the work, and any model call in it, ran twice.`
            : "Retries after failures. The trace shows each attempt, which is right; it is listed so the failures are not missed.",
          fix: problem
            ? "Give the callee time to answer (the caller's timeout above its latency), make the call idempotent (an idempotency key the callee checks), and cancel the first attempt's work when the caller gives up (abort on 'close')."
            : "Nothing, unless the failures themselves need fixing.",
          runs: [ref(ctx, parent), ...same.map((n) => ref(ctx, n))],
          evidence: { attempts: same.length, didWork: worked.length, failed: failed.length },
        }),
      );
    }
  }
  return out;
}

export function oversizedRuns(ctx: Context): Finding[] {
  const out: Finding[] = [];
  for (const node of ctx.tree.nodes.values()) {
    const run = node.run as DoctorRun;
    const sizes: Array<[string, number]> = [];
    for (const field of ["inputs", "outputs", "events"] as const) {
      if (run[field] === undefined) continue;
      const bytes = Buffer.byteLength(json(run[field]), "utf8");
      if (bytes > ctx.maxPayloadBytes) sizes.push([field, bytes]);
    }
    if (sizes.length === 0) continue;
    const text = sizes.map(([f, b]) => `${f} ${(b / 1024 / 1024).toFixed(1)} MiB`).join(", ");
    out.push(
      finding({
        kind: "oversized",
        severity: "problem",
        title: `${label(node)} carries ${text} (the limit checked is ${(ctx.maxPayloadBytes / 1024 / 1024).toFixed(1)} MiB)`,
        cause:
          "Whole documents, base64 images, file contents or long chat histories are traced as inputs or outputs. Every copy is uploaded, stored and shown; " +
          "batches this large are slow to send, and a backend refuses a request over its body limit, which drops the other runs in it.",
        fix: "Trace a summary instead: processInputs/processOutputs on traceable (ids, sizes, the first characters), hideInputs/hideOutputs on the Client, or attachments for files.",
        runs: [ref(ctx, node)],
        evidence: Object.fromEntries(sizes.map(([f, b]) => [`${f}Bytes`, b])),
      }),
    );
  }
  return out;
}

function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "";
  }
}

/**
 * A retry is sent once an attempt failed or its caller gave up waiting, so it starts later; calls
 * started within a few milliseconds of each other are a fan-out (Promise.all over the same call),
 * not retries.
 */
function startedTogether(attempts: readonly TraceNode[]): boolean {
  const starts = attempts.map((n) => n.startMs);
  if (starts.some((s) => s === undefined)) return false;
  const ms = starts as number[];
  return Math.max(...ms) - Math.min(...ms) < PARALLEL_MS;
}

const PARALLEL_MS = 10;

/** Whether this attempt got work done: it, or something under it, ended without an error. */
function didWork(node: TraceNode): boolean {
  return [node, ...descendants(node)].some((n) => n.endMs !== undefined && !n.run.error);
}

/** Two attempts with the same inputs are the same call unless their first steps were given different inputs. */
function sameWork(a: TraceNode, b: TraceNode): boolean {
  const fa = a.children[0];
  const fb = b.children[0];
  if (!fa || !fb) return true;
  return fa.run.name === fb.run.name && json((fa.run as DoctorRun).inputs) === json((fb.run as DoctorRun).inputs);
}

