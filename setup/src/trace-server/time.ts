const CANONICAL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function calendarOk(iso: string): boolean {
  const year = Number(iso.slice(0, 4));
  const month = Number(iso.slice(5, 7));
  const day = Number(iso.slice(8, 10));
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return month >= 1 && month <= 12 && day >= 1 && day <= days && Number(iso.slice(11, 13)) < 24 && Number(iso.slice(14, 16)) < 60 && Number(iso.slice(17, 19)) < 60;
}

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
    // Rounded as a whole, so .9996 ms carries into the next millisecond rather than reading 1000 us.
    const totalMicros = Math.round(value * 1000);
    const ms = Math.floor(totalMicros / 1000);
    return formatMicros(ms, totalMicros - ms * 1000);
  }
  if (typeof value !== "string") return undefined;
  // What the SDK sends for start_time is already canonical; only the calendar needs checking.
  if (CANONICAL_RE.test(value) && calendarOk(value)) return value;
  const m = ISO_RE.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const fraction = frac.padEnd(6, "0");
  const wholeMs = Number(fraction.slice(0, 3));
  const micros = Number(fraction.slice(3, 6));
  const date = utcDate(Number(y), Number(mo) - 1, Number(d));
  // Date rolls over silently (Feb 30 -> Mar 2); reject instead of storing a different day.
  if (date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return undefined;
  }
  date.setUTCHours(Number(h), Number(mi), Number(s), wholeMs);
  let ms = date.getTime();
  if (zone.toUpperCase() !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || "0");
    ms -= sign * offsetMin * 60_000;
  }
  return formatMicros(ms, micros);
}

/** Midnight UTC of a day. Date.UTC reads years 0-99 as 1900-1999; setUTCFullYear takes them as given. */
function utcDate(year: number, monthIndex: number, day: number): Date {
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  return date;
}

function formatMicros(ms: number, micros: number): string | undefined {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return undefined;
  const iso = date.toISOString();
  // Years outside 0000-9999 come out as +/-YYYYYY, which no dotted_order timestamp can hold.
  if (iso.length !== 24) return undefined;
  return `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
}

/** `2025-01-02T03:04:05.123456Z` -> `20250102T030405123456Z`, the dotted_order timestamp form. */
export function dottedTimestamp(isoMicros: string): string {
  return isoMicros.replace(/[-:.]/g, "");
}

/** Milliseconds since the epoch of a normalized time. */
export function timeToMs(isoMicros: string): number {
  return Date.parse(isoMicros.slice(0, 23) + "Z");
}

/** Epoch milliseconds as a normalized time. */
export function msToIso(ms: number): string {
  return formatMicros(ms, 0) ?? new Date(ms).toISOString();
}

export function nowIso(): string {
  return msToIso(Date.now());
}
