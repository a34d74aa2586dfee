// Token streaming across two processes: this test process is the client
// (read_chat_stream), server.ts the chat service. Every stream must leave one
// complete, isolated tree whose recorded outputs are exactly what the client
// received, also at 200 streams at once; a client that hangs up mid-stream
// must leave every run on both sides ended as cancelled.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { traceable } from "langsmith/traceable";
import { verifyTrace, formatReport } from "@tracing-patterns/setup";
import { chatStreamClient, joinTokens, SERVER_SCRIPT, startProcess, type StartedProcess } from "../index.js";
import { byName, isolateEnv, metadataOf, readProjectTraces, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;
let client: Client;

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("client", "streaming-client"));
  client = new Client({ apiUrl: stack.traces.url, apiKey: "local" });
});

after(async () => {
  await stack?.close();
});

async function startChatServer(project: string, extra: Record<string, string> = {}): Promise<StartedProcess> {
  return startProcess(SERVER_SCRIPT, {
    env: { ...process.env, ...stack.env("chat", project, extra), LANGSMITH_PROJECT: project },
    ready: /chat listening on (\S+)/,
  });
}

/** The shape every complete stream must have, client run at the root. */
const STREAM_RUNS = ["read_chat_stream", "POST /chat/stream", "stream_answer", "ChatOpenAI"];

describe("200 concurrent streaming requests", () => {
  test("each is one complete, isolated trace whose outputs equal what its client received", async () => {
    // Client and server write to one project so a single query reads every trace back.
    const project = "streaming-200";
    process.env.LANGSMITH_PROJECT = project;
    const server = await startChatServer(project, { OPENAI_MODEL: "gpt-4o-mini+token-delay-2" });
    try {
      const read = chatStreamClient(`${server.ready}/chat/stream`);
      const received = new Map<string, string>();
      const questions = Array.from({ length: 200 }, (_, i) => `Question ${i}: what does stream ${i} carry?`);
      await Promise.all(
        questions.map(async (question) => {
          let text = "";
          for await (const token of read({ question })) text += token;
          received.set(question, text);
        }),
      );
      assert.equal(received.size, 200);
      // Each answer quotes its question, so a token from another stream would show up here.
      for (const [question, text] of received) assert.ok(text.includes(question), `${question} -> ${text}`);

      assert.equal(await server.stop(), 0, server.output());
      await RunTree.getSharedClient().awaitPendingTraceBatches();
      const traces = await readProjectTraces(client, project);
      assert.equal(traces.size, 200);
      const failures: string[] = [];
      for (const [traceId, runs] of traces) {
        const report = verifyTrace(runs, { traceId, rootName: "read_chat_stream", runNames: STREAM_RUNS, services: ["client", "chat"], minRuns: 4 });
        if (!report.ok || runs.length !== 4) failures.push(formatReport(report));
        const root = byName(runs, "read_chat_stream");
        const question = (root.inputs as { question: string }).question;
        const clientOut = root.outputs as { text: string; tokens: number };
        const serverOut = byName(runs, "stream_answer").outputs as { text: string; tokens: number };
        const llm = byName(runs, "ChatOpenAI");
        const llmText = (llm.outputs as { generations: Array<Array<{ text: string }>> }).generations[0]?.[0]?.text;
        const got = received.get(question);
        if (clientOut.text !== got || serverOut.text !== got || llmText !== got) failures.push(`${traceId}: recorded outputs differ from what the client received for "${question}"`);
        if (clientOut.tokens !== serverOut.tokens) failures.push(`${traceId}: ${clientOut.tokens} tokens received, ${serverOut.tokens} sent`);
        if ((byName(runs, "stream_answer").inputs as { question: string }).question !== question) failures.push(`${traceId}: server run answered another question`);
        for (const name of ["read_chat_stream", "stream_answer"]) {
          const run = byName(runs, name);
          if (typeof metadataOf(run).time_to_first_token_ms !== "number") failures.push(`${traceId}: ${name} has no time_to_first_token_ms`);
          const events = (run.events ?? []).filter((e) => e.name === "new_token").length;
          if (events !== clientOut.tokens) failures.push(`${traceId}: ${name} has ${events} new_token events for ${clientOut.tokens} tokens`);
        }
        if (!(llm.events ?? []).some((e) => e.name === "new_token")) failures.push(`${traceId}: the LLM run has no new_token events`);
      }
      assert.deepEqual(failures, []);
    } finally {
      await server.stop("SIGKILL");
    }
  });
});

