import { hashHex } from "./text.js";

/** A failure (or slowdown) applied to the next `times` completion requests (default 1). */
export type Fault =
  | { status: number; times?: number; retryAfterSeconds?: number | null; message?: string }
  | { hang: true; times?: number }
  | { dropMidStream: true; times?: number; afterChunks?: number }
  | { latencyMs: number; times?: number };

/** What one request will experience, after queued faults and request-side directives are combined. */
export interface RequestPlan {
  failure?: Exclude<Fault, { latencyMs: number }>;
  latencyMs?: number;
  tokenDelayMs?: number;
}

/** The header a client can set (e.g. through ChatOpenAI `configuration.defaultHeaders`) to carry directives. */
export const FAULT_HEADER = "x-local-fault";

/** Separates a model name from its directives: `gpt-4o-mini+fail-429x2+latency-200`. */
export const DIRECTIVE_SEPARATOR = "+";

/**
 * The longest delay, in ms. Node timers hold a signed 32-bit count: a longer one
 * fires after 1 ms with a TimeoutOverflowWarning, so `latency-3000000000` would
 * answer at once instead of hanging for 35 days.
 */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The longest `retry-after` a fault may ask for, in seconds: the longest delay Node can wait. A
 * client honours the header, so `retryAfterSeconds: 1e308` (sent as `retry-after: 1e+308`) would
 * stall it for good.
 */
export const MAX_RETRY_AFTER_SECONDS = Math.floor(MAX_DELAY_MS / 1000);

/** `ms`, when Node can wait that long; otherwise throws a RangeError naming `what`. */
export function checkDelay(ms: number, what: string): number {
  if (!(ms >= 0 && ms <= MAX_DELAY_MS)) throw new RangeError(`${what} must be between 0 and ${MAX_DELAY_MS} ms, got ${ms}`);
  return ms;
}

/** `seconds`, when it is a retry-after a client can honour; otherwise throws a RangeError. */
export function checkRetryAfter(seconds: number): number {
  if (!(seconds >= 0 && seconds <= MAX_RETRY_AFTER_SECONDS)) throw new RangeError(`retryAfterSeconds must be between 0 and ${MAX_RETRY_AFTER_SECONDS}, got ${seconds}`);
  return seconds;
}

interface Directive {
  fault?: Exclude<Fault, { latencyMs: number }>;
  latencyMs?: number;
  tokenDelayMs?: number;
  retryAfterSeconds?: number;
  cycle?: number;
}

/** The directive `token` stands for, or why it is refused. */
function parseDirective(token: string): Directive | { error: string } {
  const match = /^(fail-(\d{3})|hang|drop|latency-(\d+)|token-delay-(\d+)|retry-after-(\d+))(?:x(\d+))?$/.exec(token.trim());
  const unknown = { error: `Unknown local-model directive '${token}' (see docs/local-stack.md, "Model endpoint").` };
  if (!match) return unknown;
  const cycle = match[6] === undefined ? undefined : Number(match[6]);
  if (match[2] !== undefined) {
    const status = Number(match[2]);
    if (status < 400 || status > 599) return unknown;
    return { fault: { status }, cycle };
  }
  if (match[1] === "hang") return { fault: { hang: true }, cycle };
  if (match[1] === "drop") return { fault: { dropMidStream: true }, cycle };
  const delay = match[3] ?? match[4];
  if (delay !== undefined && Number(delay) > MAX_DELAY_MS) {
    return { error: `Local-model directive '${token}' asks for a delay over ${MAX_DELAY_MS} ms, the longest Node can wait.` };
  }
  if (match[5] !== undefined && Number(match[5]) > MAX_RETRY_AFTER_SECONDS) {
    return { error: `Local-model directive '${token}' asks for a retry-after over ${MAX_RETRY_AFTER_SECONDS} s, the longest Node can wait.` };
  }
  if (match[3] !== undefined) return { latencyMs: Number(match[3]) };
  if (match[4] !== undefined) return { tokenDelayMs: Number(match[4]) };
  return { retryAfterSeconds: Number(match[5]) };
}

export interface ParsedDirectives {
  directives: Directive[];
  /** The model name without directives. */
  baseModel: string;
}

