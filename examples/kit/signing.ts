/**
 * Signed trace context: the rung between "trust the network" (mesh) and mTLS.
 * The sender adds an HMAC-SHA256, with a key every service of the mesh shares,
 * over `langsmith-trace`, the langsmith members of `baggage`, the sampling
 * decision (`x-langsmith-sampling`, when sent) and a timestamp;
 * the receiver continues the trace (and takes the tenant and other metadata
 * from baggage) only when that signature verifies and is recent.
 *
 *   // sender: tracedFetch / injectTraceHeaders add x-langsmith-context-signature
 *   await tracedFetch(url, init, { signingKey: process.env.TRACE_CONTEXT_KEY });
 *   // receiver: any adapter
 *   app.use(langsmithTracing({ trust: { signedBy: process.env.TRACE_CONTEXT_KEY } }));
 *
 * What it does not prevent: a signed context captured in transit can be
 * replayed unchanged, to any service holding the key, until it expires
 * (`maxAgeSeconds`); it adds runs under the same parent with the same
 * metadata, never another tenant's. It does not authenticate the request
 * itself (body, path, caller) nor hide the headers: use it with a check of who
 * is calling, and TLS where the network is not yours. Any service holding the
 * key can sign any context.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-langsmith-context-signature";

/** Default validity of a signature, in seconds; also the clock skew tolerated the other way. */
export const DEFAULT_MAX_AGE_SECONDS = 60;

/** Shorter keys are refused: a guessable key would make the signature decoration. */
export const MIN_KEY_BYTES = 32;

/** Why a signed-trust receiver did not continue a context. */
export type SignatureRejection = "signature-missing" | "signature-malformed" | "signature-invalid" | "signature-expired";

export const SIGNATURE_CAUSES: Readonly<Record<SignatureRejection, string>> = {
  "signature-missing": "trace context without a signature",
  "signature-malformed": "trace context with a signature header that is not v1,t=<seconds>,s=<hmac>",
  "signature-invalid": "trace context whose signature does not match (forged, altered, or signed with another key)",
  "signature-expired": "trace context whose signature is older than the limit (or dated in the future)",
};

/** The receiving side's policy: the shared key, and how old a signature may be. */
export interface SignedTrust {
  signedBy: string;
  maxAgeSeconds?: number;
}

/**
 * `v1,t=<unix seconds>,s=<base64url HMAC-SHA256>` for this trace header and
 * baggage. Only the baggage's langsmith members are covered, so a proxy that
 * adds its own vendor's members does not break the signature.
 */
export function signContext(trace: string, baggage: string | undefined, key: string, nowMs = Date.now(), sampling?: string): string {
  const t = Math.floor(nowMs / 1000);
  return `v1,t=${t},s=${mac(key, t, trace, baggage === undefined ? [] : [baggage], sampling === undefined ? [] : [sampling])}`;
}

/** Checks the signature the receiver got against the headers it got. Never throws on what the sender sent. */
export function verifyContext(
  headers: {
    trace: readonly string[] | undefined;
    baggage: readonly string[] | undefined;
    signature?: readonly string[] | undefined;
    /** `x-langsmith-sampling` (sampling.ts), covered when present. */
    sampling?: readonly string[] | undefined;
  },
  trust: SignedTrust,
  nowMs = Date.now(),
): { ok: true } | { ok: false; reason: SignatureRejection } {
  const values = headers.signature ?? [];
  if (values.length === 0) return { ok: false, reason: "signature-missing" };
  const match = values.length === 1 ? FORMAT.exec((values[0] ?? "").trim()) : null;
  if (match === null) return { ok: false, reason: "signature-malformed" };
  const t = Number(match[1]);
  const expected = Buffer.from(mac(trust.signedBy, t, (headers.trace ?? []).join(","), headers.baggage ?? [], headers.sampling ?? []));
  const presented = Buffer.from(match[2] as string);
  // Checked before the age, so an old forged signature is reported as forged.
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, reason: "signature-invalid" };
  const maxAge = trust.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  if (Math.abs(Math.floor(nowMs / 1000) - t) > maxAge) return { ok: false, reason: "signature-expired" };
  return { ok: true };
}

/** Throws at configuration time on a key too short to sign with, naming the variable that held it. */
export function assertSigningKey(key: string | undefined, name = "signing key"): asserts key is string {
  if (key === undefined || Buffer.byteLength(key, "utf8") < MIN_KEY_BYTES) {
    throw new Error(`${name} must be at least ${MIN_KEY_BYTES} bytes (e.g. openssl rand -hex 32)`);
  }
}

// base64url of 32 bytes is 43 characters; ten digits of seconds last until 2286.
const FORMAT = /^v1,t=(\d{1,10}),s=([A-Za-z0-9_-]{43})$/;

function mac(key: string, t: number, trace: string, baggage: readonly string[], sampling: readonly string[]): string {
  // A dropped request's context is the decision and the second alone: the same for every request
  // of that second, so its MAC is computed once per second, not on every hop of every dropped request.
  const dropped = trace === "" && baggage.length === 0 && sampling.length === 1 && sampling[0] === "drop";
  if (dropped && lastDrop?.key === key && lastDrop.t === t) return lastDrop.mac;
  // One field per line: none of them may contain a newline (header values cannot), so fields cannot be shifted into each other.
  // The sampling decision is a line only when sent, so contexts signed before it existed verify as they did.
  const decision = sampling.length > 0 ? `\n${sampling.join(",")}` : "";
  const value = createHmac("sha256", key).update(`v1\n${t}\n${trace}\n${langsmithMembers(baggage)}${decision}`).digest("base64url");
  if (dropped) lastDrop = { key, t, mac: value };
  return value;
}

let lastDrop: { key: string; t: number; mac: string } | undefined;

/** The langsmith members of baggage, trimmed, in order: what the kit reads; other vendors' members are neither read nor signed. */
function langsmithMembers(values: readonly string[]): string {
  return values
    .join(",")
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m.startsWith("langsmith-"))
    .join(",");
}
