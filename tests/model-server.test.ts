// The local model endpoint exercised through the real ChatOpenAI client, the
// way notebooks and example services use it, plus raw HTTP for what a client
// library would never send.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import { AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { RunCollectorCallbackHandler } from "@langchain/core/tracers/run_collector";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import { startModelServer, type ModelServerHandle } from "@tracing-patterns/setup";

// No trace server here: LangChain must not try to export runs anywhere.
process.env.LANGSMITH_TRACING = "false";
delete process.env.LANGCHAIN_TRACING_V2;

let server: ModelServerHandle;

before(async () => {
  server = await startModelServer({ port: 0 });
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.clearFaults();
});

function chat(fields: Partial<ConstructorParameters<typeof ChatOpenAI>[0] & object> = {}): ChatOpenAI {
  return new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", configuration: { baseURL: server.url }, maxRetries: 0, ...fields });
}

async function collect(stream: AsyncIterable<AIMessageChunk>): Promise<{ chunks: number; message: AIMessageChunk }> {
  let message: AIMessageChunk | undefined;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    message = message ? message.concat(chunk) : chunk;
  }
  assert.ok(message, "stream yielded nothing");
  return { chunks, message };
}

const weatherSchema = z.object({
  city: z.string().min(1),
  unit: z.enum(["celsius", "fahrenheit"]),
  days: z.number().int().min(1).max(7).optional(),
});
const getWeather = tool(async ({ city, unit }) => `Sunny, 21 degrees ${unit} in ${city}`, {
  name: "get_weather",
  description: "Get the current weather forecast for a city",
  schema: weatherSchema,
});
const addNumbers = tool(async ({ a, b }) => String(a + b), {
  name: "add_numbers",
  description: "Add two numbers together",
  schema: z.object({ a: z.number(), b: z.number() }),
});

