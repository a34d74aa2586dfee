import type { Reply } from "./responder.js";
import { countTokens, messageText, streamPieces } from "./text.js";
import type { ChatCompletionRequest, ChatToolCall, Usage } from "./wire.js";

// Rendering replies as Chat Completions objects and SSE chunks, field for field
// as OpenAI sends them.

export interface Rendered {
  /** The non-streamed response body. */
  body: unknown;
  /**
   * The streamed response: complete SSE events, in order, each made when the stream asks for it.
   * Made all at once, a 1,000,000-character reply became 26 MB of strings per request, held for
   * as long as its client took to read them.
   */
  events(): Generator<string>;
}

/** Tool-call arguments stream in fragments of this many characters, as OpenAI's arrive in pieces. */
const FRAGMENT_CHARS = 12;

/** `text` in pieces of at most FRAGMENT_CHARS characters. */
export function* fragments(text: string): Generator<string> {
  for (let at = 0; at < text.length; at += FRAGMENT_CHARS) yield text.slice(at, at + FRAGMENT_CHARS);
}

export function usageFor(request: ChatCompletionRequest, replies: Reply[]): Usage {
  const callTokens = (calls: ChatToolCall[]) => calls.reduce((sum, call) => sum + countTokens(call.function.name + call.function.arguments), 0);
  // Four tokens of framing per message, like OpenAI's chat format overhead.
  const prompt = request.messages.reduce((sum, message) => sum + 4 + countTokens(messageText(message)) + callTokens(message.tool_calls ?? []), 0);
  const completion = replies.reduce((sum, reply) => sum + (reply.kind === "text" ? countTokens(reply.content) : callTokens(reply.calls)), 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function finishReason(reply: Reply): string {
  return reply.kind === "text" ? reply.finishReason : "tool_calls";
}

/** The chunk deltas for one choice, in OpenAI's streaming order. */
function* deltas(reply: Reply): Generator<Record<string, unknown>> {
  if (reply.kind === "text") {
    yield { role: "assistant", content: "", refusal: null };
    for (const piece of streamPieces(reply.content)) yield { content: piece };
    return;
  }
  for (const [index, call] of reply.calls.entries()) {
    const opening = { index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } };
    yield index === 0 ? { role: "assistant", content: null, tool_calls: [opening], refusal: null } : { tool_calls: [opening] };
    // Arguments arrive in fragments, as from OpenAI, so clients must concatenate them.
    for (const fragment of fragments(call.function.arguments)) yield { tool_calls: [{ index, function: { arguments: fragment } }] };
  }
}

export function renderChatCompletion(request: ChatCompletionRequest, replies: Reply[], id: string, created: number): Rendered {
  const usage = usageFor(request, replies);
  const common = { id, created, model: request.model, service_tier: "default", system_fingerprint: "fp_local_model" };
  const body = {
    ...common,
    object: "chat.completion",
    choices: replies.map((reply, index) => ({
      index,
      message:
        reply.kind === "text"
          ? { role: "assistant", content: reply.content, refusal: null, annotations: [] }
          : { role: "assistant", content: null, tool_calls: reply.calls, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: finishReason(reply),
    })),
    usage,
  };
  const includeUsage = request.stream_options?.include_usage === true;
  const chunk = (choices: unknown[], extra: Record<string, unknown>) => `data: ${JSON.stringify({ ...common, object: "chat.completion.chunk", choices, ...extra })}\n\n`;
  const usageSlot = includeUsage ? { usage: null } : {};
  function* events(): Generator<string> {
    for (const [index, reply] of replies.entries()) {
      for (const delta of deltas(reply)) yield chunk([{ index, delta, logprobs: null, finish_reason: null }], usageSlot);
      yield chunk([{ index, delta: {}, logprobs: null, finish_reason: finishReason(reply) }], usageSlot);
    }
    if (includeUsage) yield chunk([], { usage });
    yield "data: [DONE]\n\n";
  }
  return { body, events };
}
