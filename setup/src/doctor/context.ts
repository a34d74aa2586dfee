/**
 * What every check of the trace doctor reads: the trace's tree, its options with defaults, and small
 * helpers to name runs and read the metadata the SDK and the tracing middleware record. Internal to
 * setup/src/doctor (diagnose.ts and correlate.ts build on it).
 */
import { buildTraceTree, type TraceNode, type TraceTree } from "../traces/tree.js";
import { formatDuration } from "../traces/tree.js";
import type { DiagnoseInput, DoctorOptions, DoctorRun, Finding, RunRef } from "./types.js";

export interface Context {
  input: DiagnoseInput;
  tree: TraceTree;
  skewMs: number;
  staleMs: number;
  maxPayloadBytes: number;
  expectProject: string | undefined;
  now: number;
}

export const DEFAULT_SKEW_MS = 50;
export const DEFAULT_STALE_MS = 60_000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

export function makeContext(input: DiagnoseInput, options: DoctorOptions): Context {
  return {
    input,
    tree: buildTraceTree(input.runs),
    skewMs: options.skewMs ?? DEFAULT_SKEW_MS,
    staleMs: options.staleMs ?? DEFAULT_STALE_MS,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    expectProject: options.expectProject,
    now: options.now ?? Date.now(),
  };
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function metadataOf(run: DoctorRun): Record<string, unknown> {
  return asRecord(asRecord(run.extra).metadata);
}

/** A metadata value as text, when it is a non-empty string or a number. */
export function metaText(run: DoctorRun, key: string): string | undefined {
  const value = metadataOf(run)[key];
  if (typeof value === "number") return String(value);
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A request header the tracing middleware recorded in the server run's inputs (`inputs.headers`). */
export function recordedHeader(run: DoctorRun, name: string): string | undefined {
  const value = asRecord(asRecord(run.inputs).headers)[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function projectName(ctx: Pick<Context, "input">, projectId: string | undefined): string | undefined {
  if (projectId === undefined) return undefined;
  return ctx.input.projectNames?.get(projectId) ?? projectId;
}

export function ref(ctx: Pick<Context, "input">, node: TraceNode): RunRef {
  const out: RunRef = { id: node.run.id, name: node.run.name };
  if (node.service) out.service = node.service;
  const project = projectName(ctx, (node.run as DoctorRun).session_id);
  if (project) out.project = project;
  return out;
}

/** `"POST /work" [worker]`: how findings name a run; the id tail is in `runs`. */
export function label(node: TraceNode): string {
  return `"${node.run.name}" [${node.service ?? "unknown service"}]`;
}

export function shortId(id: string): string {
  return `…${id.slice(-8)}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export const duration = formatDuration;

/** The services of `nodes`, sorted and without repeats. */
export function servicesOf(nodes: Iterable<TraceNode>): string[] {
  const set = new Set<string>();
  for (const n of nodes) if (n.service) set.add(n.service);
  return [...set].sort();
}

/** All nodes below `node`, itself excluded. */
export function descendants(node: TraceNode): TraceNode[] {
  const out: TraceNode[] = [];
  const stack = [...node.children];
  while (stack.length > 0) {
    const n = stack.pop() as TraceNode;
    out.push(n);
    stack.push(...n.children);
  }
  return out;
}

/** A run the tracing middleware made for an incoming request: it records how it treated the inbound context. */
export function isEntryRun(run: DoctorRun): boolean {
  return metaText(run, "trace.inbound") !== undefined || /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \//.test(run.name);
}

export function finding(partial: Omit<Finding, "relatedTraces" | "evidence" | "services"> & Partial<Pick<Finding, "relatedTraces" | "evidence" | "services">>): Finding {
  const services = partial.services ?? [...new Set(partial.runs.flatMap((r) => (r.service ? [r.service] : [])))].sort();
  return { relatedTraces: [], evidence: {}, ...partial, services };
}