describe("chat completions through ChatOpenAI", () => {
  test("invoke answers deterministically from the last user message, with usage", async () => {
    const first = await chat().invoke("What is distributed tracing?");
    const second = await chat().invoke("What is distributed tracing?");
    const other = await chat().invoke("Something else entirely");
    assert.equal(typeof first.content, "string");
    assert.match(String(first.content), /^\[local-model\] .*What is distributed tracing\?/);
    assert.equal(first.content, second.content);
    assert.notEqual(first.content, other.content);
    const usage = first.usage_metadata;
    assert.ok(usage && usage.input_tokens > 0 && usage.output_tokens > 0);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    assert.equal(first.response_metadata.model_name, "gpt-4o-mini");
    assert.equal(first.response_metadata.finish_reason, "stop");
  });

  test("stream chunks concatenate to the non-streamed answer and carry usage", async () => {
    const model = chat();
    const whole = await model.invoke("Explain spans and traces briefly");
    const { chunks, message } = await collect(await model.stream("Explain spans and traces briefly"));
    assert.ok(chunks > 3, `expected several chunks, got ${chunks}`);
    assert.equal(message.content, whole.content);
    assert.deepEqual(message.usage_metadata && { ...message.usage_metadata }, whole.usage_metadata && { ...whole.usage_metadata });
    assert.equal(server.stats().lastRequest && (server.stats().lastRequest as { stream_options?: unknown }).stream_options !== undefined, true);
  });

  test("conversation turns are visible in the reply", async () => {
    const reply = await chat().invoke([new HumanMessage("Hi, I am Ada."), new AIMessage("Hello Ada."), new HumanMessage("What did I just tell you?")]);
    assert.match(String(reply.content), /turn 2/);
  });

  test("bindTools yields schema-valid tool calls, identical when streamed", async () => {
    const model = chat().bindTools([getWeather, addNumbers]);
    const reply = await model.invoke("What's the weather in Paris this week?");
    assert.equal(reply.tool_calls?.length, 1);
    const call = reply.tool_calls?.[0];
    assert.equal(call?.name, "get_weather");
    const args = weatherSchema.parse(call?.args);
    assert.equal(args.city, "Paris");
    assert.match(call?.id ?? "", /^call_/);

    const { message } = await collect(await model.stream("What's the weather in Paris this week?"));
    assert.deepEqual(
      message.tool_calls?.map(({ name, args: streamedArgs, id }) => ({ name, args: streamedArgs, id })),
      reply.tool_calls?.map(({ name, args: plainArgs, id }) => ({ name, args: plainArgs, id })),
    );

    const sum = await model.invoke("Please add 3 and 4 using add_numbers");
    assert.deepEqual(sum.tool_calls?.map((entry) => [entry.name, entry.args]), [["add_numbers", { a: 3, b: 4 }]]);

    const none = await model.invoke("Tell me a story about a dragon");
    assert.equal(none.tool_calls?.length ?? 0, 0);
    assert.match(String(none.content), /^\[local-model\]/);
  });

  test("a forced tool_choice always calls that tool", async () => {
    const reply = await chat().bindTools([getWeather, addNumbers], { tool_choice: "add_numbers" }).invoke("Hello there");
    assert.equal(reply.tool_calls?.[0]?.name, "add_numbers");
  });

  test("a tool round trip ends with an answer built from the tool result", async () => {
    const model = chat().bindTools([getWeather]);
    const question = new HumanMessage("What's the weather in Lisbon?");
    const request = await model.invoke([question]);
    const call = request.tool_calls?.[0];
    assert.ok(call);
    const result = await getWeather.invoke(call);
    assert.ok(result instanceof ToolMessage);
    const final = await model.invoke([question, request, result]);
    assert.equal(final.tool_calls?.length ?? 0, 0);
    assert.match(String(final.content), /get_weather returned "Sunny, 21 degrees celsius in Lisbon"/);
  });

  test("routing prompts get one of the listed labels, picked by keywords", async () => {
    const system = new SystemMessage("Route the user's question to one of: billing, technical, general. Answer with the label only.");
    const model = chat();
    const ask = async (text: string) => String((await model.invoke([system, new HumanMessage(text)])).content);
    assert.equal(await ask("I was charged twice on my invoice"), "billing");
    assert.equal(await ask("The app shows an error when I log in"), "technical");
    assert.equal(await ask("What are your opening hours?"), "general");
  });

  test("structured output and JSON mode return valid JSON", async () => {
    const schema = z.object({ sentiment: z.enum(["positive", "negative", "neutral"]), confidence: z.number().min(0).max(1), summary: z.string() });
    const result = await chat().withStructuredOutput(schema).invoke("I love this library, it is great");
    assert.equal(schema.parse(result).sentiment, "positive");

    const viaTool = await chat().withStructuredOutput(schema, { method: "functionCalling" }).invoke("The update is terrible and slow");
    assert.equal(schema.parse(viaTool).sentiment, "negative");

    const json = await chat({ modelKwargs: { response_format: { type: "json_object" } } }).invoke("Reply in JSON: what is a span?");
    assert.ok(JSON.parse(String(json.content)).answer.startsWith("[local-model]"));
  });

  test("n > 1 returns one generation per choice", async () => {
    const result = await chat({ n: 2 }).generate([[new HumanMessage("Name a tracing concept")]]);
    assert.equal(result.generations[0]?.length, 2);
  });

  test("the LLM run LangChain would send to LangSmith carries model, usage and output", async () => {
    const collector = new RunCollectorCallbackHandler();
    await chat().invoke("Trace me", { callbacks: [collector] });
    const run = collector.tracedRuns.find((entry) => entry.run_type === "llm");
    assert.ok(run, "no llm run was recorded");
    assert.equal(run.error, undefined);
    assert.equal(run.extra?.metadata?.ls_provider, "openai");
    assert.equal(run.extra?.metadata?.ls_model_name, "gpt-4o-mini");
    const outputs = run.outputs as { llmOutput?: { tokenUsage?: { totalTokens?: number } }; generations?: { text?: string }[][] };
    assert.ok((outputs.llmOutput?.tokenUsage?.totalTokens ?? 0) > 0);
    assert.match(outputs.generations?.[0]?.[0]?.text ?? "", /Trace me/);
  });
});

