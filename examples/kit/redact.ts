/**
 * Keeping secrets and personal data out of traces, client-side, before anything is sent.
 *
 *   const client = redactingClient();                              // LANGSMITH_* env as usual
 *   const client = redactingClient({ apiUrl }, { hideOutputs: true, rules: [...REDACTION_RULES, myRule] });
 *   app.use(langsmithTracing({ client }));                         // server runs, traceable children and LangChain runs under them
 *
 * Built on the SDK's own `createAnonymizer` (langsmith/anonymizer) and the Client's
 * `anonymizer` / `hideInputs` / `hideOutputs` options. What langsmith 0.12.0 covers
 * by itself, read in its client: the anonymizer is applied to inputs, outputs,
 * metadata and the error string; `new_token` events lose their `kwargs` (the
 * streamed tokens) whatever the options. What it does not cover, and this closes:
 *
 * - the other `events` (a LangChain chain's `text` events, custom `addEvent` data,
 *   a `new_token` event from an SDK that keeps its tokens) and `tags` are sent as
 *   they are: `redactRunFields(client)` runs them through the same rules on every
 *   create, update and batch;
 * - `hideInputs: fn` given next to `anonymizer` replaces it for inputs (the SDK
 *   picks `hideInputs ?? anonymizer`), so a custom filter silently turns
 *   redaction off; here the rules run after your filter.
 *
 * Per function, `traceable(fn, { processInputs, processOutputs })` shapes what a
 * run records before the client sees it (drop a field, keep a summary); the
 * rules here still apply afterwards.
 */
import { Client, type ClientConfig } from "langsmith";
import { DEFAULT_SECRET_RULES, createAnonymizer, type StringNodeRule } from "langsmith/anonymizer";

type KVMap = Record<string, unknown>;

/**
 * The kit's rules, applied in order to every string: emails, then the SDK's own secret rules
 * (provider key prefixes, JWTs, private keys, `Bearer ...`, `api_key=...`, passwords in URLs),
 * then opaque tokens. The kit's two patterns start only where a run of their characters starts
 * (the lookbehinds), so a long string costs one pass, not one pass per character.
 */
export const REDACTION_RULES: readonly StringNodeRule[] = [
  { pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, replace: "[email]" },
  ...DEFAULT_SECRET_RULES,
  // Anything long that mixes upper case, lower case and digits: random API keys of providers
  // the SDK's list does not know. Hex digests, UUIDs, dotted orders and words are left alone
  // (`-` and `.` end a token, so ids joined by them never add up to 32).
  { pattern: /(?<![A-Za-z0-9_])(?=[A-Za-z0-9_]*[0-9])(?=[A-Za-z0-9_]*[a-z])(?=[A-Za-z0-9_]*[A-Z])[A-Za-z0-9_]{32,}/g, replace: "[secret]" },
];

export interface RedactionOptions {
  /** Replaces the rule list. Default REDACTION_RULES; extend with `[...REDACTION_RULES, rule]`. */
  rules?: readonly StringNodeRule[];
  /** `true` drops inputs; a function filters them first, then the rules run on what it returns. */
  hideInputs?: boolean | ((inputs: KVMap) => KVMap);
  /** As hideInputs, for outputs. */
  hideOutputs?: boolean | ((outputs: KVMap) => KVMap);
  /** How deep the rules look into nested values. Default 24 (the SDK's createAnonymizer stops at 10). */
  maxDepth?: number;
}

/** A Client that redacts inputs, outputs, metadata, errors, events and tags before sending. */
export function redactingClient(config: ClientConfig = {}, options: RedactionOptions = {}): Client {
  const redact = createRedactor(options);
  const client = new Client({
    ...config,
    anonymizer: redact,
    hideInputs: hideThenRedact(options.hideInputs, redact),
    hideOutputs: hideThenRedact(options.hideOutputs, redact),
  });
  return redactRunFields(client, redact);
}

/** The rules as one function over any JSON-like value (a copy is returned; the input is not changed). */
export function createRedactor(options: Pick<RedactionOptions, "rules" | "maxDepth"> = {}): <T>(data: T) => T {
  const rules = [...(options.rules ?? REDACTION_RULES)];
  if (rules.length === 0) throw new RangeError("createRedactor: at least one rule is needed");
  return createAnonymizer(rules, { maxDepth: options.maxDepth ?? 24 });
}

/**
 * Makes `client` redact the run fields its own options never reach (`events`, `tags`) on
 * every path the SDK and LangChain write through: createRun and updateRun (RunTree's post
 * and patch), batchIngestRuns and multipartIngestRuns. Wraps the instance's methods, so it
 * also works on a Client subclass (a buffering or sampling client). Returns the same client.
 */
export function redactRunFields<C extends Client>(client: C, redact: <T>(data: T) => T = createRedactor()): C {
  const createRun = client.createRun.bind(client);
  const updateRun = client.updateRun.bind(client);
  const batchIngestRuns = client.batchIngestRuns.bind(client);
  const multipartIngestRuns = client.multipartIngestRuns.bind(client);
  const clean = <R extends object>(run: R): R => redactFields(run, redact);
  client.createRun = (run, options) => createRun(clean(run), options);
  client.updateRun = (runId, run, options) => updateRun(runId, clean(run), options);
  client.batchIngestRuns = (batch, options) =>
    batchIngestRuns({ runCreates: batch.runCreates?.map(clean), runUpdates: batch.runUpdates?.map(clean) }, options);
  client.multipartIngestRuns = (batch, options) =>
    multipartIngestRuns({ ...batch, runCreates: batch.runCreates?.map(clean), runUpdates: batch.runUpdates?.map(clean) }, options);
  return client;
}

/** RunTree sends both on create and update, though the SDK's CreateRunParams type lists neither. */
interface RunFields {
  events?: KVMap[];
  tags?: string[];
}

function redactFields<R extends object>(run: R, redact: <T>(data: T) => T): R {
  const { events, tags } = run as RunFields;
  if (events === undefined && tags === undefined) return run;
  const copy: RunFields = { ...run };
  if (events !== undefined) copy.events = redact(events);
  if (tags !== undefined) copy.tags = redact(tags);
  return copy as R;
}

function hideThenRedact(hide: RedactionOptions["hideInputs"], redact: <T>(data: T) => T): (values: KVMap) => KVMap {
  if (hide === true) return () => ({});
  if (typeof hide === "function") return (values) => redact(hide(values));
  return (values) => redact(values);
}
