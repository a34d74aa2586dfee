/**
 * The trace doctor's project scan: reads every trace with runs in a project since a time, diagnoses
 * each against the others (so split traces are found within the project), joins the fragments of a
 * split request to the trace they broke away from, and reports the project's health figures:
 * completeness and context-propagation success (docs/setup-utilities.md defines them per trace) over
 * all requests and per service, the findings by kind and the worst requests.
 *
 *   const health = await scanProject({ project: "default", sinceMs: 3_600_000 });
 *   console.log(formatProjectHealth(health));
 */
import { buildTraceTree, connectedTo } from "../traces/tree.js";
import { diagnoseTrace } from "./diagnose.js";
import { DoctorReadError, doctorClient, listProjectNames, queryTraceRuns, readRejections, type DoctorReadOptions } from "./source.js";
import type { DoctorOptions, DoctorRun, Finding, TraceDiagnosis } from "./types.js";

export interface ScanOptions extends DoctorReadOptions, DoctorOptions {
  /** The project, by name. */
  project: string;
  /** How far back to look. */
  sinceMs: number;
  /** At most this many traces are read (the newest). Default 200. */
  limit?: number;
  /** How many of the worst requests to list. Default 5. */
  worst?: number;
}

export interface ServiceHealth {
  service: string;
  runs: number;
  completeRuns: number;
  /** % of the service's runs that are connected to their request's root and ended. */
  completeness: number;
  /** Requests the service took part in. */
  requests: number;
  /** Requests in which some run of the service is connected to the root. */
  connectedRequests: number;
  propagation: number;
}

/** One request: a trace plus the fragments that split off it. */
export interface RequestHealth {
  traceId: string;
  rootName: string | undefined;
  /** Traces that are parts of this request (a split service's new roots). */
  fragments: string[];
  runs: number;
  completeRuns: number;
  completeness: number;
  services: string[];
  connectedServices: string[];
  propagation: number | null;
  problems: Finding[];
}

export interface ProjectHealth {
  project: string;
  since: string;
  /** Traces read (fragments included). */
  traces: number;
  requests: number;
  runs: number;
  completeRuns: number;
  /** 100 × complete runs ÷ runs, over every request. */
  completeness: number;
  /** (request, service) pairs, and those where the service is connected to the request's root. */
  serviceAppearances: number;
  connectedAppearances: number;
  /** 100 × connected appearances ÷ appearances; null when no run names a service. */
  propagation: number | null;
  completeRequests: number;
  fullyPropagatedRequests: number;
  services: ServiceHealth[];
  findingsByKind: Record<string, number>;
  worst: RequestHealth[];
  diagnoses: TraceDiagnosis[];
  healthy: boolean;
}

