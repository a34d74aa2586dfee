/**
 * What the trace doctor is pointed at: a trace id (or a run id, resolved to its trace), a trace
 * viewer URL (`http://127.0.0.1:1984/traces/<id>`), or a LangSmith run URL
 * (`https://smith.langchain.com/o/<org>/projects/p/<project>/r/<run>?trace_id=<trace>`).
 *
 *   const target = parseTarget(argv[0]);                       // throws DoctorUsageError
 *   const traceId = await resolveTraceId(target, client, projectIds);
 */
import type { Client } from "langsmith";
import { traceOfRun } from "./source.js";

/** Bad arguments: the CLI's exit code 2. */
export class DoctorUsageError extends Error {}

export interface DoctorTarget {
  /** A UUID that is the trace id, or a run id to resolve (a bare id could be either). */
  id: string;
  /** True when the id is known to be a trace id (a viewer URL, LangSmith's trace_id parameter). */
  isTrace: boolean;
  /** The LangSmith project named in the URL, when there is one. */
  projectId?: string;
  /** The origin of a URL target, to compare with the endpoint the configuration reads from. */
  origin?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidAfter(segments: string[], marker: string): string | undefined {
  const i = segments.indexOf(marker);
  const value = i >= 0 ? segments[i + 1] : undefined;
  return value !== undefined && UUID.test(value) ? value.toLowerCase() : undefined;
}

export function parseTarget(text: string): DoctorTarget {
  const value = text.trim();
  if (UUID.test(value)) return { id: value.toLowerCase(), isTrace: false };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DoctorUsageError(`not a trace id or a trace URL: ${JSON.stringify(text)} (expected a UUID, http://127.0.0.1:1984/traces/<id> or a LangSmith run URL)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new DoctorUsageError(`not an http(s) URL: ${JSON.stringify(text)}`);
  const segments = url.pathname.split("/").filter((s) => s.length > 0).map((s) => decodeURIComponent(s));
  if (segments[0] === "public") {
    throw new DoctorUsageError("a public share link cannot be read through the API: open it in LangSmith and pass the trace id, or the run's URL from its project");
  }
  const projectId = uuidAfter(segments, "p");
  const fromViewer = uuidAfter(segments, "traces");
  const traceParam = url.searchParams.get("trace_id") ?? url.searchParams.get("peeked_trace");
  const runId = uuidAfter(segments, "r") ?? url.searchParams.get("peek") ?? undefined;
  const base = { origin: url.origin, ...(projectId ? { projectId } : {}) };
  if (fromViewer) return { id: fromViewer, isTrace: true, ...base };
  if (traceParam && UUID.test(traceParam)) return { id: traceParam.toLowerCase(), isTrace: true, ...base };
  if (runId && UUID.test(runId)) return { id: runId.toLowerCase(), isTrace: false, ...base };
  throw new DoctorUsageError(`no trace or run id in ${JSON.stringify(text)} (expected /traces/<id>, ?trace_id=<id> or /r/<run id>)`);
}

/**
 * The trace id the target means: a known trace id as is; otherwise the trace of the run with that
 * id if there is one (a run id copied from a page), else the id itself as a trace id.
 */
export async function resolveTraceId(target: DoctorTarget, client: Client, projectIds: string[]): Promise<string> {
  if (target.isTrace) return target.id;
  const scope = target.projectId && projectIds.includes(target.projectId) ? [target.projectId] : projectIds;
  return (await traceOfRun(client, scope, target.id)) ?? target.id;
}
