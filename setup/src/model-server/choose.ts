import { identifierKeywords, keywords, pickIndex } from "./text.js";

export interface Option {
  label: string;
  description?: string;
}

// Words that point at labels common in routing and classification demos, so a
// bare label list ("billing, technical, general") still routes sensibly.
const RELATED: Record<string, string[]> = {
  billing: ["invoice", "charge", "charged", "refund", "payment", "pay", "price", "subscription", "bill", "card", "money", "cost"],
  technical: ["error", "bug", "crash", "install", "login", "password", "api", "broken", "fail", "failing", "timeout", "code", "exception"],
  tech: ["error", "bug", "crash", "install", "login", "password", "api", "broken", "fail", "failing", "timeout", "code", "exception"],
  support: ["help", "issue", "problem", "broken", "error"],
  sales: ["buy", "purchase", "pricing", "quote", "demo", "plan", "upgrade", "discount"],
  account: ["login", "password", "profile", "email", "username", "sign"],
  shipping: ["delivery", "package", "track", "tracking", "arrive", "order", "shipment"],
  weather: ["rain", "sunny", "temperature", "forecast", "snow", "wind", "cold", "hot"],
  math: ["calculate", "sum", "add", "multiply", "divide", "plus", "minus", "times", "equation", "number"],
  research: ["search", "find", "look", "lookup", "source", "paper", "article", "information"],
  search: ["find", "look", "lookup", "information", "latest", "news"],
  code: ["function", "bug", "program", "script", "typescript", "javascript", "python", "compile"],
  coding: ["function", "bug", "program", "script", "typescript", "javascript", "python", "compile"],
  positive: ["love", "great", "good", "excellent", "happy", "amazing", "awesome", "like", "thanks", "wonderful", "best"],
  negative: ["hate", "bad", "terrible", "awful", "angry", "broken", "worst", "poor", "disappointed", "slow", "wrong"],
  greeting: ["hello", "hi", "hey", "morning", "evening"],
};

// Options a router would fall back to when nothing in the input matches.
const FALLBACK_LABELS = /^(other|others|general|default|fallback|unknown|none|misc|miscellaneous|chat|smalltalk)$/i;

/** How many of `candidates` occur in `words` (long words also match by shared prefix: bill/billing). */
export function overlap(candidates: string[], words: Set<string>): number {
  let score = 0;
  for (const candidate of new Set(candidates)) {
    if (words.has(candidate)) score += 1;
    else if (candidate.length >= 5 && sharesPrefix(candidate, words)) score += 1;
  }
  return score;
}

/** The words of 5 or more characters of a set, sorted, built once per set (a request scores every tool against one). */
const longWordsOf = new WeakMap<Set<string>, string[]>();

/**
 * Whether a word of 5 or more characters starts with `candidate` or is the start of it. Looked up
 * rather than compared with every word: that was words times candidates, so naming thousands of
 * tools cost their square.
 */
function sharesPrefix(candidate: string, words: Set<string>): boolean {
  for (let length = 5; length < candidate.length; length += 1) if (words.has(candidate.slice(0, length))) return true;
  let sorted = longWordsOf.get(words);
  if (!sorted) {
    sorted = [...words].filter((word) => word.length >= 5).sort();
    longWordsOf.set(words, sorted);
  }
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) < candidate) low = middle + 1;
    else high = middle;
  }
  return sorted[low]?.startsWith(candidate) ?? false;
}

/**
 * Deterministic choice among labelled options: the option whose label (weight 3),
 * related words of a common label (weight 2) and description (weight 1) share
 * the most keywords with `text`; ties go to the
 * earlier option. With no overlap at all, a fallback-looking label ("other",
 * "general", ...) wins, else a hash of the text picks one, so the same input
 * always lands on the same option.
 */
export function chooseOption(options: readonly Option[], text: string): number {
  const words = new Set(keywords(text));
  let best = -1;
  let bestScore = 0;
  options.forEach((option, index) => {
    const labelWords = identifierKeywords(option.label);
    const related = labelWords.flatMap((word) => RELATED[word] ?? []);
    const score = 3 * overlap(labelWords, words) + 2 * overlap(related, words) + overlap(keywords(option.description ?? ""), words);
    if (score > bestScore) {
      best = index;
      bestScore = score;
    }
  });
  if (best >= 0) return best;
  const fallback = options.findIndex((option) => FALLBACK_LABELS.test(option.label.trim()));
  if (fallback >= 0) return fallback;
  return pickIndex(text, options.length);
}
