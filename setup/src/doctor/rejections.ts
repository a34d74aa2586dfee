/**
 * The trace doctor's reading of the trace server's rejections: one finding per rule, naming the
 * rejected runs, what the rule means and the fix. Rules are the local trace server's
 * (docs/local-stack.md, "Validation and rejections"); LangSmith applies the same tree rules but does
 * not expose what it refused, so against it the doctor can only infer rejections from orphans.
 */
import { finding, plural, type Context } from "./context.js";
import type { DoctorRejection, Finding, RunRef } from "./types.js";

const TREE_RULES = new Set(["root_trace_id", "root_single_segment", "child_segments", "child_trace_id", "child_parent_id", "dotted_order_self"]);

export function rejectionFindings(ctx: Context): Finding[] {
  const byRule = new Map<string, DoctorRejection[]>();
  for (const r of ctx.input.rejections ?? []) byRule.set(r.rule, [...(byRule.get(r.rule) ?? []), r]);
  return [...byRule].map(([rule, list]) => {
    const runs = [...new Map(list.flatMap((r) => {
      const run = rejectedRun(r);
      return run ? [[run.id, run] as const] : [];
    })).values()];
    const first = list[0] as DoctorRejection;
    const { cause, fix } = causeOf(rule);
    return finding({
      kind: "rejected",
      severity: "problem",
      title: `${plural(list.length, "operation")} of this trace ${list.length === 1 ? "was" : "were"} rejected by the trace server [${rule}]: ${first.message}`,
      cause,
      fix,
      runs,
      evidence: { rule, rejections: list.length },
    });
  });
}

function causeOf(rule: string): { cause: string; fix: string } {
  if (TREE_RULES.has(rule)) {
    return {
      cause:
        "The run's ids disagree with its dotted_order: trace_id, parent_run_id or dotted_order were set by hand, rewritten after the run was created " +
        "(a replica's `updates`, a copied run), or a parent was taken from another trace. LangSmith answers such a run with a 400 " +
        "(\"trace_id does not match first part of dotted_order\") and drops the whole batch it came in (BerriAI/litellm#37269 and its fix #38116, " +
        "langgenius/dify#35972), so there one bad run takes its neighbours with it; the local trace server stores the valid ones.",
      fix: "Let the SDK derive trace_id and dotted_order (RunTree.createChild, traceable, RunTree.fromHeaders); never set them or re-parent a run after it is created.",
    };
  }
  if (rule === "dotted_order_format") {
    return {
      cause: "A dotted_order segment is not `YYYYMMDDTHHMMSSffffffZ<uuid>`: often a tracer that writes milliseconds instead of microseconds, or a hand-built string.",
      fix: "Let the SDK build dotted_order; a bridge from another tracer must write microseconds and a real UTC date.",
    };
  }
  if (rule === "conflict") {
    return {
      cause: "A run id was sent again with another trace_id, parent or dotted_order: the same id reused for two runs (a fixed id, a retry that re-created the run under another parent).",
      fix: "Give every run its own id (the SDK's default); on a retry create a new run instead of re-sending an old id under a new parent.",
    };
  }
  if (rule === "unknown_project") {
    return { cause: "The run named a project by an id that does not exist.", fix: "Name projects by name (LANGSMITH_PROJECT), or create the project first." };
  }
  return {
    cause: "The payload was malformed (a field of the wrong type, bad JSON, an id that is not a UUID, a missing field, or JSON nested too deep).",
    fix: "Send runs through the SDK unmodified; check any processInputs/processOutputs hook that builds the payload.",
  };
}

/** The run a rejection names, with its name from the recorded payload when there is one. */
function rejectedRun(r: DoctorRejection): RunRef | undefined {
  if (!r.run_id) return undefined;
  let name = "(unnamed)";
  try {
    const payload = JSON.parse(r.payload ?? "null") as { name?: unknown } | null;
    if (payload && typeof payload.name === "string") name = payload.name;
  } catch {
    // Payloads are truncated to a few KiB, so a long one does not parse; the id still names the run.
  }
  return { id: r.run_id, name };
}

