/**
 * What the trace doctor is pointed at: a trace id (or a run id, resolved to its trace), a trace
 * viewer URL (`http://127.0.0.1:1984/traces/<id>`), a LangSmith run URL
 * (`https://smith.langchain.com/o/<org>/projects/p/<project>/r/<run>?trace_id=<trace>`), or a
 * share link (`…/public/<token>/r`, resolved through the SDK's public runs API).
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
  /** A share link's token: the trace is the one it shares. */
  shareToken?: string;
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
    const token = segments[1];
    if (token === undefined || !UUID.test(token)) throw new DoctorUsageError(`no share token in ${JSON.stringify(text)} (expected /public/<token>/r)`);
    return { id: token.toLowerCase(), isTrace: false, origin: url.origin, shareToken: token.toLowerCase() };
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
 * The trace id the target means: a known trace id as is; a share link's trace; otherwise the trace
 * of the run with that id if there is one (a run id copied from a page), else the id itself as a
 * trace id. Throws what the SDK throws when the backend cannot answer (an unknown share token: 404).
 */
export async function resolveTraceId(target: DoctorTarget, client: Client, projectIds: string[]): Promise<string> {
  if (target.isTrace) return target.id;
  if (target.shareToken !== undefined) {
    // Public: the token is the only credential this read needs; the trace is then read with the configured key.
    const { items } = await client.public.runs.query(target.shareToken, { selects: ["TRACE_ID"] });
    const traceId = items?.find((r) => r.trace_id)?.trace_id;
    if (!traceId) throw new Error(`share link ${target.shareToken} names no trace`);
    return traceId;
  }
  const scope = target.projectId && projectIds.includes(target.projectId) ? [target.projectId] : projectIds;
  return (await traceOfRun(client, scope, target.id)) ?? target.id;
}
