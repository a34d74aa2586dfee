/**
 * Reads what the trace doctor diagnoses, through the langsmith SDK's Client (so it works against the
 * local trace server and LangSmith alike): the trace's runs (readTrace), the roots of other traces
 * near it in time and the runs of those that overlap it (for split and lost-context checks), and, when
 * the backend is the local trace server, the runs it rejected (`GET /api/rejections`, which LangSmith
 * does not have).
 *
 *   const input = await readDoctorInput(traceId, { client });
 *   const diagnosis = diagnoseTrace(input);
 */
import { Client, type Run } from "langsmith";
import type { RunSelectField } from "langsmith/resources";
import { LANGSMITH_CLOUD_ENDPOINT } from "../config.js";
import { readTrace, runFromV2 } from "../traces/read.js";
import { toMs } from "../traces/tree.js";
import { metaText } from "./context.js";
import type { DiagnoseInput, DoctorRejection, RelatedTrace } from "./types.js";

export interface DoctorReadOptions {
  /** The backend. Default: LANGSMITH_ENDPOINT (else LangSmith's) and LANGSMITH_API_KEY, as the SDK reads them. */
  apiUrl?: string;
  apiKey?: string;
  /** Client to read with. Default: one for apiUrl and apiKey. Pass the same endpoint as apiUrl. */
  client?: Client;
  /** How long to wait for a trace's runs to settle (readTrace's timeout). Default 3000 ms. */
  waitMs?: number;
  /** How far before the trace to look for related traces. Default 60 s. */
  windowMs?: number;
  /** At most this many roots of other traces are read from the window. Default 200. */
  maxRelated?: number;
  /** Of those, at most this many overlapping traces are read whole. Default 25. */
  maxFullReads?: number;
}

/** The endpoint, key and client a read uses, defaults filled in. */
export function doctorClient(options: Pick<DoctorReadOptions, "apiUrl" | "apiKey" | "client">): { apiUrl: string; apiKey: string | undefined; client: Client } {
  const apiUrl = (options.apiUrl ?? process.env.LANGSMITH_ENDPOINT ?? process.env.LANGCHAIN_ENDPOINT ?? LANGSMITH_CLOUD_ENDPOINT).replace(/\/+$/, "");
  const apiKey = options.apiKey ?? process.env.LANGSMITH_API_KEY ?? process.env.LANGCHAIN_API_KEY;
  return { apiUrl, apiKey, client: options.client ?? new Client({ apiUrl, ...(apiKey !== undefined ? { apiKey } : {}) }) };
}

/** Reading failed (network, authentication, a missing project): the CLI's exit code 3. */
export class DoctorReadError extends Error {}

