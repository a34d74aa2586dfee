/**
 * The merge and tree rules of the trace store, without SQLite: what row a run operation leaves
 * when applied over the stored one, or which rule it breaks. Creates and updates may arrive in any
 * order, merged or apart: an update's fields win over a create's whichever came first, and a field
 * is never erased by an operation that does not carry it. The caller (ingest.ts) reads and writes
 * rows; this file only decides.
 *
 *   const outcome = mergeRun(op, nowIso(), { lookup, tree, hasProject, ensureProject });
 *   if ("rule" in outcome) reject(outcome); else write(outcome);
 */
import { MAX_TREE_DEPTH, payloadViolation, runLimitViolation } from "../limits.js";
import { dottedTimestamp } from "../time.js";
import type { JsonObject, RawJsonField, RunUpsert } from "../types.js";
import { checkChildAncestry, checkParentAncestry, checkTreeRules, formatDottedOrder, parseDottedOrder, type DottedSegment, type RuleViolation } from "../validate.js";
import { asObject, DEFAULT_PROJECT_NAME, parseJson, type RunRow, type Usage } from "./rows.js";

export type TreeNode = Pick<RunRow, "trace_id" | "dotted_order">;
export type TreeChild = Pick<RunRow, "id" | "dotted_order">;

/** How the ancestry check reads stored runs, through the rows a batch has not written yet. */
export interface TreeLookup {
  node(id: string): TreeNode | undefined;
  children(id: string): TreeChild[];
}

/** What the merge reads around the run: rows so far, the tree, and projects. */
export interface MergeContext {
  /** The run's row so far: stored, or computed earlier in the same batch. */
  lookup(id: string): RunRow | undefined;
  tree: TreeLookup;
  hasProject(id: string): boolean;
  /** The id of the project with this name, creating it on first use. */
  ensureProject(name: string): string;
}

export type MergeOutcome = RunRow | (RuleViolation & { trace_id?: string });

