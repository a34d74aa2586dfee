const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Normalize a run time to `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
 *
 * The SDK sends start times as ISO strings with microseconds (the last three
 * digits break ties between siblings) and end times as epoch milliseconds, so
 * both forms are accepted and microseconds are kept. A string without a zone
 * is UTC, as in LangSmith. Returns undefined for anything unparseable.
 */
export function normalizeTime(value: unknown): string | undefined {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return undefined;
    const ms = Math.floor(value);
    const micros = Math.round((value - ms) * 1000);
    return formatMicros(ms, micros);
  }
  if (typeof value !== "string") return undefined;
  const m = ISO_RE.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const fraction = frac.padEnd(6, "0");
  const wholeMs = Number(fraction.slice(0, 3));
  const micros = Number(fraction.slice(3, 6));
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), wholeMs);
  if (Number.isNaN(ms)) return undefined;
  // Date.UTC silently rolls over (Feb 30 -> Mar 2); reject instead of storing a different day.
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return undefined;
  }
  if (zone.toUpperCase() !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || "0");
    ms -= sign * offsetMin * 60_000;
  }
  return formatMicros(ms, micros);
}

function formatMicros(ms: number, micros: number): string | undefined {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return undefined;
  return `${date.toISOString().slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
}

/** `2025-01-02T03:04:05.123456Z` -> `20250102T030405123456Z`, the dotted_order timestamp form. */
export function dottedTimestamp(isoMicros: string): string {
  return isoMicros.replace(/[-:.]/g, "");
}

/** Milliseconds since the epoch of a normalized time. */
export function timeToMs(isoMicros: string): number {
  return Date.parse(isoMicros.slice(0, 23) + "Z");
}

export function nowIso(): string {
  return formatMicros(Date.now(), 0) ?? new Date().toISOString();
}
