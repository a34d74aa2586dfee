import { createHash, type Hash } from "node:crypto";
import { chooseOption, overlap, type Option } from "./choose.js";
import { FillBudget, SchemaTooLargeError, valueForSchema } from "./schema-fill.js";
import { countTokens, identifierKeywords, keywords, messageText, truncateToTokens, truncateWords } from "./text.js";
import type { ChatCompletionRequest, ChatMessage, ChatTool, ChatToolCall, FinishReason, JsonSchema } from "./wire.js";

// The "model": a pure function from a chat request to a reply. Everything here
// is deterministic so traces, notebooks and tests reproduce run after run.

export const REPLY_PREFIX = "[local-model]";

/**
 * Characters of text one request may generate over all its choices. A real model stops at its
 * output tokens (16,384 for gpt-4o-mini, about 64 KB per choice). Prose here repeats parts of
 * the request, so without a bound tool results echoed into 128 choices (as JSON, each a copy)
 * came to gigabytes. Tool-call arguments and JSON-schema replies have the same bound in
 * FillBudget (MAX_FILL_CHARS).
 */
export const MAX_REPLY_CHARS = 1_000_000;

export class ReplyTooLargeError extends Error {}

export type Reply =
  | { kind: "text"; content: string; finishReason: Exclude<FinishReason, "tool_calls"> }
  | { kind: "tool_calls"; calls: ChatToolCall[] };

const CHOICE_INSTRUCTION =
  /\b(?:choose|pick|select|classify|categori[sz]e|route|decide|determine)\b|\bone of\b|\b(?:respond|reply|answer|output|return)\s+(?:with\s+)?(?:only|just|exactly)\b/i;
const INLINE_OPTIONS =
  /(?:\bone of|\bamong|\bfrom|\bbetween|\boptions?(?: are)?|\blabels?(?: are)?|\bcategories(?: are)?|\bchoices(?: are)?)\s*(?:the\s+(?:following\s+)?[\w-]*\s*)?:?\s*[[(]?([^\n.;!?\])]+)/gi;