/** The row `run` leaves when applied over what `ctx.lookup` returns, or the rule it breaks. */
export function mergeRun(run: RunUpsert, now: string, ctx: MergeContext): MergeOutcome {
  const tooLong = runLimitViolation(run);
  if (tooLong !== undefined) return { rule: "over_limit", message: tooLong };
  const existing = ctx.lookup(run.id);
  let segments: DottedSegment[] | undefined;
  if (run.dotted_order !== undefined) {
    const parsed = parseDottedOrder(run.dotted_order);
    if (!Array.isArray(parsed)) return parsed;
    segments = parsed;
  }
  if (existing) {
    const incoming = {
      trace_id: run.trace_id,
      dotted_order: segments ? formatDottedOrder(segments) : undefined,
      parent_run_id: run.parent_run_id,
    };
    for (const key of ["trace_id", "dotted_order", "parent_run_id"] as const) {
      const value = incoming[key];
      if (value !== undefined && value !== (existing[key] ?? undefined)) {
        return {
          rule: "conflict",
          message: `${key} ${value} differs from the stored run's ${existing[key] ?? "(none: stored as a root run)"}`,
          trace_id: existing.trace_id,
        };
      }
    }
    segments ??= parseDottedOrder(existing.dotted_order) as DottedSegment[];
  }
  const parentId = run.parent_run_id ?? existing?.parent_run_id ?? undefined;
  if (!segments) {
    const start = run.start_time;
    if (start === undefined) {
      return { rule: "missing_field", message: "dotted_order is required (or at least start_time, to derive it)" };
    }
    const own: DottedSegment = { timestamp: dottedTimestamp(start), time: start, id: run.id };
    if (parentId === undefined) {
      segments = [own];
    } else {
      const parent = ctx.lookup(parentId);
      if (!parent) {
        return { rule: "missing_field", message: `dotted_order is required: parent run ${parentId} is not stored, so it cannot be derived` };
      }
      segments = [...(parseDottedOrder(parent.dotted_order) as DottedSegment[]), own];
    }
  }
  if (segments.length > MAX_TREE_DEPTH) {
    return { rule: "over_limit", message: `the run would be ${segments.length} levels deep (dotted_order segments), over the limit of ${MAX_TREE_DEPTH}` };
  }
  const traceId = run.trace_id ?? existing?.trace_id ?? segments[0]?.id ?? run.id;
  const violation = checkTreeRules({ id: run.id, trace_id: traceId, parent_run_id: parentId, segments }) ?? checkAncestry(run.id, traceId, parentId, segments, existing === undefined, ctx.tree);
  if (violation) return { ...violation, trace_id: traceId };

  let projectId: string | undefined;
  if (run.session_id !== undefined) {
    if (!ctx.hasProject(run.session_id)) {
      return { rule: "unknown_project", message: `session_id ${run.session_id} names no project`, trace_id: traceId };
    }
    projectId = run.session_id;
  } else if (run.session_name !== undefined || run.address !== undefined) {
    projectId = ctx.ensureProject((run.session_name ?? run.address) as string);
  }

  // An update outranks a create whichever arrived first; among equals the later one wins.
  const dominant = run.op === "patch" || !existing || existing.has_patch === 0;
  const pick = <T>(incoming: T | undefined, stored: T | null | undefined): T | null =>
    incoming === undefined ? stored ?? null : stored === null || stored === undefined || dominant ? incoming : stored;
  const pickJson = (field: RawJsonField | "tags", stored: string | null | undefined): string | null => {
    const incoming = run[field];
    if (incoming === undefined) return stored ?? null;
    if (stored !== null && stored !== undefined && !dominant) return stored;
    return (field !== "tags" ? run.raw?.[field] : undefined) ?? JSON.stringify(incoming);
  };

  let extraText: string | null;
  let extraObj: JsonObject | null;
  if (run.extra === undefined) {
    extraText = existing?.extra ?? null;
    extraObj = parseJson<JsonObject>(extraText);
  } else {
    const stored = parseJson<JsonObject>(existing?.extra ?? null);
    extraObj = stored === null ? run.extra : dominant ? mergeExtra(stored, run.extra) : mergeExtra(run.extra, stored);
    extraText = stored === null ? run.raw?.extra ?? JSON.stringify(extraObj) : JSON.stringify(extraObj);
  }

  const runType = pick(run.run_type, existing?.run_type);
  const outputsText = pickJson("outputs", existing?.outputs);
  let usage: Usage | null = existing
    ? { prompt: existing.prompt_tokens, completion: existing.completion_tokens, total: existing.total_tokens }
    : null;
  if (outputsText !== (existing?.outputs ?? null) || runType !== (existing?.run_type ?? null)) {
    usage = runType === "llm" ? usageFromOutputs(parseJson<JsonObject>(outputsText) ?? undefined) : null;
  }
  const eventsText = pickJson("events", existing?.events);
  const firstToken = eventsText === (existing?.events ?? null) ? existing?.first_token_time ?? null : firstTokenTime(parseJson<JsonObject[]>(eventsText));
  const lastSegment = segments[segments.length - 1] as DottedSegment;

  const row: RunRow = {
    id: run.id,
    trace_id: traceId,
    dotted_order: formatDottedOrder(segments),
    parent_run_id: parentId ?? null,
    project_id: (existing?.project_explicit === 0 ? projectId : pick(projectId, existing?.project_id)) ?? existing?.project_id ?? ctx.ensureProject(DEFAULT_PROJECT_NAME),
    project_explicit: projectId !== undefined || existing?.project_explicit === 1 ? 1 : 0,
    name: pick(run.name, existing?.name),
    run_type: runType,
    start_time: pick(run.start_time, existing?.start_time) ?? lastSegment.time,
    end_time: pick(run.end_time, existing?.end_time),
    error: pick(run.error, existing?.error),
    inputs: pickJson("inputs", existing?.inputs),
    outputs: outputsText,
    extra: extraText,
    events: eventsText,
    tags: pickJson("tags", existing?.tags),
    serialized: pickJson("serialized", existing?.serialized),
    reference_example_id: pick(run.reference_example_id, existing?.reference_example_id),
    address: pick(run.address, existing?.address),
    service: serviceOf(extraObj),
    prompt_tokens: usage?.prompt ?? null,
    completion_tokens: usage?.completion ?? null,
    total_tokens: usage?.total ?? null,
    first_token_time: firstToken,
    has_post: existing?.has_post === 1 || run.op === "post" ? 1 : 0,
    has_patch: existing?.has_patch === 1 || run.op === "patch" ? 1 : 0,
    source: existing?.source ?? run.source ?? null,
    received_at: existing?.received_at ?? now,
    updated_at: now,
  };
  const tooLarge = payloadViolation([row.inputs, row.outputs, row.extra, row.events, row.serialized, row.error]);
  if (tooLarge !== undefined) return { rule: "over_limit", message: tooLarge, trace_id: traceId };
  return row;
}

