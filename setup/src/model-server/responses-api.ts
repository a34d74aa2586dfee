import { fragments, usageFor, type Rendered } from "./chat-completions.js";
import type { Reply } from "./responder.js";
import { hashHex, streamPieces } from "./text.js";
import { toolCountProblem, type InvalidRequest } from "./validate.js";
import type { ChatCompletionRequest, ChatMessage, ChatTextPart, ChatTool, ChatToolChoice, ResponseFormat } from "./wire.js";

// The OpenAI Responses API (POST /v1/responses), which ChatOpenAI switches to
// for `useResponsesApi: true`, built-in tools, Responses-only options and some
// model names. Requests are translated to the chat shape and answered by the
// same responder; only stateless use is supported (no previous_response_id).

type Result = { ok: true; chat: ChatCompletionRequest; source: Record<string, unknown> } | { ok: false; error: InvalidRequest };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(message: string, param: string | null, code: string | null = "invalid_value"): Result {
  return { ok: false, error: { message, param, code } };
}

function contentOf(value: unknown): string | ChatTextPart[] {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return "";
  return value.filter(isRecord).map((part) => ({ type: String(part.type), ...(typeof part.text === "string" ? { text: part.text } : {}) }));
}

function inputMessages(input: unknown): ChatMessage[] | string {
  if (typeof input === "string") return [{ role: "user", content: input }];
  if (!Array.isArray(input)) return "input";
  const messages: ChatMessage[] = [];
  for (const [index, item] of input.entries()) {
    if (!isRecord(item)) return `input[${index}]`;
    const type = item.type ?? "message";
    if (type === "message") {
      const role = item.role;
      if (role !== "user" && role !== "system" && role !== "developer" && role !== "assistant") return `input[${index}].role`;
      messages.push({ role, content: contentOf(item.content) });
    } else if (type === "function_call") {
      if (typeof item.call_id !== "string" || typeof item.name !== "string" || typeof item.arguments !== "string") return `input[${index}]`;
      const call = { id: item.call_id, type: "function" as const, function: { name: item.name, arguments: item.arguments } };
      const previous = messages.at(-1);
      if (previous?.role === "assistant" && previous.tool_calls) previous.tool_calls.push(call);
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    } else if (type === "function_call_output") {
      if (typeof item.call_id !== "string") return `input[${index}].call_id`;
      const output = typeof item.output === "string" ? item.output : JSON.stringify(item.output ?? "");
      messages.push({ role: "tool", tool_call_id: item.call_id, content: output });
    }
    // Reasoning and other replayed output items carry nothing this responder reads.
  }
  return messages;
}

/** Validates a Responses request and translates it to the chat request the responder answers. */
export function parseResponsesRequest(body: unknown): Result {
  if (!isRecord(body)) return fail("Invalid type for 'body': expected a JSON object.", null, "invalid_type");
  const { model, input, instructions, tools, tool_choice: toolChoice, text, stream, max_output_tokens: maxOutput, previous_response_id: previous } = body;
  if (typeof model !== "string" || model === "") return fail("Missing required parameter: 'model'.", "model", "missing_required_parameter");
  if (previous !== undefined && previous !== null) {
    return fail("'previous_response_id' is not supported by the local model endpoint: it keeps no conversation state. Send the full input instead.", "previous_response_id", "unsupported_parameter");
  }
  if (input === undefined) return fail("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  const messages = inputMessages(input);
  if (typeof messages === "string") return fail(`Invalid value for '${messages}'.`, messages);
  if (typeof instructions === "string" && instructions !== "") messages.unshift({ role: "system", content: instructions });
  if (messages.length === 0) return fail("Invalid 'input': expected at least one message.", "input", "empty_array");
  const chatTools: ChatTool[] = [];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) return fail("Invalid type for 'tools': expected an array.", "tools", "invalid_type");
    const tooMany = toolCountProblem(tools.length);
    if (tooMany) return { ok: false, error: tooMany };
    for (const [index, tool] of tools.entries()) {
      if (!isRecord(tool) || tool.type !== "function" || typeof tool.name !== "string") {
        return fail(`Invalid value for 'tools[${index}]': the local model endpoint supports only tools of type 'function' (no built-in tools).`, `tools[${index}]`);
      }
      chatTools.push({
        type: "function",
        function: {
          name: tool.name,
          ...(typeof tool.description === "string" ? { description: tool.description } : {}),
          ...(isRecord(tool.parameters) ? { parameters: tool.parameters } : {}),
        },
      });
    }
  }
  let choice: ChatToolChoice | undefined;
  if (toolChoice === "none" || toolChoice === "auto" || toolChoice === "required") choice = toolChoice;
  else if (isRecord(toolChoice) && toolChoice.type === "function" && typeof toolChoice.name === "string") {
    if (!chatTools.some((tool) => tool.function.name === toolChoice.name)) return fail(`Invalid value for 'tool_choice': no function named '${toolChoice.name}' in 'tools'.`, "tool_choice");
    choice = { type: "function", function: { name: toolChoice.name } };
  } else if (toolChoice !== undefined && toolChoice !== null) return fail("Invalid value for 'tool_choice'.", "tool_choice");
  let format: ResponseFormat | undefined;
  const requested = isRecord(text) && isRecord(text.format) ? text.format : undefined;
  if (requested?.type === "json_schema") {
    format = { type: "json_schema", json_schema: { name: typeof requested.name === "string" ? requested.name : "response", ...(isRecord(requested.schema) ? { schema: requested.schema } : {}) } };
  } else if (requested?.type === "json_object") format = { type: "json_object" };
  if (maxOutput !== undefined && maxOutput !== null && (typeof maxOutput !== "number" || !Number.isInteger(maxOutput) || maxOutput < 1)) {
    return fail("Invalid 'max_output_tokens': expected a positive integer.", "max_output_tokens");
  }
  const chat: ChatCompletionRequest = {
    model,
    messages,
    stream: stream === true,
    ...(chatTools.length > 0 ? { tools: chatTools } : {}),
    ...(choice ? { tool_choice: choice } : {}),
    ...(body.parallel_tool_calls === false ? { parallel_tool_calls: false } : {}),
    ...(format ? { response_format: format } : {}),
    ...(typeof maxOutput === "number" ? { max_tokens: maxOutput } : {}),
  };
  return { ok: true, chat, source: body };
}