describe("a client that disconnects mid-stream", () => {
  test("ends the runs on both sides as cancelled, with the partial text recorded", async () => {
    const project = "streaming-disconnect";
    process.env.LANGSMITH_PROJECT = project;
    // Slow enough that the server still has tokens to send when the client hangs up.
    const server = await startChatServer(project, { OPENAI_MODEL: "gpt-4o-mini+token-delay-40" });
    try {
      const read = chatStreamClient(`${server.ready}/chat/stream`);
      let text = "";
      let count = 0;
      for await (const token of read({ question: "Tell me everything about cancellation in distributed traces." })) {
        text += token;
        if (++count === 3) break;
      }
      assert.equal(await server.stop(), 0, server.output());
      await RunTree.getSharedClient().awaitPendingTraceBatches();
      const [runs] = [...(await readProjectTraces(client, project)).values()];
      assert.ok(runs);
      const report = verifyTrace(runs, { rootName: "read_chat_stream", runNames: STREAM_RUNS, services: ["client", "chat"] });
      assert.ok(report.ok, formatReport(report));
      assert.equal(report.errorCount, 4, "every run on both sides ended with an error");

      const clientRun = byName(runs, "read_chat_stream");
      assert.equal(clientRun.error, "Cancelled");
      assert.deepEqual(clientRun.outputs, { text, tokens: 3 });
      assert.equal(byName(runs, "POST /chat/stream").error, "client disconnected");
      assert.equal(metadataOf(byName(runs, "POST /chat/stream"))["http.client_disconnected"], true);
      const serverStream = byName(runs, "stream_answer");
      assert.equal(serverStream.error, "Cancelled: client disconnected");
      // The server got at least as far as the client read, and stopped well before the end.
      const sent = serverStream.outputs as { text: string; tokens: number };
      assert.ok(sent.text.startsWith(text), `${sent.text} / ${text}`);
      assert.ok(sent.tokens < 10, `the server kept streaming after the disconnect: ${sent.tokens} tokens`);
      assert.match(byName(runs, "ChatOpenAI").error ?? "", /abort/i);
    } finally {
      await server.stop("SIGKILL");
    }
  });
});

describe("traced async generators in one process (the SDK's own behaviour)", () => {
  const words = async function* (): AsyncGenerator<string> {
    for (const w of ["one", " two", " three", " four"]) yield w;
  };

  async function recorded(run: () => Promise<unknown>, name: string): Promise<Run> {
    const project = `generators-${name}`;
    process.env.LANGSMITH_PROJECT = project;
    await run();
    await RunTree.getSharedClient().awaitPendingTraceBatches();
    const all = [...(await readProjectTraces(client, project)).values()].flat();
    return byName(all, name);
  }

  test("a generator's output is the array of chunks by default, and the aggregator's value with one", async () => {
    const plain = await recorded(async () => {
      for await (const chunk of traceable(words, { name: "plain" })()) void chunk;
    }, "plain");
    assert.deepEqual(plain.outputs, { outputs: ["one", " two", " three", " four"] });
    const aggregated = await recorded(async () => {
      for await (const chunk of traceable(words, { name: "aggregated", aggregator: joinTokens })()) void chunk;
    }, "aggregated");
    assert.deepEqual(aggregated.outputs, { text: "one two three four", tokens: 4 });
  });

  test("returning an object that holds a stream records {} (langsmith-sdk#2274); returning the stream fixes it", async () => {
    class StreamResult {
      readonly #stream = words();
      get textStream(): AsyncGenerator<string> {
        return this.#stream;
      }
    }
    const broken = await recorded(async () => {
      const result = await traceable(async () => new StreamResult(), { name: "holds_stream" })();
      for await (const chunk of result.textStream) void chunk;
    }, "holds_stream");
    assert.deepEqual(broken.outputs, { outputs: {} });
    const fixed = await recorded(async () => {
      const streamAnswer = traceable(
        async function* () {
          yield* new StreamResult().textStream;
        },
        { name: "yields_stream", aggregator: joinTokens },
      );
      for await (const chunk of streamAnswer()) void chunk;
    }, "yields_stream");
    assert.deepEqual(fixed.outputs, { text: "one two three four", tokens: 4 });
  });

  test("break out of a traced generator ends its run as Cancelled; stopping inside the generator ends it ok", async () => {
    const broken = await recorded(async () => {
      for await (const chunk of traceable(words, { name: "consumer_breaks" })()) if (chunk === " two") break;
    }, "consumer_breaks");
    assert.equal(broken.error, "Cancelled");
    assert.deepEqual(broken.outputs, { outputs: ["one", " two"] });
    const fixed = await recorded(async () => {
      const untilTwo = traceable(
        async function* () {
          for await (const chunk of words()) {
            yield chunk;
            if (chunk === " two") return;
          }
        },
        { name: "generator_stops" },
      );
      for await (const chunk of untilTwo()) void chunk;
    }, "generator_stops");
    assert.equal(fixed.error ?? undefined, undefined);
    assert.deepEqual(fixed.outputs, { outputs: ["one", " two"] });
  });
});