describe("Responses API through ChatOpenAI (useResponsesApi, codex models)", () => {
  const responses = () => chat({ useResponsesApi: true });

  test("invoke and stream call /v1/responses and agree", async () => {
    const before = server.stats().completions;
    const whole = await responses().invoke("What does a trace id identify?");
    const { message } = await collect(await responses().stream("What does a trace id identify?"));
    assert.equal((server.stats().lastRequest as { input?: unknown }).input !== undefined, true, "the Responses API was not used");
    assert.equal(server.stats().completions - before, 2);
    assert.match(whole.text, /^\[local-model\] .*trace id/);
    assert.equal(message.text, whole.text);
    assert.ok((message.usage_metadata?.total_tokens ?? 0) > 0);
    assert.deepEqual({ ...message.usage_metadata }, { ...whole.usage_metadata });
  });

  test("tool calls and a tool round trip", async () => {
    const model = responses().bindTools([getWeather]);
    const question = new HumanMessage("Weather in Oslo, please");
    const request = await model.invoke([question]);
    const call = request.tool_calls?.[0];
    assert.equal(call?.name, "get_weather");
    assert.equal(weatherSchema.parse(call?.args).city, "Oslo");
    const { message } = await collect(await model.stream([question]));
    assert.deepEqual(message.tool_calls?.map((entry) => entry.args), [call?.args]);
    const final = await model.invoke([question, request, await getWeather.invoke(call as NonNullable<typeof call>)]);
    assert.match(final.text, /get_weather returned "Sunny, 21 degrees celsius in Oslo"/);
  });

  test("a codex model name switches ChatOpenAI to the Responses API on its own", async () => {
    await chat({ model: "gpt-5-codex" }).invoke("hi");
    assert.deepEqual((server.stats().lastRequest as { input?: unknown }).input, [{ type: "message", role: "user", content: "hi" }]);
  });

  test("structured output over the Responses API", async () => {
    const schema = z.object({ label: z.enum(["bug", "feature", "question"]), title: z.string() });
    const result = await responses().withStructuredOutput(schema).invoke("There is a bug: the exporter crashes");
    assert.equal(schema.parse(result).label, "bug");
  });

  test("built-in tools and previous_response_id are refused with 400", async () => {
    const post = (body: unknown) => fetch(`${server.url}/responses`, { method: "POST", body: JSON.stringify(body) });
    const builtIn = await post({ model: "gpt-4o-mini", input: "search", tools: [{ type: "web_search" }] });
    assert.equal(builtIn.status, 400);
    assert.equal(((await builtIn.json()) as { error: { param: string } }).error.param, "tools[0]");
    const chained = await post({ model: "gpt-4o-mini", input: "again", previous_response_id: "resp_1" });
    assert.equal(chained.status, 400);
  });
});

describe("fault injection", () => {
  test("429 twice, then ChatOpenAI's retries (honouring retry-after) succeed", async () => {
    const before = server.stats().requests;
    server.inject({ status: 429, times: 2, retryAfterSeconds: 0 });
    const reply = await chat({ maxRetries: 2 }).invoke("Retry me");
    assert.match(String(reply.content), /Retry me/);
    assert.equal(server.stats().requests - before, 3);
    assert.equal(server.stats().pendingFaults, 0);
  });

  test("a 429 without retry-after is not retried by LangChain", async () => {
    const before = server.stats().requests;
    server.inject({ status: 429, retryAfterSeconds: null });
    await assert.rejects(chat({ maxRetries: 2 }).invoke("No hint"), (error: Error & { status?: number }) => {
      assert.equal(error.status, 429);
      return true;
    });
    assert.equal(server.stats().requests - before, 1);
  });

  test("an injected 500 surfaces as an API error", async () => {
    server.inject({ status: 500 });
    await assert.rejects(chat().invoke("Boom"), (error: Error & { status?: number }) => {
      assert.equal(error.status, 500);
      return true;
    });
    assert.match(String((await chat().invoke("After the storm")).content), /After the storm/);
  });

  test("a hung request ends with ChatOpenAI's timeout", async () => {
    server.inject({ hang: true });
    await assert.rejects(chat({ timeout: 300 }).invoke("Hello?"), /timed out|timeout/i);
  });

  test("a stream dropped midway surfaces as an error after some chunks", async () => {
    server.inject({ dropMidStream: true, afterChunks: 3 });
    let received = "";
    await assert.rejects(async () => {
      for await (const chunk of await chat().stream("Tell me something long enough to be cut")) received += String(chunk.content);
    });
    assert.ok(received.length > 0, "no chunk arrived before the drop");
    assert.ok(!received.includes("local model endpoint"), "the whole answer arrived");
  });

  test("a non-streamed drop surfaces as an error", async () => {
    server.inject({ dropMidStream: true });
    await assert.rejects(chat().invoke("Cut me off"));
  });

  test("model-name directives fail from another process without code access", async () => {
    await assert.rejects(chat({ model: "gpt-4o-mini+fail-500" }).invoke("x"), (error: Error & { status?: number }) => error.status === 500);
    const before = server.stats().requests;
    const reply = await chat({ model: "gpt-4o-mini+fail-429x1+retry-after-0", maxRetries: 1 }).invoke("Cycle");
    assert.match(String(reply.content), /Cycle/);
    assert.equal(server.stats().requests - before, 2);
    // The cycle restarts: the next identical request fails once again.
    await assert.rejects(chat({ model: "gpt-4o-mini+fail-429x1+retry-after-0" }).invoke("Cycle"));
  });

  test("the x-local-fault header and the control route inject faults too", async () => {
    const headered = chat({ configuration: { baseURL: server.url, defaultHeaders: { "x-local-fault": "fail-503" } } });
    await assert.rejects(headered.invoke("x"), (error: Error & { status?: number }) => error.status === 503);

    const control = new URL("/_local/faults", server.url);
    const queued = await fetch(control, { method: "POST", body: JSON.stringify({ status: 500, times: 1 }) });
    assert.deepEqual(await queued.json(), { pendingFaults: 1 });
    await assert.rejects(chat().invoke("x"), (error: Error & { status?: number }) => error.status === 500);
    const bad = await fetch(control, { method: "POST", body: JSON.stringify({ status: 200 }) });
    assert.equal(bad.status, 400);
  });
});

