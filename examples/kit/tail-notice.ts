/**
 * What the services of a tail trace tell each other (tail.ts holds the runs):
 * the headers of an answer (`x-langsmith-keep`, or `x-langsmith-tail: held`
 * plus `x-langsmith-tail-participants`), reading them from a callee's answer,
 * and the root's keep notices, `POST /.well-known/langsmith-tail`, signed with
 * the sampler's `signingKey`. Used by TailBuffer; nothing to configure here.
 *
 *   const headers = tailAnswerHeaders(keep, participants);          // for this service's caller
 *   const { held, listed, kept } = readTailAnswer(url, response.headers);
 *   await sendKeepNotices(body, participants, signingKey, (accepted) => count(accepted));
 */
import { signContext } from "./signing.js";

export const KEEP_HEADER = "x-langsmith-keep";
export const TAIL_HEADER = "x-langsmith-tail";
export const PARTICIPANTS_HEADER = "x-langsmith-tail-participants";
/** Where a service that holds runs learns that the root kept the trace. */
export const TAIL_ROUTE = "/.well-known/langsmith-tail";
/** Services remembered per trace; a longer list in a callee's answer is cut there. */
export const MAX_PARTICIPANTS = 32;

/** Response headers for the caller: keep (with the reason), or held; plus who else holds. */
export function tailAnswerHeaders(keep: string | undefined, participants: ReadonlySet<string>): Record<string, string> {
  const headers: Record<string, string> = keep !== undefined ? { [KEEP_HEADER]: keep } : { [TAIL_HEADER]: "held" };
  if (participants.size > 0) headers[PARTICIPANTS_HEADER] = [...participants].join(", ");
  return headers;
}

/** A callee's answer: its origin if it still holds runs, the holders it listed below it, and whether it kept. */
export function readTailAnswer(url: string, headers: Headers): { held: string | undefined; listed: string[]; kept: boolean } {
  const origin = originOf(url);
  const listed: string[] = [];
  for (const value of (headers.get(PARTICIPANTS_HEADER) ?? "").split(",")) {
    const participant = originOf(value.trim());
    if (participant !== undefined) listed.push(participant);
  }
  return { held: headers.get(TAIL_HEADER) === "held" ? origin : undefined, listed, kept: headers.get(KEEP_HEADER) !== null };
}

/** POSTs `body` to TAIL_ROUTE at each participant, signed when a key is given; `done(accepted)` as each answers. Never throws. */
export async function sendKeepNotices(body: string, participants: Iterable<string>, signingKey: string | undefined, done: (accepted: boolean) => void): Promise<void> {
  await Promise.all(
    [...participants].map(async (origin) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (signingKey !== undefined) headers["x-langsmith-context-signature"] = signContext(body, undefined, signingKey);
      try {
        const response = await fetch(new URL(TAIL_ROUTE, origin), { method: "POST", headers, body, signal: AbortSignal.timeout(5_000) });
        await response.body?.cancel();
        done(response.ok);
      } catch {
        done(false);
      }
    }),
  );
}

/** An http(s) origin, or undefined: only our own services' answers are read, but a bad value must not become a request. */
function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}