// Every pattern here runs on whatever a client sends, so none may backtrack over a long input:
// no quantified whitespace before or after another quantifier that matches it too (a bullet's
// `^\s*` ran across every following line, `\s*,\s*` split 200,000 spaces in 26 s), and no lazy
// `(.+?)` before a `\s*` that re-scans the rest of the line.
const BULLET = /^[ \t]*(?:[-*\u2022]|\d+[.)])[ \t]+(.+)$/gm;
const LABEL_SEPARATOR = /,|\||\bor\b|\band\b/i;
const BULLET_SEPARATOR = /:|\s[-\u2013\u2014]\s/;
const QUOTED = /(["'`])([^"'`\n]{1,40})\1/g;
const SUMMARY_REQUEST = /\bsummar(?:y|ies|ise|ize|ized|ised)\b|\btl;?dr\b/i;
const LABEL_QUOTES = new Set(["`", '"', "'", "*", "_"]);

/** `raw` trimmed of whitespace and of quote, star and underscore characters at either end. */
function cleanLabel(raw: string): string {
  const text = raw.trim();
  let start = 0;
  let end = text.length;
  while (start < end && LABEL_QUOTES.has(text[start] as string)) start += 1;
  while (end > start && LABEL_QUOTES.has(text[end - 1] as string)) end -= 1;
  return text.slice(start, end).trim();
}

/** A bullet line's label and description: split at its first ":" or " - " after the first character. */
function splitBullet(line: string): { label: string; description: string } {
  const separator = BULLET_SEPARATOR.exec(line.slice(1));
  if (!separator) return { label: line, description: "" };
  const at = separator.index + 1;
  return { label: line.slice(0, at), description: line.slice(at + separator[0].length).trim() };
}

function isLabel(label: string): boolean {
  return label !== "" && label.length <= 40 && label.split(/\s+/).length <= 3;
}

/** Options listed in a routing/classification instruction, or undefined when it is not one. */
export function listedOptions(instructions: string): Option[] | undefined {
  if (!CHOICE_INSTRUCTION.test(instructions)) return undefined;
  for (const match of instructions.matchAll(INLINE_OPTIONS)) {
    const labels = (match[1] ?? "").split(LABEL_SEPARATOR).map(cleanLabel).filter((label) => label !== "");
    if (labels.length >= 2 && labels.every(isLabel)) return labels.map((label) => ({ label }));
  }
  const bullets: Option[] = [];
  for (const match of instructions.matchAll(BULLET)) {
    const { label: raw, description } = splitBullet((match[1] ?? "").trim());
    const label = cleanLabel(raw);
    if (isLabel(label)) bullets.push({ label, description });
  }
  if (bullets.length >= 2) return bullets;
  const quoted = [...new Set([...instructions.matchAll(QUOTED)].map((match) => cleanLabel(match[2] ?? "")))].filter(isLabel);
  if (quoted.length >= 2) return quoted.map((label) => ({ label }));
  return undefined;
}

interface Conversation {
  instructions: string;
  userText: string;
  userTurns: number;
  toolResults: { name: string; content: string }[] | undefined;
}

function readConversation(messages: ChatMessage[]): Conversation {
  const instructions = messages
    .filter((message) => message.role === "system" || message.role === "developer")
    .map(messageText)
    .join("\n");
  const users = messages.filter((message) => message.role === "user");
  const lastUser = users.at(-1);
  const last = messages.at(-1);
  const userText = messageText(lastUser ?? last ?? { content: "" });
  let toolResults: Conversation["toolResults"];
  if (last && (last.role === "tool" || last.role === "function")) {
    const callerIndex = messages.findLastIndex((message) => message.role === "assistant");
    const caller = messages[callerIndex];
    const names = new Map((caller?.tool_calls ?? []).map((call) => [call.id, call.function.name]));
    toolResults = messages
      .slice(callerIndex + 1)
      .filter((message) => message.role === "tool" || message.role === "function")
      .map((message) => ({
        name: (message.tool_call_id !== undefined ? names.get(message.tool_call_id) : undefined) ?? message.name ?? "tool",
        content: messageText(message),
      }));
  }
  return { instructions, userText, userTurns: users.length, toolResults };
}

/** Identifier-like runs of a message: a tool is named when its name is one of them. */
const IDENTIFIER_RUN = /[\p{L}\p{N}_-]+/gu;

/**
 * `identifiers` holds the message's identifier-like runs in lower case, computed once for all the
 * tools of a request. A lookup, not a substring search of the message per tool, which was tools
 * times the message.
 */
function toolScore(tool: ChatTool, identifiers: Set<string>, words: Set<string>): number {
  const { name, description } = tool.function;
  const spoken = identifierKeywords(name);
  const mentioned = identifiers.has(name.toLowerCase()) ? 3 : 0;
  return mentioned + 2 * overlap(spoken, words) + overlap(keywords(description ?? ""), words);
}

/**
 * Which tools a user turn calls: every tool named in the text (by its name or the
 * words of its name), else the single tool whose description shares the most
 * words with the text, else none. A forced `tool_choice` always yields a call.
 */
function selectTools(request: ChatCompletionRequest, text: string): ChatTool[] {
  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (tools.length === 0 || choice === "none") return [];
  if (typeof choice === "object") {
    const forced = tools.find((tool) => tool.function.name === choice.function.name);
    return forced ? [forced] : [];
  }
  const words = new Set(keywords(text));
  const identifiers = new Set(text.toLowerCase().match(IDENTIFIER_RUN) ?? []);
  const scored = tools.map((tool) => ({ tool, score: toolScore(tool, identifiers, words) }));
  const named = scored.filter((entry) => entry.score >= 2);
  const best = scored.reduce((top, entry) => (entry.score > top.score ? entry : top), { tool: tools[0] as ChatTool, score: 0 });
  let selected = named.length > 0 ? named.map((entry) => entry.tool) : best.score > 0 ? [best.tool] : [];
  if (selected.length === 0 && choice === "required") selected = [best.tool];
  if (request.parallel_tool_calls === false) selected = selected.slice(0, 1);
  return selected;
}

/** `valueForSchema`, with a refusal that says which schema of the request was too large. */
function fillSchema(schema: JsonSchema, text: string, budget: FillBudget, subject: string, param: string): unknown {
  try {
    return valueForSchema(schema, text, budget);
  } catch (error) {
    if (error instanceof SchemaTooLargeError) throw new SchemaTooLargeError(`${subject} is too large for the local model endpoint: ${error.message}.`, param);
    throw error;
  }
}

/**
 * Per request, what every choice of it shares: the conversation read from the messages, the
 * tools it calls, the prose reply, and the hash state of the messages for tool-call ids. With
 * `n` up to 128 choices and each tool call hashing the messages, computing these per choice and
 * per call cost choices times tools times the body.
 */
const conversations = new WeakMap<ChatCompletionRequest, Conversation>();
const selections = new WeakMap<ChatCompletionRequest, ChatTool[]>();
const proseReplies = new WeakMap<ChatCompletionRequest, string>();
const callIdPrefixes = new WeakMap<ChatCompletionRequest, Hash>();

function memo<T>(cache: WeakMap<ChatCompletionRequest, T>, request: ChatCompletionRequest, make: () => T): T {
  if (cache.has(request)) return cache.get(request) as T;
  const value = make();
  cache.set(request, value);
  return value;
}

/** `call_` + the first 24 hex digits of sha256(JSON.stringify([model, messages, name, index])), the messages hashed once per request. */
function callId(request: ChatCompletionRequest, name: string, index: number): string {
  const prefix = memo(callIdPrefixes, request, () => createHash("sha256").update(`[${JSON.stringify(request.model)},${JSON.stringify(request.messages)},`));
  return `call_${prefix.copy().update(`${JSON.stringify(name)},${index}]`).digest("hex").slice(0, 24)}`;
}

function toolCall(request: ChatCompletionRequest, tool: ChatTool, text: string, index: number, budget: FillBudget): ChatToolCall {
  const schema = tool.function.parameters ?? { type: "object", properties: {} };
  const value = fillSchema(schema, text, budget, `The parameters schema of tool '${tool.function.name.slice(0, 100)}'`, "tools");
  const args = typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};
  return {
    id: callId(request, tool.function.name, index),
    type: "function",
    function: { name: tool.function.name, arguments: JSON.stringify(args) },
  };
}