export function renderResponse(chat: ChatCompletionRequest, source: Record<string, unknown>, reply: Reply, id: string, created: number): Rendered {
  const usage = usageFor(chat, [reply]);
  const seed = [id];
  const items =
    reply.kind === "text"
      ? [{ id: `msg_${hashHex([...seed, "msg"], 32)}`, type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: reply.content, annotations: [], logprobs: [] }] }]
      : reply.calls.map((call) => ({ id: `fc_${hashHex([...seed, call.id], 32)}`, type: "function_call", status: "completed", arguments: call.function.arguments, call_id: call.id, name: call.function.name }));
  const incomplete = reply.kind === "text" && reply.finishReason === "length";
  const base = {
    id,
    object: "response",
    created_at: created,
    error: null,
    incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
    instructions: source.instructions ?? null,
    max_output_tokens: source.max_output_tokens ?? null,
    model: chat.model,
    parallel_tool_calls: source.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: source.store ?? true,
    temperature: source.temperature ?? 1,
    text: source.text ?? { format: { type: "text" } },
    tool_choice: source.tool_choice ?? "auto",
    tools: source.tools ?? [],
    top_p: source.top_p ?? 1,
    truncation: "disabled",
    user: null,
    metadata: source.metadata ?? {},
  };
  const body = {
    ...base,
    status: incomplete ? "incomplete" : "completed",
    output: items,
    usage: {
      input_tokens: usage.prompt_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: usage.completion_tokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.total_tokens,
    },
  };

  // Made one event at a time as the stream asks for them, like renderChatCompletion's.
  function* events(): Generator<string> {
    let sequence = 0;
    const event = (type: string, payload: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...payload })}\n\n`;
    const pending = { ...base, status: "in_progress", output: [], usage: null };
    yield event("response.created", { response: pending });
    yield event("response.in_progress", { response: pending });
    for (const [outputIndex, item] of items.entries()) {
      if (item.type === "message" && reply.kind === "text") {
        const itemId = item.id;
        yield event("response.output_item.added", { output_index: outputIndex, item: { ...item, status: "in_progress", content: [] } });
        yield event("response.content_part.added", { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } });
        for (const piece of streamPieces(reply.content)) yield event("response.output_text.delta", { item_id: itemId, output_index: outputIndex, content_index: 0, delta: piece, logprobs: [] });
        yield event("response.output_text.done", { item_id: itemId, output_index: outputIndex, content_index: 0, text: reply.content, logprobs: [] });
        yield event("response.content_part.done", { item_id: itemId, output_index: outputIndex, content_index: 0, part: { type: "output_text", text: reply.content, annotations: [], logprobs: [] } });
      } else if ("arguments" in item) {
        yield event("response.output_item.added", { output_index: outputIndex, item: { ...item, status: "in_progress", arguments: "" } });
        for (const fragment of fragments(item.arguments)) yield event("response.function_call_arguments.delta", { item_id: item.id, output_index: outputIndex, delta: fragment });
        yield event("response.function_call_arguments.done", { item_id: item.id, output_index: outputIndex, arguments: item.arguments });
      }
      yield event("response.output_item.done", { output_index: outputIndex, item });
    }
    yield event(incomplete ? "response.incomplete" : "response.completed", { response: body });
  }
  return { body, events };
}
