import type { ChatCompletionRequest, ChatMessage } from "./wire.js";

// Request validation with OpenAI's own wording for the common mistakes, so a
// 400 from this server reads like one from api.openai.com.

export interface InvalidRequest {
  message: string;
  param: string | null;
  code: string | null;
}

type Result = { ok: true; request: ChatCompletionRequest } | { ok: false; error: InvalidRequest };

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(message: string, param: string | null, code: string | null = "invalid_value"): Result {
  return { ok: false, error: { message, param, code } };
}

function invalidType(param: string, expected: string): Result {
  return fail(`Invalid type for '${param}': expected ${expected}.`, param, "invalid_type");
}

function checkMessage(value: unknown, index: number): Result | undefined {
  const param = `messages[${index}]`;
  if (!isRecord(value)) return invalidType(param, "an object");
  const { role, content, tool_calls: toolCalls, tool_call_id: toolCallId } = value;
  if (typeof role !== "string") return fail(`Missing required parameter: '${param}.role'.`, `${param}.role`, "missing_required_parameter");
  if (!ROLES.has(role)) {
    return fail(`Invalid value: '${role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`, `${param}.role`);
  }
  const contentOk =
    typeof content === "string" ||
    (Array.isArray(content) && content.every((part) => isRecord(part) && typeof part.type === "string")) ||
    ((content === null || content === undefined) && role === "assistant");
  if (!contentOk) return invalidType(`${param}.content`, role === "assistant" ? "a string, an array of content parts, or null" : "a string or an array of content parts");
  if (toolCalls !== undefined) {
    if (role !== "assistant" || !Array.isArray(toolCalls)) return invalidType(`${param}.tool_calls`, "an array on an assistant message");
    for (const [i, call] of toolCalls.entries()) {
      const fn = isRecord(call) ? call.function : undefined;
      if (!isRecord(call) || typeof call.id !== "string" || !isRecord(fn) || typeof fn.name !== "string" || typeof fn.arguments !== "string") {
        return invalidType(`${param}.tool_calls[${i}]`, "an object with id, type 'function' and function.name/arguments strings");
      }
    }
  }
  if (role === "tool" && typeof toolCallId !== "string") {
    return fail(`Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.`, `${param}.tool_call_id`, "missing_required_parameter");
  }
  return undefined;
}

/**
 * Levels of objects and arrays a request body may nest. JSON.parse takes any depth, but
 * JSON.stringify and the schema filler recurse: a tool schema whose `const` nested 20,000 levels
 * overflowed the stack (a 500), and a stored `lastRequest` that deep would break /_local/stats.
 * Real tool schemas nest a few dozen levels at most.
 */
export const MAX_BODY_NESTING = 256;

/** Whether `value` nests objects/arrays deeper than `levels`; its own recursion stops at `levels`. */
export function nestsDeeperThan(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  for (const item of Array.isArray(value) ? value : Object.values(value)) if (nestsDeeperThan(item, levels - 1)) return true;
  return false;
}

/**
 * Tools one request may list: OpenAI's own limit ("A max of 128 functions are supported"), with
 * its wording. The local endpoint scores every tool against the message, so 50,000 tools held it
 * for minutes.
 */
export const MAX_TOOLS = 128;

export function toolCountProblem(count: number): InvalidRequest | undefined {
  if (count <= MAX_TOOLS) return undefined;
  return { message: `Invalid 'tools': array too long. Expected an array with maximum length ${MAX_TOOLS}, but got an array with length ${count} instead.`, param: "tools", code: "array_above_max_length" };
}

/** Checks a parsed JSON body against the Chat Completions request shape. */
export function validateChatRequest(body: unknown): Result {
  if (!isRecord(body)) return invalidType("body", "a JSON object");
  const { model, messages, stream, n, tools, tool_choice: toolChoice, response_format: format, stop } = body;
  if (model === undefined) return fail("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  if (typeof model !== "string" || model === "") return invalidType("model", "a non-empty string");
  if (messages === undefined) return fail("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  if (!Array.isArray(messages)) return invalidType("messages", "an array");
  if (messages.length === 0) {
    return fail("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array");
  }
  for (const [index, message] of messages.entries()) {
    const problem = checkMessage(message, index);
    if (problem) return problem;
  }
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") return invalidType("stream", "a boolean");
  if (n !== undefined && n !== null && (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 128)) {
    return fail(`Invalid 'n': expected an integer between 1 and 128.`, "n");
  }
  for (const key of ["max_tokens", "max_completion_tokens"] as const) {
    const limit = body[key];
    if (limit !== undefined && limit !== null && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1)) {
      return fail(`Invalid '${key}': expected a positive integer.`, key);
    }
  }
  if (stop !== undefined && stop !== null && typeof stop !== "string" && !(Array.isArray(stop) && stop.length <= 4 && stop.every((entry) => typeof entry === "string"))) {
    return invalidType("stop", "a string or an array of at most 4 strings");
  }
  const toolNames = new Set<string>();
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) return invalidType("tools", "an array");
    const tooMany = toolCountProblem(tools.length);
    if (tooMany) return { ok: false, error: tooMany };
    for (const [i, tool] of tools.entries()) {
      const fn = isRecord(tool) ? tool.function : undefined;
      if (!isRecord(tool) || tool.type !== "function" || !isRecord(fn) || typeof fn.name !== "string") {
        return fail(`Invalid value for 'tools[${i}]': this endpoint supports tools of type 'function' with a 'function.name'.`, `tools[${i}]`);
      }
      if (fn.parameters !== undefined && !isRecord(fn.parameters)) return invalidType(`tools[${i}].function.parameters`, "an object");
      toolNames.add(fn.name);
    }
  }
  if (toolChoice !== undefined && toolChoice !== null) {
    if (typeof toolChoice === "string") {
      if (!["none", "auto", "required"].includes(toolChoice)) return fail(`Invalid value: '${toolChoice}'. Supported values are: 'none', 'auto', and 'required'.`, "tool_choice");
    } else {
      const fn = isRecord(toolChoice) ? toolChoice.function : undefined;
      if (!isRecord(fn) || typeof fn.name !== "string") return invalidType("tool_choice", "'none', 'auto', 'required' or {type: 'function', function: {name}}");
      if (!toolNames.has(fn.name)) return fail(`Invalid value for 'tool_choice': no function named '${fn.name}' was specified in the 'tools' parameter.`, "tool_choice");
    }
  }
  if (format !== undefined && format !== null) {
    const type = isRecord(format) ? format.type : undefined;
    if (type !== "text" && type !== "json_object" && type !== "json_schema") {
      return fail(`Invalid value for 'response_format.type': supported values are 'text', 'json_object' and 'json_schema'.`, "response_format.type");
    }
    if (type === "json_schema") {
      const spec = isRecord(format) ? format.json_schema : undefined;
      if (!isRecord(spec) || typeof spec.name !== "string") return fail("Missing required parameter: 'response_format.json_schema.name'.", "response_format.json_schema.name", "missing_required_parameter");
      if (spec.schema !== undefined && !isRecord(spec.schema)) return invalidType("response_format.json_schema.schema", "an object");
    }
  }
  if (isRecord(format) && format.type === "json_object") {
    const mentionsJson = (messages as ChatMessage[]).some((message) => JSON.stringify(message.content ?? "").toLowerCase().includes("json"));
    if (!mentionsJson) return fail("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "messages");
  }
  // The shape checks above cover every field the responder reads.
  return { ok: true, request: body as unknown as ChatCompletionRequest };
}