/** The project's health over the traces with runs in it since `sinceMs` ago. Throws DoctorReadError when it cannot be read. */
export async function scanProject(options: ScanOptions): Promise<ProjectHealth> {
  const { apiUrl, apiKey, client } = doctorClient(options);
  const now = options.now ?? Date.now();
  const projectNames = await listProjectNames(client, apiUrl);
  const projectId = [...projectNames].find(([, name]) => name === options.project)?.[0];
  if (projectId === undefined) throw new DoctorReadError(`project "${options.project}" not found at ${apiUrl}`);
  const since = new Date(now - options.sinceMs).toISOString();
  const limit = options.limit ?? 200;
  const traceIds: string[] = [];
  const allProjects = [...projectNames.keys()];
  const traces = new Map<string, DoctorRun[]>();
  try {
    for await (const item of client.runs.query({ project_ids: [projectId], min_start_time: since, max_start_time: new Date(now + 3_600_000).toISOString(), selects: ["TRACE_ID"] })) {
      if (item.trace_id && !traceIds.includes(item.trace_id)) traceIds.push(item.trace_id);
      if (traceIds.length >= limit) break;
    }
    for (const id of traceIds) traces.set(id, await queryTraceRuns(client, allProjects, id, now));
  } catch (error) {
    throw error instanceof DoctorReadError ? error : new DoctorReadError(`could not read project "${options.project}" at ${apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
  }

  const diagnoses: TraceDiagnosis[] = [];
  for (const [traceId, runs] of traces) {
    const missing = [...new Set(runs.flatMap((r) => (r.parent_run_id && !runs.some((p) => p.id === r.parent_run_id) ? [r.parent_run_id] : [])))];
    const rejections = await readRejections(apiUrl, apiKey, traceId, missing).catch(() => undefined);
    const related = [...traces].filter(([id]) => id !== traceId).map(([id, r]) => ({ traceId: id, runs: r }));
    diagnoses.push(diagnoseTrace({ traceId, runs, rejections, related, projectNames }, { ...options, now }));
  }

  // Follow each fragment to the trace it ultimately split from.
  const parentOf = new Map(diagnoses.flatMap((d) => {
    const origin = originOf(d);
    return origin && traces.has(origin) ? [[d.traceId, origin] as const] : [];
  }));
  const originFor = (id: string): string => {
    const seen = new Set<string>();
    let current = id;
    while (parentOf.has(current) && !seen.has(current)) {
      seen.add(current);
      current = parentOf.get(current) as string;
    }
    return current;
  };
  const groups = new Map<string, string[]>();
  for (const id of traces.keys()) groups.set(originFor(id), [...(groups.get(originFor(id)) ?? []), id]);

  const requests: RequestHealth[] = [];
  const perService = new Map<string, ServiceHealth>();
  const serviceRow = (s: string): ServiceHealth => {
    const row = perService.get(s) ?? { service: s, runs: 0, completeRuns: 0, completeness: 0, requests: 0, connectedRequests: 0, propagation: 0 };
    perService.set(s, row);
    return row;
  };
  for (const [origin, members] of groups) {
    const runs = members.flatMap((id) => traces.get(id) ?? []);
    const tree = buildTraceTree(runs);
    const root = tree.roots.find((r) => r.run.id === origin) ?? tree.roots.find((r) => r.run.trace_id === origin) ?? tree.roots[0];
    const connected = connectedTo(root);
    const seen = new Set<string>();
    const linked = new Set<string>();
    let complete = 0;
    for (const node of tree.nodes.values()) {
      const done = connected.has(node.run.id) && node.endMs !== undefined;
      if (done) complete++;
      if (!node.service) continue;
      const row = serviceRow(node.service);
      row.runs++;
      if (done) row.completeRuns++;
      seen.add(node.service);
      if (connected.has(node.run.id)) linked.add(node.service);
    }
    for (const s of seen) {
      const row = serviceRow(s);
      row.requests++;
      if (linked.has(s)) row.connectedRequests++;
    }
    requests.push({
      traceId: origin,
      rootName: root?.run.name,
      fragments: members.filter((m) => m !== origin),
      runs: tree.nodes.size,
      completeRuns: complete,
      completeness: pct(complete, tree.nodes.size),
      services: [...seen].sort(),
      connectedServices: [...linked].sort(),
      propagation: seen.size === 0 ? null : pct(linked.size, seen.size),
      problems: diagnoses.filter((d) => members.includes(d.traceId)).flatMap((d) => d.findings.filter((f) => f.severity === "problem")),
    });
  }
  for (const row of perService.values()) {
    row.completeness = pct(row.completeRuns, row.runs);
    row.propagation = pct(row.connectedRequests, row.requests);
  }
  const sum = (f: (r: RequestHealth) => number): number => requests.reduce((n, r) => n + f(r), 0);
  const appearances = sum((r) => r.services.length);
  const connectedAppearances = sum((r) => r.connectedServices.length);
  const findingsByKind: Record<string, number> = {};
  for (const d of diagnoses) for (const f of d.findings) if (f.severity === "problem") findingsByKind[f.kind] = (findingsByKind[f.kind] ?? 0) + 1;
  const worst = requests
    .filter((r) => r.completeness < 100 || (r.propagation ?? 100) < 100 || r.problems.length > 0)
    .sort((a, b) => a.completeness - b.completeness || (a.propagation ?? 100) - (b.propagation ?? 100) || b.problems.length - a.problems.length)
    .slice(0, options.worst ?? 5);
  return {
    project: options.project,
    since,
    traces: traces.size,
    requests: requests.length,
    runs: sum((r) => r.runs),
    completeRuns: sum((r) => r.completeRuns),
    completeness: pct(sum((r) => r.completeRuns), sum((r) => r.runs)),
    serviceAppearances: appearances,
    connectedAppearances,
    propagation: appearances === 0 ? null : pct(connectedAppearances, appearances),
    completeRequests: requests.filter((r) => r.runs > 0 && r.completeRuns === r.runs).length,
    fullyPropagatedRequests: requests.filter((r) => r.propagation === 100).length,
    services: [...perService.values()].sort((a, b) => a.service.localeCompare(b.service)),
    findingsByKind,
    worst,
    diagnoses,
    healthy: diagnoses.every((d) => d.healthy),
  };
}

function pct(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10;
}

/** `30s`, `15m`, `1h`, `2d` or a plain number of milliseconds; undefined when it is none of these. */
export function parseSince(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "ms") as "ms" | "s" | "m" | "h" | "d"];
  const ms = Number(m[1]) * unit;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** The trace a fragment split off from, when its diagnosis says so (a split or lost-context finding pointing upstream). */
function originOf(d: TraceDiagnosis): string | undefined {
  const f = d.findings.find((x) => (x.kind === "split" || x.kind === "flat") && x.severity === "problem" && x.evidence.direction === "downstream");
  return f?.relatedTraces[0];
}