function proseReply(conversation: Conversation): string {
  const { instructions, userText, userTurns, toolResults } = conversation;
  const question = truncateWords(userText, 40);
  if (toolResults) {
    const results = toolResults.map((result) => `${result.name} returned "${truncateWords(result.content, 40)}"`).join("; ");
    return `${REPLY_PREFIX} Tool results for "${question}": ${results}.`;
  }
  const options = listedOptions(instructions) ?? listedOptions(userText);
  if (options) return (options[chooseOption(options, userText)] as Option).label;
  if (userText.trim() === "") return `${REPLY_PREFIX} (no text in the last message)`;
  if (SUMMARY_REQUEST.test(instructions) || SUMMARY_REQUEST.test(userText)) {
    const body = withoutSummaryLead(userText).trim();
    const firstSentence = body.split(/(?<=[.!?])\s+/u)[0] ?? body;
    return `${REPLY_PREFIX} Summary: ${truncateWords(firstSentence, 25)}`;
  }
  const turn = userTurns > 1 ? ` This is turn ${userTurns} of our conversation.` : "";
  return `${REPLY_PREFIX} You said: "${question}". This is a deterministic reply from the local model endpoint.${turn}`;
}

/** The text after a first-line lead such as "Summarize this:", or the text itself. */
function withoutSummaryLead(text: string): string {
  const end = text.search(/[:\n]/);
  if (end === -1 || text[end] !== ":" || !/\bsummar/i.test(text.slice(0, end))) return text;
  return text.slice(end + 1).replace(/^\s+/, "");
}

function applyLimits(request: ChatCompletionRequest, content: string): Reply {
  const stops = typeof request.stop === "string" ? [request.stop] : (request.stop ?? []);
  let text = content;
  for (const stop of stops) {
    const at = stop === "" ? -1 : text.indexOf(stop);
    if (at >= 0) text = text.slice(0, at);
  }
  const limit = request.max_completion_tokens ?? request.max_tokens;
  if (typeof limit === "number" && countTokens(text) > limit) {
    return { kind: "text", content: truncateToTokens(text, limit), finishReason: "length" };
  }
  return { kind: "text", content: text, finishReason: "stop" };
}

/**
 * The reply for choice `index` of `request`; identical requests get identical replies.
 * Every choice of one request should share one `budget`; a schema that needs more
 * than it allows throws SchemaTooLargeError.
 */
export function respond(request: ChatCompletionRequest, index = 0, budget = new FillBudget()): Reply {
  const conversation = memo(conversations, request, () => readConversation(request.messages));
  const forced = typeof request.tool_choice === "object" || request.tool_choice === "required";
  const lastRole = request.messages.at(-1)?.role;
  if (forced || (conversation.toolResults === undefined && lastRole === "user")) {
    const tools = memo(selections, request, () => selectTools(request, conversation.userText));
    if (tools.length > 0) return { kind: "tool_calls", calls: tools.map((tool, i) => toolCall(request, tool, conversation.userText, i, budget)) };
  }
  const format = request.response_format;
  let content: string;
  if (format?.type === "json_schema") {
    const schema = format.json_schema.schema ?? { type: "object", properties: {} };
    content = JSON.stringify(fillSchema(schema, conversation.userText, budget, `The response format schema '${format.json_schema.name.slice(0, 100)}'`, "response_format"));
  } else {
    const prose = memo(proseReplies, request, () => proseReply(conversation));
    const choices = request.n ?? 1;
    if (prose.length * choices > MAX_REPLY_CHARS) {
      throw new ReplyTooLargeError(`The reply to this request would be ${prose.length * choices} characters (${choices} choice(s) of ${prose.length}), over the limit of ${MAX_REPLY_CHARS} per request of the local model endpoint.`);
    }
    const varied = index > 0 && prose.startsWith(REPLY_PREFIX) ? `${prose} (choice ${index + 1})` : prose;
    content = format?.type === "json_object" ? JSON.stringify({ answer: varied }) : varied;
  }
  return applyLimits(request, content);
}
