/**
 * The trace doctor's input for many traces already read together (the requests of a load test, as
 * the notebooks' expectIsolated reads them): what readDoctorInput gathers per trace, read once for
 * the batch. Every other trace of the batch is a related trace, read whole, as are (up to
 * maxFullReads) the other traces that overlap the batch in time; the roots of the rest of the time
 * window are related too. Rejections are looked up per trace.
 *
 *   const inputs = await readDoctorBatch(new Map(traceIds.map((id, i) => [id, runs[i]])), { client });
 *   const diagnoses = inputs.map((input) => diagnoseTrace(input));
 */
import type { Run } from "langsmith";
import { runFromV2 } from "../traces/read.js";
import { toMs } from "../traces/tree.js";
import { metaText } from "./context.js";
import {
  DoctorReadError,
  ROOT_SELECTS,
  doctorClient,
  fetchRejections,
  isLocalTraceServer,
  listProjectNames,
  queryTraceRuns,
  rejectionsOf,
  rootWindow,
  type DoctorReadOptions,
} from "./source.js";
import type { DiagnoseInput, DoctorRejection, RelatedTrace } from "./types.js";

/** One DiagnoseInput per trace of `traces` (trace id to its runs), in the map's order. */
export async function readDoctorBatch(traces: ReadonlyMap<string, Run[]>, options: DoctorReadOptions = {}): Promise<Array<DiagnoseInput & { source: string }>> {
  const { apiUrl, apiKey, client } = doctorClient(options);
  const projectNames = await listProjectNames(client, apiUrl);
  const projectIds = [...projectNames.keys()];
  const { windowMs = 60_000, maxRelated = 200, maxFullReads = 25 } = options;
  const now = Date.now();
  try {
    const local = await isLocalTraceServer(apiUrl, apiKey);
    const claimed = local ? await fetchRejections(apiUrl, apiKey, { rule: "child_trace_id" }) : [];
    const whole = new Map<string, Run[]>(traces);
    const window = rootWindow([...traces.values()].flat(), now);
    const roots = new Map<string, Run>();
    if (window && projectIds.length > 0) {
      for await (const item of client.runs.query({
        project_ids: projectIds,
        is_root: true,
        selects: ROOT_SELECTS,
        min_start_time: new Date(window.start - windowMs).toISOString(),
        max_start_time: new Date(window.end + 5000).toISOString(),
      })) {
        const run = runFromV2(item);
        if (run.trace_id && !traces.has(run.trace_id)) roots.set(run.trace_id, run);
        if (roots.size >= maxRelated) break;
      }
      const overlapping = [...roots.values()]
        .filter((r) => (toMs(r.start_time) ?? Number.NaN) <= window.end + 5000 && (toMs(r.end_time) ?? now) >= window.start - 5000)
        .slice(0, maxFullReads);
      for (const r of overlapping) whole.set(r.trace_id as string, await queryTraceRuns(client, projectIds, r.trace_id as string, now));
    }
    const inputs: Array<DiagnoseInput & { source: string }> = [];
    for (const [traceId, runs] of traces) {
      const related = new Map<string, RelatedTrace>();
      for (const [id, root] of roots) related.set(id, { traceId: id, runs: [root] });
      for (const [id, other] of whole) if (id !== traceId) related.set(id, { traceId: id, runs: other });
      const root = runs.find((r) => r.id === traceId) ?? runs.find((r) => !r.parent_run_id);
      const caller = root ? metaText(root, "untrusted_parent_trace_id") : undefined;
      if (caller && !related.has(caller)) {
        const callerRuns = await queryTraceRuns(client, projectIds, caller, now);
        if (callerRuns.length > 0) related.set(caller, { traceId: caller, runs: callerRuns });
      }
      const missingParents = [...new Set(runs.flatMap((r) => (r.parent_run_id && !runs.some((p) => p.id === r.parent_run_id) ? [r.parent_run_id] : [])))];
      const rejections: DoctorRejection[] | undefined = local ? await rejectionsOf(apiUrl, apiKey, traceId, missingParents, claimed) : undefined;
      inputs.push({ traceId, runs, rejections, related: [...related.values()], projectNames, source: apiUrl });
    }
    return inputs;
  } catch (error) {
    throw error instanceof DoctorReadError ? error : new DoctorReadError(`could not read at ${apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