describe("raw HTTP", () => {
  const post = (body: string, path = "/v1/chat/completions") =>
    fetch(new URL(path, server.url), { method: "POST", headers: { "content-type": "application/json" }, body });

  async function expectError(response: Response, status: number, param?: string | null) {
    assert.equal(response.status, status);
    const body = (await response.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
    assert.ok(body.error.message.length > 0);
    if (param !== undefined) assert.equal(body.error.param, param);
  }

  test("malformed requests get 400 in OpenAI's error shape", async () => {
    await expectError(await post("{not json"), 400, null);
    await expectError(await post(JSON.stringify({ model: "gpt-4o-mini" })), 400, "messages");
    await expectError(await post(JSON.stringify({ messages: [{ role: "user", content: "hi" }] })), 400, "model");
    await expectError(await post(JSON.stringify({ model: "m", messages: [] })), 400, "messages");
    await expectError(await post(JSON.stringify({ model: "m", messages: [{ role: "wizard", content: "hi" }] })), 400, "messages[0].role");
    await expectError(await post(JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], response_format: { type: "json_object" } })), 400, "messages");
    await expectError(await post(JSON.stringify({ model: "m+explode", messages: [{ role: "user", content: "hi" }] })), 400, "model");
    await expectError(await post(JSON.stringify({ model: "m", messages: [{ role: "tool", content: "42" }] })), 400, "messages[0].tool_call_id");
    await expectError(await post("{}", "/v1/nope"), 404);
  });

  test("oversized bodies are refused with 413", async () => {
    const small = await startModelServer({ port: 0, maxBodyBytes: 1024 });
    try {
      const response = await fetch(new URL("chat/completions", `${small.url}/`), {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(4096) }] }),
      });
      await expectError(response, 413);
    } finally {
      await small.close();
    }
  });

  test("plain and streamed responses have OpenAI's fields", async () => {
    const request = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Fields please" }] };
    const plain = (await (await post(JSON.stringify(request))).json()) as Record<string, unknown>;
    assert.equal(plain.object, "chat.completion");
    assert.match(String(plain.id), /^chatcmpl-/);
    assert.equal(typeof plain.created, "number");
    assert.deepEqual(Object.keys(plain.usage as object).slice(0, 3), ["prompt_tokens", "completion_tokens", "total_tokens"]);

    const response = await post(JSON.stringify({ ...request, stream: true, stream_options: { include_usage: true } }));
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = (await response.text()).split("\n\n").filter((event) => event !== "");
    assert.ok(events.every((event) => event.startsWith("data: ")));
    assert.equal(events.at(-1), "data: [DONE]");
    const payloads = events.slice(0, -1).map((event) => JSON.parse(event.slice(6)) as { object: string; choices: { finish_reason: string | null }[]; usage: unknown });
    assert.ok(payloads.every((payload) => payload.object === "chat.completion.chunk"));
    const last = payloads.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.equal((last?.usage as { total_tokens: number }).total_tokens, (plain.usage as { total_tokens: number }).total_tokens);
    assert.equal(payloads.at(-2)?.choices[0]?.finish_reason, "stop");
  });

  test("max_tokens truncates with finish_reason length; stop sequences cut the text", async () => {
    const base = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Count the words here" }] };
    const limited = (await (await post(JSON.stringify({ ...base, max_tokens: 3 }))).json()) as { choices: { message: { content: string }; finish_reason: string }[]; usage: { completion_tokens: number } };
    assert.equal(limited.choices[0]?.finish_reason, "length");
    assert.equal(limited.usage.completion_tokens, 3);
    const stopped = (await (await post(JSON.stringify({ ...base, stop: ["said"] }))).json()) as { choices: { message: { content: string } }[] };
    assert.equal(stopped.choices[0]?.message.content, "[local-model] You ");
  });

  test("models and health routes answer", async () => {
    const models = (await (await fetch(`${server.url}/models`)).json()) as { object: string; data: { id: string }[] };
    assert.equal(models.object, "list");
    assert.ok(models.data.some((model) => model.id === "gpt-4o-mini"));
    const health = await fetch(new URL("/health", server.url));
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, "ok");
  });
});

