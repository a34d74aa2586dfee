import type { Reply } from "./responder.js";
import { countTokens, messageText, streamPieces } from "./text.js";
import type { ChatCompletionRequest, ChatToolCall, Usage } from "./wire.js";

// Rendering replies as Chat Completions objects and SSE chunks, field for field
// as OpenAI sends them.

export interface Rendered {
  /** The non-streamed response body. */
  body: unknown;
  /** The streamed response: complete SSE events, in order. */
  events: string[];
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
function deltas(reply: Reply): Record<string, unknown>[] {
  if (reply.kind === "text") {
    return [{ role: "assistant", content: "", refusal: null }, ...streamPieces(reply.content).map((piece) => ({ content: piece }))];
  }
  return reply.calls.flatMap((call, index) => {
    const opening = { index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } };
    // Arguments arrive in fragments, as from OpenAI, so clients must concatenate them.
    const fragments = (call.function.arguments.match(/.{1,12}/gs) ?? []).map((fragment) => ({ tool_calls: [{ index, function: { arguments: fragment } }] }));
    return [index === 0 ? { role: "assistant", content: null, tool_calls: [opening], refusal: null } : { tool_calls: [opening] }, ...fragments];
  });
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
  const events: string[] = [];
  const usageSlot = includeUsage ? { usage: null } : {};
  replies.forEach((reply, index) => {
    for (const delta of deltas(reply)) events.push(chunk([{ index, delta, logprobs: null, finish_reason: null }], usageSlot));
    events.push(chunk([{ index, delta: {}, logprobs: null, finish_reason: finishReason(reply) }], usageSlot));
  });
  if (includeUsage) events.push(chunk([], { usage }));
  events.push("data: [DONE]\n\n");
  return { body, events };
}