/** Splits directives off a model name and a header value; an unknown or out-of-range directive is reported, not ignored. */
export function parseDirectives(model: string, header: string | undefined): ParsedDirectives | { error: string } {
  const [baseModel = "", ...fromModel] = model.split(DIRECTIVE_SEPARATOR);
  const fromHeader = (header ?? "").split(/[,+\s]+/).filter((token) => token !== "");
  const directives: Directive[] = [];
  for (const token of [...fromModel, ...fromHeader]) {
    const directive = parseDirective(token);
    if ("error" in directive) return directive;
    directives.push(directive);
  }
  return { directives, baseModel };
}

/**
 * Fault state of one server: faults queued through `inject()` or the control
 * route, and attempt counters for `xN` directives. A directive `fail-429x2`
 * fails the first two attempts of a conversation, lets the third through and
 * then starts over, so a client with retries succeeds every time it is run.
 */
export class FaultBook {
  private queue: { fault: Fault; remaining: number }[] = [];
  private attempts = new Map<string, number>();

  inject(fault: Fault): void {
    if ("latencyMs" in fault) checkDelay(fault.latencyMs, "latencyMs");
    if ("status" in fault && typeof fault.retryAfterSeconds === "number") checkRetryAfter(fault.retryAfterSeconds);
    const times = Math.max(1, Math.floor(fault.times ?? 1));
    this.queue.push({ fault, remaining: times });
  }

  clear(): void {
    this.queue = [];
    this.attempts.clear();
  }

  pending(): number {
    return this.queue.reduce((sum, entry) => sum + entry.remaining, 0);
  }

  /** Consumes one queued fault (if any) and the directives' counters for a request. */
  plan(directives: Directive[], conversationKey: unknown): RequestPlan {
    const plan: RequestPlan = {};
    let retryAfterSeconds: number | undefined;
    for (const directive of directives) {
      if (directive.latencyMs !== undefined) plan.latencyMs = directive.latencyMs;
      if (directive.tokenDelayMs !== undefined) plan.tokenDelayMs = directive.tokenDelayMs;
      if (directive.retryAfterSeconds !== undefined) retryAfterSeconds = directive.retryAfterSeconds;
    }
    const head = this.queue[0];
    if (head) {
      head.remaining -= 1;
      if (head.remaining <= 0) this.queue.shift();
      if ("latencyMs" in head.fault) plan.latencyMs = head.fault.latencyMs;
      else plan.failure = head.fault;
      return plan;
    }
    const failing = directives.find((directive) => directive.fault !== undefined);
    if (!failing?.fault) return plan;
    if (failing.cycle !== undefined) {
      const key = hashHex([conversationKey, failing.fault]);
      const seen = this.attempts.get(key) ?? 0;
      if (seen >= failing.cycle) {
        this.attempts.delete(key);
        return plan;
      }
      this.attempts.set(key, seen + 1);
    }
    plan.failure = "status" in failing.fault && retryAfterSeconds !== undefined ? { ...failing.fault, retryAfterSeconds } : failing.fault;
    return plan;
  }
}

/** Validates a fault received over HTTP (the control route). */
export function parseFault(value: unknown): Fault | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  const times = record.times;
  if (times !== undefined && (typeof times !== "number" || !Number.isInteger(times) || times < 1)) return undefined;
  const base = times === undefined ? {} : { times };
  if (typeof record.status === "number") {
    if (!Number.isInteger(record.status) || record.status < 400 || record.status > 599) return undefined;
    const retry = record.retryAfterSeconds;
    if (retry !== undefined && retry !== null && (typeof retry !== "number" || !(retry >= 0 && retry <= MAX_RETRY_AFTER_SECONDS))) return undefined;
    const message = typeof record.message === "string" ? { message: record.message } : {};
    return { ...base, status: record.status, ...(retry === undefined ? {} : { retryAfterSeconds: retry }), ...message };
  }
  if (record.hang === true) return { ...base, hang: true };
  if (record.dropMidStream === true) {
    const after = record.afterChunks;
    if (after !== undefined && (typeof after !== "number" || !Number.isInteger(after) || after < 0)) return undefined;
    return { ...base, dropMidStream: true, ...(after === undefined ? {} : { afterChunks: after }) };
  }
  if (typeof record.latencyMs === "number" && record.latencyMs >= 0 && record.latencyMs <= MAX_DELAY_MS) return { ...base, latencyMs: record.latencyMs };
  return undefined;
}
