import { Client, type Run } from "langsmith";
import type { Run as RunV2, RunSelectField } from "langsmith/resources";
import { flushTraces } from "../flush.js";
import { toMs } from "./tree.js";

export interface ReadTraceOptions {
  /** Client to read with (and to flush first). Default: a new Client configured from the environment. */
  client?: Client;
  /** Restrict to one project. Default: all projects, since services may write to different ones. */
  projectName?: string;
  /** Keep polling until at least this many runs are visible. */
  expectRuns?: number;
  /** Give up polling after this long and return what is visible. Default 10000. */
  timeoutMs?: number;
  /** Return once the run set has not changed for this long, every run has ended and expectRuns is met. Default 750. */
  settleMs?: number;
  /** Pause between polls. Default 100. */
  pollMs?: number;
}

/** The fields readTrace asks `client.runs.query()` for: without `selects` it returns only ids. */
const READ_TRACE_SELECTS: RunSelectField[] = [
  "ID", "NAME", "RUN_TYPE", "STATUS", "START_TIME", "END_TIME", "ERROR", "INPUTS", "OUTPUTS", "EXTRA", "METADATA",
  "EVENTS", "TAGS", "PARENT_RUN_IDS", "PROJECT_ID", "TRACE_ID", "DOTTED_ORDER", "REFERENCE_EXAMPLE_ID",
  "TOTAL_TOKENS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "FEEDBACK_STATS", "APP_PATH",
];