export const DOCTOR_SELECTS: RunSelectField[] = [
  "ID", "NAME", "RUN_TYPE", "STATUS", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA",
  "EVENTS", "TAGS", "PARENT_RUN_IDS", "PROJECT_ID", "TRACE_ID", "DOTTED_ORDER",
];
export const ROOT_SELECTS: RunSelectField[] = ["ID", "NAME", "RUN_TYPE", "START_TIME", "END_TIME", "ERROR", "INPUTS", "EXTRA", "METADATA", "PARENT_RUN_IDS", "PROJECT_ID", "TRACE_ID", "DOTTED_ORDER"];
const HOUR_MS = 60 * 60 * 1000;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Every project of the workspace, id to name: the v2 read API needs project ids. */
export async function listProjectNames(client: Client, apiUrl: string): Promise<Map<string, string>> {
  // The Client retries a refused connection four times with backoff (about 20 s); a backend that
  // is down should fail the doctor at once. /info needs no key, on LangSmith and locally.
  try {
    await fetch(`${apiUrl}/info`, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new DoctorReadError(`could not reach ${apiUrl}: ${reason}`);
  }
  const names = new Map<string, string>();
  try {
    for await (const project of client.listProjects()) names.set(project.id, project.name ?? project.id);
  } catch (error) {
    throw new DoctorReadError(`could not list projects at ${apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return names;
}

/** All runs of one trace in the given projects, in one paged query; the window starts an hour before a UUIDv7 trace id's time. */
export async function queryTraceRuns(client: Client, projectIds: string[], traceId: string, now = Date.now()): Promise<Run[]> {
  if (projectIds.length === 0) return [];
  const began = UUID_V7.test(traceId) ? parseInt(traceId.slice(0, 8) + traceId.slice(9, 13), 16) : undefined;
  const runs: Run[] = [];
  for await (const item of client.runs.query({
    project_ids: projectIds,
    trace_id: traceId,
    selects: DOCTOR_SELECTS,
    min_start_time: iso(began !== undefined ? began - HOUR_MS : now - 24 * HOUR_MS),
    max_start_time: iso(now + HOUR_MS),
  })) {
    runs.push(runFromV2(item));
  }
  return runs;
}

/** The trace a run id belongs to, for when the id given is a run's rather than a trace's. */
export async function traceOfRun(client: Client, projectIds: string[], runId: string): Promise<string | undefined> {
  if (projectIds.length === 0) return undefined;
  for await (const item of client.runs.query({ project_ids: projectIds, ids: [runId], selects: ["TRACE_ID"], min_start_time: iso(Date.now() - 30 * 24 * HOUR_MS) })) {
    if (item.trace_id) return item.trace_id;
  }
  return undefined;
}

/** Whether the endpoint is this repository's trace server, which records rejections (its /info version ends in "+local"). */
export async function isLocalTraceServer(apiUrl: string, apiKey: string | undefined): Promise<boolean> {
  try {
    const response = await fetch(`${apiUrl}/info`, { headers: apiKey ? { "x-api-key": apiKey } : {}, signal: AbortSignal.timeout(5000) });
    if (!response.ok) return false;
    const info = (await response.json()) as { version?: unknown };
    return typeof info.version === "string" && info.version.endsWith("+local");
  } catch {
    return false;
  }
}

export async function fetchRejections(apiUrl: string, apiKey: string | undefined, query: Record<string, string>): Promise<DoctorRejection[]> {
  const url = `${apiUrl}/api/rejections?${new URLSearchParams({ ...query, limit: "1000" }).toString()}`;
  const response = await fetch(url, { headers: apiKey ? { "x-api-key": apiKey } : {}, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new DoctorReadError(`GET ${url.replace(/\?.*/, "")} answered ${response.status}`);
  return ((await response.json()) as { rejections: DoctorRejection[] }).rejections;
}

/**
 * The rejections of a trace and of the missing parents of its orphans (a rejected child's trace id
 * may be wrong, so it is looked up by run id too), and the runs refused because their trace_id is
 * not the one their dotted_order names first, when that first segment is this trace: such a run is
 * recorded under its own, wrong, trace id, and its descendants, which inherit that id, leave no
 * orphan here to look it up by (among the newest 1000 such rejections). Undefined when the backend
 * does not record rejections.
 */
export async function readRejections(apiUrl: string, apiKey: string | undefined, traceId: string, runIds: string[] = []): Promise<DoctorRejection[] | undefined> {
  if (!(await isLocalTraceServer(apiUrl, apiKey))) return undefined;
  return rejectionsOf(apiUrl, apiKey, traceId, runIds, await fetchRejections(apiUrl, apiKey, { rule: "child_trace_id" }));
}

/** readRejections for a server known to record them, given its child_trace_id rejections (read once for many traces). */
export async function rejectionsOf(apiUrl: string, apiKey: string | undefined, traceId: string, runIds: string[], claimed: DoctorRejection[]): Promise<DoctorRejection[]> {
  const found = new Map<string, DoctorRejection>();
  const add = (list: DoctorRejection[]): void => {
    for (const r of list) found.set(String(r.seq ?? `${r.run_id}:${r.message}`), r);
  };
  add(await fetchRejections(apiUrl, apiKey, { trace_id: traceId }));
  for (const runId of runIds) add(await fetchRejections(apiUrl, apiKey, { run_id: runId }));
  add(claimed.filter((r) => r.message.toLowerCase().includes(`segment names run ${traceId.toLowerCase()},`)));
  return [...found.values()];
}

export function rootWindow(runs: Run[], now: number): { start: number; end: number } | undefined {
  let start: number | undefined;
  let end: number | undefined;
  for (const run of runs) {
    const s = toMs(run.start_time);
    if (s === undefined) continue;
    start = start === undefined ? s : Math.min(start, s);
    const e = toMs(run.end_time) ?? now;
    end = end === undefined ? e : Math.max(end, e);
  }
  return start !== undefined && end !== undefined ? { start, end } : undefined;
}

/**
 * Other traces around `runs`: the roots of every trace that started from `windowMs` before it until
 * it ended (plus a few seconds), read whole when they overlap it in time, plus the trace its root
 * claims as the caller's (the middleware's untrusted_parent_trace_id).
 */
export async function readRelated(client: Client, projectIds: string[], traceId: string, runs: Run[], options: DoctorReadOptions = {}): Promise<RelatedTrace[]> {
  const now = Date.now();
  const window = rootWindow(runs, now);
  if (!window || projectIds.length === 0) return [];
  const { windowMs = 60_000, maxRelated = 200, maxFullReads = 25 } = options;
  const roots: Run[] = [];
  for await (const item of client.runs.query({
    project_ids: projectIds,
    is_root: true,
    selects: ROOT_SELECTS,
    min_start_time: iso(window.start - windowMs),
    max_start_time: iso(window.end + 5000),
  })) {
    const run = runFromV2(item);
    if (run.trace_id && run.trace_id !== traceId) roots.push(run);
    if (roots.length >= maxRelated) break;
  }
  const related = new Map<string, RelatedTrace>(roots.map((r) => [r.trace_id as string, { traceId: r.trace_id as string, runs: [r] }]));
  const overlapping = roots
    .filter((r) => {
      const s = toMs(r.start_time) ?? Number.NaN;
      return s <= window.end + 5000 && (toMs(r.end_time) ?? now) >= window.start - 5000;
    })
    .sort((a, b) => Math.abs((toMs(a.start_time) ?? 0) - window.start) - Math.abs((toMs(b.start_time) ?? 0) - window.start))
    .slice(0, maxFullReads);
  for (const r of overlapping) {
    const id = r.trace_id as string;
    related.set(id, { traceId: id, runs: await queryTraceRuns(client, projectIds, id, now) });
  }
  const root = runs.find((r) => r.id === traceId) ?? runs.find((r) => !r.parent_run_id);
  const claimed = root ? metaText(root, "untrusted_parent_trace_id") : undefined;
  if (claimed && !related.has(claimed)) {
    const claimedRuns = await queryTraceRuns(client, projectIds, claimed, now);
    if (claimedRuns.length > 0) related.set(claimed, { traceId: claimed, runs: claimedRuns });
  }
  return [...related.values()];
}

/** Everything diagnoseTrace needs about one trace, read through the SDK. Throws DoctorReadError when the backend cannot be read. */
export async function readDoctorInput(traceId: string, options: DoctorReadOptions = {}): Promise<DiagnoseInput & { source: string }> {
  const { apiUrl, apiKey, client } = doctorClient(options);
  const projectNames = await listProjectNames(client, apiUrl);
  const waitMs = options.waitMs ?? 3000;
  let runs: Run[] = [];
  try {
    runs = await readTrace(traceId, { client, timeoutMs: waitMs, settleMs: Math.min(500, waitMs), pollMs: 100 });
  } catch {
    // readTrace throws when nothing is visible; the rejections may still say why.
  }
  return readAround(traceId, runs, { ...options, apiUrl, apiKey, client }, projectNames);
}

/**
 * What diagnoseTrace needs besides runs already read (by readTrace, as expectTrace does): the
 * project names, the rejections and the related traces, read as readDoctorInput reads them. Saves
 * reading the trace a second time.
 */
export async function readDoctorContext(traceId: string, runs: Run[], options: DoctorReadOptions = {}): Promise<DiagnoseInput & { source: string }> {
  const { apiUrl, apiKey, client } = doctorClient(options);
  return readAround(traceId, runs, { ...options, apiUrl, apiKey, client }, await listProjectNames(client, apiUrl));
}

async function readAround(
  traceId: string,
  runs: Run[],
  options: DoctorReadOptions & { apiUrl: string; client: Client },
  projectNames: Map<string, string>,
): Promise<DiagnoseInput & { source: string }> {
  const { apiUrl, apiKey, client } = options;
  const missingParents = [...new Set(runs.flatMap((r) => (r.parent_run_id && !runs.some((p) => p.id === r.parent_run_id) ? [r.parent_run_id] : [])))];
  let rejections: DoctorRejection[] | undefined;
  let related: RelatedTrace[];
  try {
    rejections = await readRejections(apiUrl, apiKey, traceId, missingParents);
    related = await readRelated(client, [...projectNames.keys()], traceId, runs, options);
  } catch (error) {
    throw error instanceof DoctorReadError ? error : new DoctorReadError(`could not read at ${apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { traceId, runs, rejections, related, projectNames, source: apiUrl };
}
