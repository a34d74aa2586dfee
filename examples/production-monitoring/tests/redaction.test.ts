// Redaction end to end, across both services: the secrets a request carries
// (an email, provider API keys, a GitHub token, a bearer JWT, our own session
// token) and the email the accounts service returns reach the client, streamed
// and not, but none of them reaches any column of any run the trace server
// stored: inputs, outputs, metadata, errors, events (streamed tokens) and tags.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { findAccount } from "../accounts.js";
import { chat, startTestStack, storedRunTexts, waitForSettledTraces, type TestStack } from "./helpers.js";

let stack: TestStack | undefined;

afterEach(async () => {
  assert.deepEqual(await stack?.close(), { assistant: 0, accounts: 0 });
  stack = undefined;
});

const SECRETS = {
  email: "jane.doe+vip@acme-corp.io",
  openaiKey: "sk-proj-Q3vX9aLk2mN8pR4tY7wZ1bC5dF0gH6jK",
  githubToken: "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
  jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
  sessionToken: "tok_9f8e7d6c5b4a39281706",
  accountEmail: findAccount("cust-4242")!.email,
};

for (const [what, env] of [
  ["sampled in (rate 1)", {}],
  // Every request held for the tail decision, then kept as slow: the runs go out through the tail buffer.
  ["held, then kept by the tail decision (rate 0, TRACE_SLOW_MS=0)", { TRACE_SAMPLE_RATE: "0", TRACE_SLOW_MS: "0" }],
] as const) {
  test(`${what}: no secret of a request, or of the downstream account it looked up, is in any stored run, streamed token events included`, { timeout: 120_000 }, async () => {
    await checkNoSecretStored(await startTestStack("production-monitoring-redaction", {}, env));
  });
}

async function checkNoSecretStored(started: TestStack): Promise<void> {
  stack = started;
  const s = started;
  const message =
    `What plan is account cust-4242 on? I am ${SECRETS.email}; my key is ${SECRETS.openaiKey}, ` +
    `github ${SECRETS.githubToken}, Authorization: Bearer ${SECRETS.jwt}, session ${SECRETS.sessionToken}.`;
  const answers = await Promise.all([
    chat(s.services.urls.assistant, message),
    chat(s.services.urls.assistant, message, { stream: true }),
    chat(s.services.urls.assistant, message, { fault: "fail" }),
  ]);
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 502]);
  // The model echoes the question and the tool result: the client does get the secrets back.
  for (const answer of answers.slice(0, 2)) {
    assert.ok(answer.body.includes(SECRETS.sessionToken), answer.body);
    assert.ok(answer.body.includes(SECRETS.accountEmail), answer.body);
  }
  assert.match(answers[1]!.body, /^data: \{"token"/m);

  // Each trace is complete (its runs all ended, none still arriving) before it is searched.
  const ids = answers.map((a) => a.traceId);
  await waitForSettledTraces(s, ids);

  const rows = storedRunTexts(s);
  const names = new Set(rows.map((r) => r.name));
  for (const name of ["POST /chat", "answer", "ChatOpenAI", "lookup_account", "GET /accounts/:id", "load_account"]) assert.ok(names.has(name), `${name} stored: ${[...names].join(", ")}`);
  for (const row of rows) {
    const leaked = Object.entries(SECRETS).filter(([, secret]) => row.text.includes(secret)).map(([what]) => what);
    assert.deepEqual(leaked, [], `${row.name} holds ${leaked.join(", ")}: ${row.text.slice(0, 2000)}`);
  }
  // Redacted, not dropped: the placeholders stand where the values were, and the
  // streamed model call kept its token events (without their text).
  const all = rows.map((r) => r.text).join("\n");
  for (const placeholder of ["[email]", "[SECRET_DETECTED]", "[token]"]) assert.ok(all.includes(placeholder), `${placeholder} in the stored runs`);
  assert.ok(rows.some((r) => r.name === "ChatOpenAI" && r.text.includes("new_token")), "the model runs recorded streamed token events");
}
