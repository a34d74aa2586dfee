// A model call as an OpenTelemetry span that LangSmith reads as an LLM run: the gen_ai.* semantic
// conventions LangSmith maps (run type from gen_ai.operation.name, messages from
// gen_ai.prompt.{n}.* / gen_ai.completion.{n}.*, token counts from gen_ai.usage.*, the model
// into invocation_params). For clients no instrumentation covers, here an OpenAI-compatible
// /chat/completions endpoint called with fetch:
//
//   const answer = await chatCompletion(tracer, { baseURL, apiKey, model: "gpt-4o-mini", messages });
import { SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatCompletionRequest {
  baseURL: string;
  apiKey: string;
  model: string;
  messages: ChatMessage[];
  temperature?: number;
}

export interface ChatCompletionResult {
  content: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
}

interface OpenAIResponse {
  model?: string;
  choices?: Array<{ message?: { role?: string; content?: string | null }; finish_reason?: string }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** POST /chat/completions inside a CLIENT span named `chat <model>`, with the gen_ai attributes set. */
export async function chatCompletion(tracer: Tracer, request: ChatCompletionRequest): Promise<ChatCompletionResult> {
  return tracer.startActiveSpan(`chat ${request.model}`, { kind: SpanKind.CLIENT }, async (span) => {
    span.setAttributes({
      "gen_ai.operation.name": "chat",
      "gen_ai.system": "openai",
      "gen_ai.request.model": request.model,
      ...(request.temperature === undefined ? {} : { "gen_ai.request.temperature": request.temperature }),
    });
    request.messages.forEach((m, i) => span.setAttributes({ [`gen_ai.prompt.${i}.role`]: m.role, [`gen_ai.prompt.${i}.content`]: m.content }));
    try {
      const res = await fetch(`${request.baseURL.replace(/\/$/, "")}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${request.apiKey}` },
        body: JSON.stringify({ model: request.model, messages: request.messages, temperature: request.temperature }),
      });
      if (!res.ok) throw new Error(`chat completion failed: ${res.status} ${(await res.text()).slice(0, 200)}`);
      const body = (await res.json()) as OpenAIResponse;
      const choice = body.choices?.[0];
      const content = choice?.message?.content ?? "";
      span.setAttributes({ "gen_ai.completion.0.role": choice?.message?.role ?? "assistant", "gen_ai.completion.0.content": content });
      if (body.model) span.setAttribute("gen_ai.response.model", body.model);
      if (choice?.finish_reason) span.setAttribute("gen_ai.response.finish_reasons", [choice.finish_reason]);
      if (body.usage) {
        span.setAttributes({ "gen_ai.usage.input_tokens": body.usage.prompt_tokens, "gen_ai.usage.output_tokens": body.usage.completion_tokens });
      }
      return { content, usage: body.usage };
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}