/**
 * Whether a later SELECT of this row succeeds. node:sqlite stores an integer
 * beyond 2^53 as a 64-bit integer and then refuses to read it as a number,
 * so with such a token count the next operation on the run (or a child
 * deriving its dotted_order from it) fails.
 */
export function readableBack(row: RunRow): boolean {
  return [row.prompt_tokens, row.completion_tokens, row.total_tokens].every((v) => v === null || !Number.isInteger(v) || Number.isSafeInteger(v));
}

/**
 * The run's stored parent, and its stored children when it is new, must agree with the ancestry
 * its dotted_order gives (see checkParentAncestry). A run's ancestry never changes once stored
 * (the conflict rule), so children are checked only when the run first arrives.
 */
function checkAncestry(id: string, traceId: string, parentId: string | undefined, segments: DottedSegment[], isNew: boolean, tree: TreeLookup): RuleViolation | null {
  const parent = parentId === undefined ? undefined : tree.node(parentId);
  if (parentId !== undefined && parent) {
    const v = checkParentAncestry({ id, trace_id: traceId, segments }, { id: parentId, trace_id: parent.trace_id, dotted_order: parent.dotted_order });
    if (v) return v;
  }
  if (!isNew) return null;
  for (const child of tree.children(id)) {
    const v = checkChildAncestry({ id, segments }, child);
    if (v) return v;
  }
  return null;
}

function mergeExtra(low: JsonObject, high: JsonObject): JsonObject {
  const merged: JsonObject = { ...low, ...high };
  for (const key of ["metadata", "runtime"] as const) {
    const a = low[key];
    const b = high[key];
    if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
      merged[key] = { ...(a as JsonObject), ...(b as JsonObject) };
    }
  }
  return merged;
}

/** Token counts of an LLM run, from the shapes LangChain, the OpenAI wrapper and traceable emit. */
function usageFromOutputs(outputs: JsonObject | undefined): Usage | null {
  if (!outputs) return null;
  const generations = outputs.generations;
  const firstGen = Array.isArray(generations) ? (Array.isArray(generations[0]) ? generations[0][0] : generations[0]) : undefined;
  const message = asObject(asObject(firstGen)?.message);
  const llmOutput = asObject(outputs.llm_output);
  const candidates = [
    outputs.usage_metadata,
    asObject(asObject(outputs.message)?.kwargs)?.usage_metadata,
    llmOutput?.token_usage,
    llmOutput?.tokenUsage,
    asObject(message?.kwargs)?.usage_metadata,
    message?.usage_metadata,
    outputs.usage,
  ];
  for (const c of candidates) {
    const u = asObject(c);
    if (!u) continue;
    const num = (...keys: string[]): number | null => {
      for (const k of keys) if (typeof u[k] === "number") return u[k];
      return null;
    };
    const prompt = num("input_tokens", "prompt_tokens", "promptTokens");
    const completion = num("output_tokens", "completion_tokens", "completionTokens");
    const total = num("total_tokens", "totalTokens") ?? (prompt !== null || completion !== null ? (prompt ?? 0) + (completion ?? 0) : null);
    if (prompt !== null || completion !== null || total !== null) return { prompt, completion, total };
  }
  return null;
}

function firstTokenTime(events: JsonObject[] | null): string | null {
  const ev = events?.find((e) => e.name === "new_token");
  return typeof ev?.time === "string" ? ev.time : null;
}

function serviceOf(extra: JsonObject | null): string | null {
  const metadata = asObject(extra?.metadata);
  const v = metadata?.LANGSMITH_SERVICE;
  if (typeof v === "string") return v;
  // An OpenTelemetry span's resource service.name (OTLP ingest); the SDK's default names no service.
  const otel = metadata?.["service.name"];
  return typeof otel === "string" && otel !== "" && !otel.startsWith("unknown_service") ? otel : null;
}
