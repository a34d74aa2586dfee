// ensureLocalStack / stopLocalStack with real servers on ephemeral ports.
import { afterEach, test } from "node:test";
import assert from "node:assert/strict";
import {
  ensureLocalStack,
  loadConfig,
  startApp,
  startModelServer,
  startTraceServer,
  stopLocalStack,
} from "@tracing-patterns/setup";

function config(env: NodeJS.ProcessEnv) {
  return loadConfig({ env, envFile: false, rootDir: "/nonexistent" });
}

const EPHEMERAL = { TRACE_SERVER_PORT: "0", MODEL_SERVER_PORT: "0" };

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

afterEach(() => stopLocalStack());

test("starts both local servers, reuses them on the next call, and stop closes them", async () => {
  const cfg = config(EPHEMERAL);
  const stack = await ensureLocalStack({ config: cfg, apply: false });
  assert.deepEqual(stack.startedHere, { traceServer: true, modelServer: true });
  assert.match(stack.traceServerUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(stack.modelUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.equal(stack.viewerUrl, stack.traceServerUrl);
  assert.equal(stack.config.langsmith.endpoint, stack.traceServerUrl, "the returned config points at what is running");
  assert.equal(stack.config.model.baseURL, stack.modelUrl);
  assert.equal(await answers(`${stack.traceServerUrl}/info`), true);
  assert.equal(await answers(`${stack.modelUrl}/models`), true);

  const again = await ensureLocalStack({ config: cfg, apply: false });
  assert.equal(again.traceServerUrl, stack.traceServerUrl);
  assert.equal(again.modelUrl, stack.modelUrl);
  assert.deepEqual(again.startedHere, { traceServer: true, modelServer: true });

  await stack.stop();
  assert.equal(await answers(`${stack.traceServerUrl}/info`), false);
  assert.equal(await answers(`${stack.modelUrl}/models`), false);
});

test("concurrent calls start one set of servers", async () => {
  const cfg = config(EPHEMERAL);
  const [a, b] = await Promise.all([ensureLocalStack({ config: cfg, apply: false }), ensureLocalStack({ config: cfg, apply: false })]);
  assert.equal(a.traceServerUrl, b.traceServerUrl);
  assert.equal(a.modelUrl, b.modelUrl);
});

test("servers already answering at the configured URLs are reused and left running by stop", async () => {
  const traces = await startTraceServer({ port: 0 });
  const model = await startModelServer({ port: 0 });
  try {
    const stack = await ensureLocalStack({ config: config({ TRACE_SERVER_URL: traces.url, MODEL_SERVER_URL: model.url }), apply: false });
    assert.deepEqual(stack.startedHere, { traceServer: false, modelServer: false });
    assert.equal(stack.traceServerUrl, traces.url);
    assert.equal(stack.modelUrl, model.url);
    await stopLocalStack();
    assert.equal(await answers(`${traces.url}/info`), true);
    assert.equal(await answers(`${model.url}/models`), true);
  } finally {
    await Promise.all([traces.close(), model.close()]);
  }
});

test("something else listening at the trace server or model URL gives an error naming the URL", async () => {
  const impostor = await startApp((_req, res) => {
    res.statusCode = 404;
    res.setHeader("content-type", "text/html");
    res.end("<h1>not here</h1>");
  });
  try {
    await assert.rejects(
      ensureLocalStack({ config: config({ TRACE_SERVER_URL: impostor.url, MODEL_SERVER_PORT: "0" }), apply: false }),
      (error: Error) =>
        error.message.includes(`not a LangSmith-compatible trace server answers at ${impostor.url}`) &&
        error.message.includes("HTTP 404, text/html") &&
        error.message.includes("TRACE_SERVER_PORT"),
    );
    await assert.rejects(
      ensureLocalStack({ config: config({ TRACE_SERVER_PORT: "0", MODEL_SERVER_URL: `${impostor.url}/v1` }), apply: false }),
      (error: Error) => error.message.includes(`not an OpenAI-compatible model endpoint answers at ${impostor.url}/v1`),
    );
  } finally {
    await impostor.close();
  }
});

test("with LangSmith and OpenAI keys nothing is started; mirroring starts only the trace server", async () => {
  const keys = { LANGSMITH_API_KEY: "lsv2_pt_not-a-real-key-0000000000", OPENAI_API_KEY: "sk-not-a-real-key-000000000000" };
  const cloud = await ensureLocalStack({ config: config({ ...keys, ...EPHEMERAL }), apply: false });
  assert.equal(cloud.traceServerUrl, undefined);
  assert.equal(cloud.modelUrl, undefined);
  assert.deepEqual(cloud.startedHere, { traceServer: false, modelServer: false });

  const mirrored = await ensureLocalStack({ config: config({ ...keys, ...EPHEMERAL, MIRROR_TO_LOCAL: "true" }), apply: false });
  assert.equal(mirrored.startedHere.traceServer, true);
  assert.equal(mirrored.modelUrl, undefined);
  assert.deepEqual(
    mirrored.config.langsmith.runsEndpoints?.map((r) => r.api_url),
    ["https://api.smith.langchain.com", mirrored.traceServerUrl],
    "the mirror replica points at the server actually started",
  );
});

test("by default the actual URLs are applied to process.env", async () => {
  const saved = { ...process.env };
  try {
    const stack = await ensureLocalStack({ config: config(EPHEMERAL) });
    assert.equal(process.env.LANGSMITH_ENDPOINT, stack.traceServerUrl);
    assert.equal(process.env.TRACE_SERVER_URL, stack.traceServerUrl);
    assert.equal(process.env.OPENAI_BASE_URL, stack.modelUrl);
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
});