describe("hostile requests", () => {
  interface Answer {
    status: number;
    body: string;
  }
  function request(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: server.port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  const json = { "content-type": "application/json" };
  const completion = (fields: Record<string, unknown>) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Fill this in" }], ...fields });
  const forcedTool = (parameters: unknown) => ({ tools: [{ type: "function", function: { name: "fill", parameters } }], tool_choice: "required" });
  function openAIError(answer: Answer): { message: string; param: string | null; code: string | null } {
    return (JSON.parse(answer.body) as { error: { message: string; param: string | null; code: string | null } }).error;
  }

  test("a schema asking for more than one reply may hold gets 400, and the server keeps answering", async () => {
    // 300 bytes of schema asking for a million values: this used to take ~1 GB, and 3000 x 3000 exhausted the heap.
    const nested = { type: "object", properties: { rows: { type: "array", minItems: 1000, items: { type: "array", minItems: 1000, items: { type: "string" } } } }, required: ["rows"] };
    const tooMany = await request("POST", "/v1/chat/completions", json, completion(forcedTool(nested)));
    assert.equal(tooMany.status, 400);
    assert.equal(openAIError(tooMany).param, "tools");
    assert.equal(openAIError(tooMany).code, "schema_too_large");
    assert.match(openAIError(tooMany).message, /^The parameters schema of tool 'fill' is too large/);

    const longString = { type: "object", properties: { text: { type: "string", minLength: 1_000_000_000 } }, required: ["text"] };
    const tooLong = await request("POST", "/v1/chat/completions", json, completion(forcedTool(longString)));
    assert.equal(tooLong.status, 400);
    assert.match(openAIError(tooLong).message, /more than 1000000 characters/);

    // Copies of one schema default count for every place they land in the reply.
    const copies = { type: "object", properties: { rows: { type: "array", minItems: 1000, items: { type: "string", default: "x".repeat(10_000) } } }, required: ["rows"] };
    const structured = await request("POST", "/v1/chat/completions", json, completion({ response_format: { type: "json_schema", json_schema: { name: "copies", schema: copies } } }));
    assert.equal(structured.status, 400);
    assert.equal(openAIError(structured).param, "response_format");
    const responses = await request("POST", "/v1/responses", json, JSON.stringify({ model: "gpt-4o-mini", input: "Fill this in", text: { format: { type: "json_schema", name: "copies", schema: copies } } }));
    assert.equal(responses.status, 400);
    assert.equal(openAIError(responses).param, "text.format");

    // The budget is per request, not per choice: 128 choices of a schema that fits once would not.
    const wide = { type: "object", properties: { rows: { type: "array", minItems: 1000, items: { type: "integer" } } }, required: ["rows"] };
    const once = await request("POST", "/v1/chat/completions", json, completion(forcedTool(wide)));
    assert.equal(once.status, 200);
    const repeated = await request("POST", "/v1/chat/completions", json, completion({ ...forcedTool(wide), n: 128 }));
    assert.equal(repeated.status, 400);
    assert.match(openAIError(repeated).message, /more than 100000 steps/);

    const after = await request("POST", "/v1/chat/completions", json, completion(forcedTool({ type: "object", properties: { rows: { type: "array", minItems: 3, items: { type: "string" } } } })));
    assert.equal(after.status, 200);
    const reply = JSON.parse(after.body) as { choices: { message: { tool_calls: { function: { arguments: string } }[] } }[] };
    assert.deepEqual(JSON.parse(reply.choices[0]?.message.tool_calls[0]?.function.arguments ?? ""), { rows: ["Fill this in", "Fill this in", "Fill this in"] });
  });

  // A hang detector, not a speed check: this takes milliseconds, and the quadratic pattern it
  // replaced blocked the event loop for minutes (40 KB took 2 s; 400 KB takes 100 times longer).
  test("a long message without an address is scanned once for an email field", { timeout: 20_000 }, async () => {
    const schema = { type: "object", properties: { email: { type: "string" } }, required: ["email"] };
    const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `${"a".repeat(400_000)} then mail ops@example.org` }], ...forcedTool(schema) });
    const answer = await request("POST", "/v1/chat/completions", json, body);
    assert.equal(answer.status, 200);
    assert.match(answer.body, /ops@example\.org/);
  });

  test("writes a browser marks as cross-origin are refused; OpenAI clients and same-origin writes are not", async () => {
    const fault = JSON.stringify({ hang: true, times: 5 });
    assert.equal((await request("POST", "/_local/faults", { "content-type": "text/plain", origin: "https://evil.example", "sec-fetch-site": "cross-site" }, fault)).status, 403);
    assert.equal((await request("POST", "/_local/faults", { "content-type": "text/plain", "sec-fetch-site": "cross-site" }, fault)).status, 403);
    assert.equal((await request("POST", "/_local/faults", { origin: "null" }, fault)).status, 403);
    assert.equal(server.stats().pendingFaults, 0);
    const refused = await request("POST", "/v1/chat/completions", { ...json, origin: "https://evil.example" }, completion({}));
    assert.equal(refused.status, 403);
    assert.match(openAIError(refused).message, /another origin/);

    server.inject({ status: 500 });
    assert.equal((await request("DELETE", "/_local/faults", { "sec-fetch-site": "same-site" })).status, 403);
    assert.equal(server.stats().pendingFaults, 1);
    assert.equal((await request("DELETE", "/_local/faults", { origin: `http://127.0.0.1:${server.port}` })).status, 200);
    assert.equal(server.stats().pendingFaults, 0);
    // ChatOpenAI goes through Node's fetch, which sends neither Origin nor Sec-Fetch-Site.
    assert.match(String((await chat().invoke("Still served")).content), /Still served/);
  });

  test("a Host that does not name this machine (DNS rebinding) cannot read the last prompt", async () => {
    await chat().invoke("A private prompt");
    const rebound = await request("GET", "/_local/stats", { host: `rebind.attacker.test:${server.port}` });
    assert.equal(rebound.status, 403);
    assert.doesNotMatch(rebound.body, /private prompt/);
    assert.equal((await request("GET", "/health", { host: "evil.example" })).status, 403);
    const local = await request("GET", "/_local/stats", { host: `localhost:${server.port}` });
    assert.equal(local.status, 200);
    assert.match(local.body, /A private prompt/);
  });

  test("malformed percent-encoding and request targets get 400, not a 500", async () => {
    for (const path of ["/v1/models/%E0%A4%A", "http://[::1/v1/models", "http://%/v1/models"]) {
      const answer = await request("GET", path);
      assert.equal(answer.status, 400, path);
      assert.ok(openAIError(answer).message.length > 0);
    }
    // A $ref that cannot be decoded points nowhere, like any other unresolvable one.
    const schema = { type: "object", properties: { city: { $ref: "#/%E0%A4%A", type: "string" } }, required: ["city"] };
    assert.equal((await request("POST", "/v1/chat/completions", json, completion(forcedTool(schema)))).status, 200);
  });

  test("delays Node cannot wait for are refused with 400 naming them", async () => {
    const latency = await request("POST", "/v1/chat/completions", json, completion({ model: "gpt-4o-mini+latency-3000000000" }));
    assert.equal(latency.status, 400);
    assert.match(openAIError(latency).message, /'latency-3000000000'/);
    const tokenDelay = await request("POST", "/v1/chat/completions", { ...json, "x-local-fault": "token-delay-99999999999" }, completion({ stream: true }));
    assert.equal(tokenDelay.status, 400);
    assert.match(openAIError(tokenDelay).message, /'token-delay-99999999999'/);
    assert.equal((await request("POST", "/_local/faults", json, JSON.stringify({ latencyMs: 3_000_000_000 }))).status, 400);
    assert.throws(() => server.inject({ latencyMs: 3_000_000_000 }), RangeError);
    assert.equal(server.stats().pendingFaults, 0);
    await assert.rejects(startModelServer({ port: 0, latencyMs: 2 ** 31 }), RangeError);
    // The largest delay Node can wait for is still accepted.
    assert.equal((await request("POST", "/_local/faults", json, JSON.stringify({ latencyMs: 2 ** 31 - 1 }))).status, 200);
  });
});
