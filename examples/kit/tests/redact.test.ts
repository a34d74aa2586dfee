// Redaction against the real SDK, LangChain's ChatOpenAI (streaming from the
// local model, which echoes the question) and the local trace server: the
// secrets a request carries are searched for in every stored column of every
// stored run (inputs, outputs, error, metadata, events, tags, serialized), and
// in anything the server refused. The SDK's anonymizer alone is run next to the
// kit's client to show the fields it does not reach.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import { Client } from "langsmith";
import { getCurrentRunTree, traceable } from "langsmith/traceable";
import { startModelServer, startTraceServer, type ModelServerHandle, type TraceServerHandle } from "@tracing-patterns/setup";
import { REDACTION_RULES, createRedactor, redactingClient } from "../index.js";
import { isolateFromLangSmithEnv } from "./helpers.js";

isolateFromLangSmithEnv();
// traceable and LangChain read it per call; the clients below say where runs go.
process.env.LANGSMITH_TRACING = "true";

let traceServer: TraceServerHandle;
let model: ModelServerHandle;

before(async () => {
  traceServer = await startTraceServer({ port: 0, viewer: false });
  model = await startModelServer({ port: 0 });
});

after(async () => {
  await model?.close();
  await traceServer?.close();
});

/** Fresh per test, so a value found in the store can only come from that test. */
function secrets() {
  const alnum = (n: number) => randomBytes(n * 2).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, n);
  // Upper, lower and digit guaranteed, as a real random key has them in practice.
  const opaque = `Q7v${alnum(40)}`;
  return {
    email: `dana.${alnum(6).toLowerCase()}@example.org`,
    openAiKey: `sk-proj-${alnum(48)}`,
    bearer: alnum(36),
    opaque,
  };
}
type Secrets = ReturnType<typeof secrets>;

/**
 * One traced request touching every place a secret ends up: inputs, a tool's output, metadata,
 * tags, a custom event, a streamed ChatOpenAI call, a streamed `llm` generator, an error.
 */
async function tracedRequest(client: Client, s: Secrets, projectName: string): Promise<string> {
  const chat = new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "local", streaming: true, configuration: { baseURL: model.url } });
  const lookup = traceable(async (_query: { email: string }) => ({ apiKey: s.openAiKey, note: `token ${s.opaque}` }), { name: "lookup_account", run_type: "tool", client, project_name: projectName });
  const streamTokens = traceable(
    async function* (_prompt: string) {
      for (const piece of ["Your key is ", s.openAiKey, ", mail ", s.email]) yield piece;
    },
    { name: "stream_tokens", run_type: "llm", client, project_name: projectName },
  );
  const failing = traceable(
    async () => {
      throw new Error(`upstream refused Authorization: Bearer ${s.bearer}`);
    },
    { name: "call_upstream", client, project_name: projectName },
  );
  const handler = traceable(
    async (request: { question: string; headers: Record<string, string> }) => {
      const run = getCurrentRunTree();
      run.addEvent({ name: "user_context", kwargs: { email: s.email, key: s.opaque } });
      await lookup({ email: s.email });
      let streamed = "";
      for await (const chunk of await chat.stream(request.question)) streamed += String(chunk.content);
      for await (const piece of streamTokens(request.question)) streamed += piece;
      await failing().catch(() => undefined);
      return { answer: streamed };
    },
    { name: "handle_request", client, project_name: projectName, tags: [`user:${s.email}`], metadata: { user_email: s.email, session_key: s.opaque } },
  );
  await handler({
    question: `My email is ${s.email} and my key is ${s.openAiKey}; Bearer ${s.bearer}`,
    headers: { authorization: `Bearer ${s.bearer}` },
  });
  await client.awaitPendingTraceBatches();
  return projectName;
}

interface StoredRow {
  name: string;
  run_type: string;
  events: string | null;
  tags: string | null;
  text: string;
}

/** Every column of every run stored in the project, as the server keeps it, plus every refused payload. */
function storedRows(projectName: string): StoredRow[] {
  const rows = traceServer.store.db
    .prepare("SELECT r.* FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?")
    .all(projectName) as Array<Record<string, unknown>>;
  return rows.map((row) => ({
    name: String(row.name),
    run_type: String(row.run_type),
    events: row.events as string | null,
    tags: row.tags as string | null,
    text: JSON.stringify(row),
  }));
}

function leaks(text: string, s: Secrets): string[] {
  return Object.entries(s)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => name);
}

