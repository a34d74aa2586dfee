/**
 * The baggage a service sends on (propagator.ts's injectTraceHeaders): other
 * vendors' members kept, the SDK's langsmith members without this service's
 * `LANGSMITH_SERVICE` label, all of it within the 8 KiB a receiver accepts.
 *
 *   const baggage = outboundBaggage(foreignMembers, run.toHeaders().baggage, warn);
 */
import { DEFAULT_LIMITS } from "./headers.js";
import type { Warn } from "./propagator.js";

/** Joined baggage members: `foreign` first, then the SDK's; trimmed in OUTBOUND_DROP_ORDER (one warning) if over the limit. */
export function outboundBaggage(foreign: readonly string[], sdkBaggage: string, warn: Warn): string {
  return fitBaggage([...foreign, ...outboundMembers(sdkBaggage)], warn);
}

/** The SDK's baggage members without this service's name, which must describe the receiver's runs, not the sender's. */
function outboundMembers(sdkBaggage: string): string[] {
  return sdkBaggage
    .split(",")
    .filter((m) => m.length > 0)
    .map((member) => {
      if (!member.startsWith("langsmith-metadata=")) return member;
      // The SDK wrote this member itself, so it decodes and parses.
      const metadata = JSON.parse(decodeURIComponent(member.slice("langsmith-metadata=".length))) as Record<string, unknown>;
      const kept = Object.fromEntries(Object.entries(metadata).filter(([k]) => k !== "LANGSMITH_SERVICE"));
      return Object.keys(kept).length > 0 ? `langsmith-metadata=${encodeURIComponent(JSON.stringify(kept))}` : "";
    })
    .filter((m) => m.length > 0);
}

// A receiver rejects the whole context when the baggage header is over its
// limit, and then starts a new trace: a connected tree is worth more than any
// member. Our own metadata goes first, then our tags; other vendors' members,
// which are not ours to lose, only if that is not enough.
const FOREIGN = "other vendors' members";
const OUTBOUND_DROP_ORDER = ["langsmith-metadata", "langsmith-tags", FOREIGN, "the rest of the baggage"] as const;

function dropGroup(member: string): (typeof OUTBOUND_DROP_ORDER)[number] | undefined {
  if (!member.startsWith("langsmith-")) return FOREIGN;
  const key = member.slice(0, member.indexOf("="));
  return key === "langsmith-metadata" || key === "langsmith-tags" ? key : undefined;
}

/** The merged baggage members, dropped in OUTBOUND_DROP_ORDER until they fit in what a receiver accepts. */
function fitBaggage(members: readonly string[], warn: Warn): string {
  let kept = members;
  const dropped: string[] = [];
  for (const group of OUTBOUND_DROP_ORDER) {
    if (Buffer.byteLength(kept.join(","), "utf8") <= DEFAULT_LIMITS.maxBaggageBytes) break;
    const before = kept.length;
    kept = group === "the rest of the baggage" ? [] : kept.filter((m) => dropGroup(m) !== group);
    if (kept.length < before) dropped.push(group);
  }
  if (dropped.length > 0) {
    warn(
      "outbound-baggage-too-large",
      `Outbound baggage was over ${DEFAULT_LIMITS.maxBaggageBytes} bytes, which receivers reject; dropped ${dropped.join(", then ")} to fit. The trace header was still sent.`,
    );
  }
  return kept.join(",");
}