/** How far the clocks of the services that add runs to one trace may disagree. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The creation time in a UUIDv7 (the SDK's run ids, so its trace ids), else undefined. */
function uuid7Ms(id: string): number | undefined {
  return UUID_V7.test(id) ? parseInt(id.slice(0, 8) + id.slice(9, 13), 16) : undefined;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * A run from `client.runs.query()` in the shape of the SDK's v1 `Run`, which the rest of
 * traces/ and callers of readTrace read. v2 names the project `project_id`, gives the ancestors
 * (`parent_run_ids`, root first) instead of `parent_run_id`, upper-cases `run_type` and `status`,
 * may return `metadata` apart from `extra`, and sends null for absent values.
 */
export function runFromV2(v2: RunV2): Run {
  if (v2.id === undefined) throw new Error("client.runs.query() returned a run without an id");
  const extra = asRecord(v2.extra);
  const metadata = { ...asRecord(extra.metadata), ...asRecord(v2.metadata) };
  const run: Run = {
    id: v2.id,
    name: v2.name ?? "",
    run_type: (v2.run_type ?? "").toLowerCase(),
    inputs: v2.inputs ?? {},
    outputs: v2.outputs ?? undefined,
    start_time: v2.start_time ?? undefined,
    end_time: v2.end_time ?? undefined,
    status: v2.status?.toLowerCase(),
    error: v2.error ?? undefined,
    extra: Object.keys(metadata).length > 0 ? { ...extra, metadata } : extra,
    events: v2.events?.map((e) => ({ ...e })),
    tags: v2.tags ?? undefined,
    trace_id: v2.trace_id ?? undefined,
    parent_run_id: v2.parent_run_ids?.at(-1),
    parent_run_ids: v2.parent_run_ids ?? undefined,
    dotted_order: v2.dotted_order ?? undefined,
    session_id: v2.project_id ?? undefined,
    reference_example_id: v2.reference_example_id ?? undefined,
    total_tokens: v2.total_tokens ?? undefined,
    prompt_tokens: v2.prompt_tokens ?? undefined,
    completion_tokens: v2.completion_tokens ?? undefined,
    feedback_stats: v2.feedback_stats ?? undefined,
    app_path: v2.app_path ?? undefined,
  };
  // Printed in notebooks: leave out what the server did not report rather than show `undefined`.
  for (const key of Object.keys(run) as Array<keyof Run>) if (run[key] === undefined) delete run[key];
  return run;
}

/**
 * The projects one readTrace call queries. The v2 API reads runs only of projects named by id, and
 * has no lookup of a run or trace without one, so without projectName every project is listed:
 * a workspace's worth of pages, hence per call rather than per poll. Listed once at the start,
 * then again on a doubling interval (a service's first run may be what creates its project), and
 * on request (`refresh`) when the trace looks settled. A named project, once found, is kept.
 */
class TraceProjects {
  private readonly client: Client;
  private readonly projectName: string | undefined;
  private ids: string[] | undefined;
  private listedAt = Number.NEGATIVE_INFINITY;
  private intervalMs: number;

  constructor(client: Client, projectName: string | undefined, intervalMs: number) {
    this.client = client;
    this.projectName = projectName;
    this.intervalMs = intervalMs;
  }

  private get final(): boolean {
    return this.projectName !== undefined && this.ids !== undefined && this.ids.length > 0;
  }

  /** A named project that does not exist yet; looked up on every poll, which is one request. */
  get missing(): boolean {
    return this.projectName !== undefined && this.ids !== undefined && this.ids.length === 0;
  }

  /** The ids to query on this poll; all projects are listed again only when the interval has passed. */
  async current(): Promise<string[]> {
    if (this.ids === undefined || this.missing) return this.refresh();
    if (this.final || Date.now() - this.listedAt < this.intervalMs) return this.ids;
    this.intervalMs *= 2;
    return this.refresh();
  }

  async refresh(): Promise<string[]> {
    if (this.final && this.ids !== undefined) return this.ids;
    const ids: string[] = [];
    const filter = this.projectName !== undefined ? { name: this.projectName } : {};
    for await (const project of this.client.listProjects(filter)) ids.push(project.id);
    this.ids = ids;
    this.listedAt = Date.now();
    return ids;
  }

  /** Whether the list is as fresh as `time`: every project that existed then is in it. */
  listedSince(time: number): boolean {
    return this.final || this.listedAt >= time;
  }
}

async function queryTrace(client: Client, traceId: string, projects: string[]): Promise<Run[]> {
  if (projects.length === 0) return [];
  // runs.query looks at [a day ago, now] unless told otherwise. A UUIDv7 trace id says when the
  // trace began, so older traces are found too; the upper bound allows for a clock running ahead.
  const began = uuid7Ms(traceId);
  const found: Run[] = [];
  const pages = client.runs.query({
    project_ids: projects,
    trace_id: traceId,
    selects: READ_TRACE_SELECTS,
    ...(began !== undefined ? { min_start_time: new Date(began - CLOCK_SKEW_MS).toISOString() } : {}),
    max_start_time: new Date(Date.now() + CLOCK_SKEW_MS).toISOString(),
  });
  for await (const item of pages) found.push(runFromV2(item));
  return found;
}

function isComplete(runs: Run[], expectRuns: number | undefined): { ended: boolean; enough: boolean } {
  return {
    ended: runs.every((r) => toMs(r.end_time) !== undefined),
    enough: runs.length >= (expectRuns ?? 1),
  };
}

function fingerprint(runs: Run[]): string {
  return runs
    .map((r) => `${r.id}:${r.end_time ?? ""}`)
    .sort()
    .join(",");
}

/**
 * All runs of a trace, read back through the SDK's Client (so it works the same against LangSmith).
 * Ingestion is asynchronous, so it first flushes this process's pending batches, then polls
 * `client.runs.query({ project_ids, trace_id })` (every project, or `projectName`'s) until every
 * run has ended, expectRuns is met and the set has been stable for settleMs. At the deadline it
 * returns what is visible; verifyTrace then reports what is missing. Throws only if nothing is visible.
 * Without projectName the projects are listed per call, not per poll (see TraceProjects), and
 * once more when the trace looks settled, so every project that existed by then has been queried.
 */
export async function readTrace(traceId: string, options: ReadTraceOptions = {}): Promise<Run[]> {
  const { projectName, expectRuns, timeoutMs = 10_000, settleMs = 750, pollMs = 100 } = options;
  const client = options.client ?? new Client();
  const deadline = Date.now() + timeoutMs;
  // Bounded by the same deadline: with the backend down or hung, the SDK's own flush takes 90 s or more.
  await flushTraces({ client, timeoutMs });

  let runs: Run[] = [];
  let lastError: unknown;
  let lastPrint = "";
  let stableSince = Date.now();
  const projects = new TraceProjects(client, projectName, Math.max(settleMs, pollMs));
  let confirm = false;
  for (;;) {
    try {
      const ids = confirm ? await projects.refresh() : await projects.current();
      confirm = false;
      runs = await queryTrace(client, traceId, ids);
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const print = fingerprint(runs);
    if (print !== lastPrint) {
      lastPrint = print;
      stableSince = Date.now();
    }
    const state = isComplete(runs, expectRuns);
    // Stable for settleMs even when connected: an ended root is a connected tree on its own, and
    // other services' runs arrive on their own processes' batch schedule (250 ms by default).
    if (runs.length > 0 && state.ended && state.enough && Date.now() - stableSince >= settleMs) {
      // Done once the projects queried were listed after the set settled; else list them and query once more.
      if (lastError === undefined && projects.listedSince(stableSince + settleMs)) return runs;
      if (lastError === undefined && Date.now() < deadline) {
        confirm = true;
        continue;
      }
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
  if (runs.length === 0) {
    const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : projects.missing ? `; project "${projectName}" does not exist` : "";
    const where = options.client ? "through the given client" : `at ${process.env.LANGSMITH_ENDPOINT ?? "the default LangSmith endpoint"}`;
    throw new Error(`No runs of trace ${traceId} visible ${where} after ${timeoutMs} ms${reason}`);
  }
  return runs;
}