describe("redactingClient", () => {
  test("no secret of a traced request reaches any stored run, streamed tokens and events included", async () => {
    const s = secrets();
    const project = await tracedRequest(redactingClient({ apiUrl: traceServer.url, apiKey: "local" }), s, "redact-kit");
    const rows = storedRows(project);
    const names = rows.map((r) => r.name).sort();
    assert.deepEqual(names, ["ChatOpenAI", "call_upstream", "handle_request", "lookup_account", "stream_tokens"]);
    for (const row of rows) assert.deepEqual(leaks(row.text, s), [], `${row.name} holds a secret: ${row.text}`);
    const refused = traceServer.store.db.prepare("SELECT payload FROM rejections").all();
    assert.deepEqual(leaks(JSON.stringify(refused), s), []);

    // Redacted, not dropped: the placeholders are where the values were.
    const root = rows.find((r) => r.name === "handle_request");
    assert.ok(root?.events?.includes('"user_context"') && root.events.includes("[email]"), `custom event kept, redacted: ${root?.events}`);
    assert.ok(root?.tags?.includes("user:[email]"), `tag redacted: ${root?.tags}`);
    const llmRuns = rows.filter((r) => r.run_type === "llm");
    assert.equal(llmRuns.length, 2);
    for (const run of llmRuns) {
      const events = JSON.parse(run.events ?? "[]") as Array<{ name: string }>;
      assert.ok(events.filter((e) => e.name === "new_token").length >= 2, `${run.name} streamed: ${run.events}`);
    }
    assert.match(rows.find((r) => r.name === "call_upstream")?.text ?? "", /Bearer \[SECRET_DETECTED\]/);
    assert.match(root?.text ?? "", /\[SECRET_DETECTED\]/);
  });

  test("the SDK's anonymizer alone, same rules: events and tags are sent as they are", async () => {
    const s = secrets();
    const project = await tracedRequest(new Client({ apiUrl: traceServer.url, apiKey: "local", anonymizer: createRedactor() }), s, "redact-sdk-only");
    const root = storedRows(project).find((r) => r.name === "handle_request");
    assert.ok(root, "root stored");
    assert.deepEqual(leaks(root.events ?? "", s), ["email", "opaque"], "the custom event leaks");
    assert.deepEqual(leaks(root.tags ?? "", s), ["email"], "the tag leaks");
    const inputsOutputsMetadata = JSON.stringify(traceServer.store.db.prepare("SELECT r.inputs, r.outputs, r.extra, r.error FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?").all(project));
    assert.deepEqual(leaks(inputsOutputsMetadata, s), [], "what the anonymizer reaches is redacted");
  });

  test("a hideInputs filter runs first, then the rules; the SDK alone lets the filter replace them", async () => {
    const s = secrets();
    const inputs = { password: "hunter2-but-longer", note: `reach me at ${s.email}` };
    const send = async (client: Client, projectName: string) => {
      await traceable(async (_input: typeof inputs) => "ok", { name: "signup", client, project_name: projectName })(inputs);
      await client.awaitPendingTraceBatches();
      return storedRows(projectName)[0]?.text ?? "";
    };
    const dropPassword = ({ password: _password, ...rest }: Record<string, unknown>) => rest;
    const kit = await send(redactingClient({ apiUrl: traceServer.url, apiKey: "local" }, { hideInputs: dropPassword }), "redact-hide-kit");
    assert.ok(kit.includes("reach me at [email]") && !kit.includes("hunter2"), kit);
    const sdk = await send(new Client({ apiUrl: traceServer.url, apiKey: "local", anonymizer: createRedactor(), hideInputs: dropPassword }), "redact-hide-sdk");
    assert.ok(sdk.includes(s.email) && !sdk.includes("hunter2"), sdk);
  });
});

describe("REDACTION_RULES", () => {
  const redact = createRedactor();

  test("redacts emails, provider keys, bearer tokens, named secrets and opaque keys", () => {
    const out = redact({
      a: "write to ops.team+alerts@mail.example.co.uk today",
      b: "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
      c: "Authorization: Bearer abc.def-ghi_jkl~mno",
      d: "key k9Jd82LmQpZ0xYvT4nRb7sWc1aEfGhUi3o end",
      e: "postgres://app:pa55word@db:5432/app",
      nested: { deeper: [{ deepest: "x@y.io" }] },
    });
    assert.deepEqual(out, {
      a: "write to [email] today",
      b: "OPENAI_API_KEY=[SECRET_DETECTED]",
      c: "Authorization: Bearer [SECRET_DETECTED]",
      d: "key [secret] end",
      e: "postgres://app:[SECRET_DETECTED]@db:5432/app",
      nested: { deeper: [{ deepest: "[email]" }] },
    });
  });

  test("leaves ids, digests, numbers and prose alone", () => {
    const kept = {
      id: "0192f1c4-7a3e-7000-8000-26d7600dfcb1",
      sha: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      dotted: "20250102T030405678000Z0192f1c4-7a3e-7000-8000-26d7600dfcb1",
      prose: "The retriever returned 3 documents about tokens and keys.",
      count: 42,
    };
    assert.deepEqual(redact(kept), kept);
  });

  test("a megabyte-long token is one pass, not one per character", () => {
    const big = "a1B".repeat(350_000);
    const started = performance.now();
    assert.deepEqual(redact({ big }), { big: "[secret]" });
    // Generous: a quadratic scan of 1 MB takes minutes.
    assert.ok(performance.now() - started < 10_000);
  });

  test("is extendable and refuses an empty rule list", () => {
    const withTicket = createRedactor({ rules: [...REDACTION_RULES, { pattern: /TICKET-\d+/g, replace: "[ticket]" }] });
    assert.deepEqual(withTicket({ t: "see TICKET-1234" }), { t: "see [ticket]" });
    assert.throws(() => createRedactor({ rules: [] }), RangeError);
  });
});
