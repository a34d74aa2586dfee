/**
 * Did any other request's work end up in this trace? The structural checks
 * (one root, no orphans, one trace id) cannot tell: a run that leaked from
 * request B into request A's tree is perfectly well connected. What can tell is
 * the data: give each request an id, pass it as an input to the steps that do
 * its work, and look for runs in A's trace that carry B's id.
 */
export interface RunLike {
  id: string;
  name: string;
  inputs?: Record<string, unknown> | null;
}

export interface IsolationReport {
  ok: boolean;
  requestId: string;
  /** Runs that carry this request's id. */
  own: number;
  /** Runs that carry another request's id: work that leaked into this trace. */
  foreign: Array<{ id: string; name: string; requestId: string }>;
}

/** The id a run was given as input `key` (a top-level input, as traceable records a single object argument). */
function carried(run: RunLike, key: string): string | undefined {
  const value = run.inputs?.[key];
  return typeof value === "string" ? value : undefined;
}

export function checkIsolation(runs: readonly RunLike[], requestId: string, key = "request_id"): IsolationReport {
  let own = 0;
  const foreign: IsolationReport["foreign"] = [];
  for (const run of runs) {
    const id = carried(run, key);
    if (id === undefined) continue;
    if (id === requestId) own++;
    else foreign.push({ id: run.id, name: run.name, requestId: id });
  }
  return { ok: foreign.length === 0 && own > 0, requestId, own, foreign };
}

export function formatIsolation(report: IsolationReport): string {
  const head = `isolation of ${report.requestId}: ${report.ok ? "OK" : "FAILED"} (${report.own} own runs, ${report.foreign.length} from other requests)`;
  const own = report.own === 0 ? ["  - no run carries this request's id: its work is in another trace"] : [];
  const leaks = report.foreign.map((f) => `  - "${f.name}" (…${f.id.slice(-8)}) belongs to request ${f.requestId}`);
  return [head, ...own, ...leaks].join("\n");
}
