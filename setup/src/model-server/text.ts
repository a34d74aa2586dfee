import { createHash } from "node:crypto";
import type { ChatMessage } from "./wire.js";

// One token per word or punctuation mark: simple enough to reproduce by hand
// when reading a trace, and stable across runs.
const TOKEN = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

export function countTokens(text: string): number {
  return text.match(TOKEN)?.length ?? 0;
}

/** The prefix of `text` holding at most `limit` tokens (trailing whitespace dropped). */
export function truncateToTokens(text: string, limit: number): string {
  let end = 0;
  let seen = 0;
  for (const match of text.matchAll(TOKEN)) {
    if (seen === limit) break;
    end = match.index + match[0].length;
    seen += 1;
  }
  return text.slice(0, end);
}

/**
 * Streaming pieces: each word carries the whitespace before it, so the pieces
 * concatenate back to exactly the input.
 */
export function streamPieces(text: string): string[] {
  if (text === "") return [];
  return text.split(/(?<=\S)(?=\s)/u);
}

export function messageText(message: Pick<ChatMessage, "content">): string {
  const { content } = message;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => (typeof part.text === "string" ? part.text : ""))
    .filter((text) => text !== "")
    .join("\n");
}

const STOPWORDS = new Set(
  (
    "a about above after again all also am an and any are as at be been being below between both but by can could " +
    "did do does doing done down each few for from further get gets got had has have having he her here hers him his " +
    "how i if in into is it its itself just let me more most my no nor not now of off on once one only or other our " +
    "ours out over own please same she should so some such than that the their theirs them then there these they this " +
    "those through to too under until up us very was we were what when where which while who whom why will with would " +
    "you your yours tool tools function use using used return returns given current value values input output thing " +
    "things something tell know want need like make give show find"
  ).split(" "),
);

function stem(word: string): string {
  if (word.length > 4 && word.endsWith("ies")) return `${word.slice(0, -3)}y`;
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss")) return word.slice(0, -1);
  return word;
}

/**
 * Longer runs of letters and digits are data (an encoded blob, a hash), not words. Without a
 * bound, matching words by shared prefix (choose.ts) cost the square of their length.
 */
const MAX_WORD_CHARS = 100;

/** Lower-cased, stemmed content words (stopwords removed), in order of appearance. */
export function keywords(text: string): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((word) => word.length <= MAX_WORD_CHARS && !STOPWORDS.has(word) && !/^\d+$/.test(word)).map(stem);
}

/** Keywords of an identifier such as `get_weather` or `lookupOrder`. */
export function identifierKeywords(name: string): string[] {
  return keywords(name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_\-.]+/g, " "));
}

export function hashHex(value: unknown, length = 24): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, length);
}

/** A deterministic index in [0, size) derived from `seed`. */
export function pickIndex(seed: string, size: number): number {
  return Number.parseInt(hashHex(seed, 8), 16) % size;
}

export function truncateWords(text: string, maxWords: number): string {
  const words = text.trim().split(/\s+/u);
  if (words.length <= maxWords) return text.trim();
  return `${words.slice(0, maxWords).join(" ")} ...`;
}
