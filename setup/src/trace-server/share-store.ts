// Public share tokens of traces, kept in the trace store's `shares` table.
// A token opens one trace to anyone who holds it: the public API routes
// (share.ts) and the viewer's read-only page at `/public/<token>/r` read
// through it. Usage:
//   const share = shareTrace(store, run);          // idempotent per trace
//   shareByToken(store, share.token)?.trace_id;    // what a public link may read
//   unshareTrace(store, run.trace_id);             // the link stops working
import { randomUUID } from "node:crypto";
import type { TraceStore } from "./store.js";
import { nowIso } from "./time.js";
import type { StoredRun } from "./types.js";

export interface TraceShare {
  token: string;
  trace_id: string;
  /** The run that was shared; LangSmith's public `GET /public/{token}/run` answers with it. */
  run_id: string;
  project_id: string;
  created_at: string;
}

/** A token given by the client that already opens another trace. */
export class ShareTokenTakenError extends Error {}

/**
 * Share the trace of `run`. LangSmith shares whole traces ("child runs share
 * their trace root"), so a trace has at most one token: sharing it again, from
 * any of its runs, returns the existing share. `token` is the one the v1 SDK
 * proposes (`shareRun` sends a fresh UUID); without it one is generated.
 */
export function shareTrace(store: TraceStore, run: Pick<StoredRun, "id" | "trace_id" | "session_id">, token?: string): TraceShare {
  const existing = shareOfTrace(store, run.trace_id);
  if (existing) return existing;
  const fresh = (token ?? randomUUID()).toLowerCase();
  if (shareByToken(store, fresh)) throw new ShareTokenTakenError(`share token ${fresh} already opens another trace`);
  store.db
    .prepare("INSERT INTO shares (token, trace_id, run_id, project_id, created_at) VALUES (?, ?, ?, ?, ?)")
    .run(fresh, run.trace_id, run.id, run.session_id, nowIso());
  return shareByToken(store, fresh) as TraceShare;
}

export function shareOfTrace(store: TraceStore, traceId: string): TraceShare | undefined {
  return store.db.prepare("SELECT * FROM shares WHERE trace_id = ?").get(traceId.toLowerCase()) as TraceShare | undefined;
}

export function shareByToken(store: TraceStore, token: string): TraceShare | undefined {
  return store.db.prepare("SELECT * FROM shares WHERE token = ?").get(token.toLowerCase()) as TraceShare | undefined;
}

/** Remove the trace's token, if it has one; the public link answers 404 afterwards. */
export function unshareTrace(store: TraceStore, traceId: string): boolean {
  return Number(store.db.prepare("DELETE FROM shares WHERE trace_id = ?").run(traceId.toLowerCase()).changes) > 0;
}

/** The runs a token opens: every stored run of its trace in its project, in execution order. */
export function sharedRuns(store: TraceStore, share: TraceShare, urlBase?: string): StoredRun[] {
  return store.getTraceRuns(share.trace_id, urlBase === undefined ? {} : { urlBase }).filter((r) => r.session_id === share.project_id);
}

/** The public page of a share, as the SDK's `shareRun` builds it (`<web url>/public/<token>/r`). */
export function shareUrl(base: string, token: string): string {
  return `${base}/public/${encodeURIComponent(token)}/r`;
}
