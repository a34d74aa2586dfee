// loadConfig / applyConfig / describeConfig / chatModel against private env objects (process.env untouched).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "langsmith";
import { applyConfig, chatModel, describeConfig, findRepoRoot, loadConfig, maskSecret } from "@tracing-patterns/setup";

const LS_SECRET = "lsv2_pt_0123456789abcdef0123456789abcdef_0123456789";
const OPENAI_SECRET = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

function load(env: NodeJS.ProcessEnv) {
  return loadConfig({ env, envFile: false, rootDir: "/nonexistent" });
}

/** Every 6-character window of the secret after its public type prefix. */
function secretFragments(secret: string, prefixLength: number): string[] {
  const out: string[] = [];
  for (let i = prefixLength; i + 6 <= secret.length; i++) out.push(secret.slice(i, i + 6));
  return out;
}

test("no LANGSMITH_API_KEY: local mode pointing at the local trace server and model endpoint", () => {
  const cfg = load({});
  assert.equal(cfg.mode, "local");
  assert.equal(cfg.langsmith.endpoint, "http://127.0.0.1:1984");
  assert.equal(cfg.langsmith.apiKey, "local");
  assert.equal(cfg.tracing, true);
  assert.equal(cfg.project, "default");
  assert.equal(cfg.model.provider, "local");
  assert.equal(cfg.model.baseURL, "http://127.0.0.1:1985/v1");
  assert.equal(cfg.viewerUrl, "http://127.0.0.1:1984");
});

test("trace/model server host and port variables shape the local URLs; wildcard binds are reached via loopback", () => {
  const cfg = load({ TRACE_SERVER_HOST: "0.0.0.0", TRACE_SERVER_PORT: "2984", MODEL_SERVER_PORT: "2985", TRACE_SERVER_API_KEY: "s3cret-local" });
  assert.equal(cfg.langsmith.endpoint, "http://127.0.0.1:2984");
  assert.equal(cfg.traceServer.host, "0.0.0.0");
  assert.equal(cfg.langsmith.apiKey, "s3cret-local", "the trace server's key is what the SDK must send");
  assert.equal(cfg.model.baseURL, "http://127.0.0.1:2985/v1");
  assert.throws(() => load({ TRACE_SERVER_PORT: "http" }), /TRACE_SERVER_PORT must be a non-negative integer/);
});

test("LANGSMITH_API_KEY set: cloud mode with the SDK default endpoint or LANGSMITH_ENDPOINT", () => {
  const cfg = load({ LANGSMITH_API_KEY: LS_SECRET, LANGSMITH_PROJECT: "shop" });
  assert.equal(cfg.mode, "cloud");
  assert.equal(cfg.langsmith.endpoint, "https://api.smith.langchain.com");
  assert.equal(cfg.langsmith.apiKey, LS_SECRET);
  assert.equal(cfg.langsmith.runsEndpoints, undefined);
  assert.equal(cfg.project, "shop");
  const eu = load({ LANGSMITH_API_KEY: LS_SECRET, LANGSMITH_ENDPOINT: "https://eu.api.smith.langchain.com/" });
  assert.equal(eu.langsmith.endpoint, "https://eu.api.smith.langchain.com");
});

test("TRACING_PATTERNS_OFFLINE forces local tracing and model even with real keys", () => {
  const cfg = load({ LANGSMITH_API_KEY: LS_SECRET, OPENAI_API_KEY: OPENAI_SECRET, TRACING_PATTERNS_OFFLINE: "true" });
  assert.equal(cfg.mode, "local");
  assert.equal(cfg.model.provider, "local");
  assert.ok(cfg.warnings.some((w) => w.includes("ignored")));
});

test("MIRROR_TO_LOCAL in cloud mode writes both destinations as SDK replicas (array form), which the SDK parses", () => {
  const env: NodeJS.ProcessEnv = { LANGSMITH_API_KEY: LS_SECRET, MIRROR_TO_LOCAL: "true", TRACE_SERVER_PORT: "2984" };
  const cfg = load(env);
  assert.equal(cfg.mirrorToLocal, true);
  assert.deepEqual(cfg.langsmith.runsEndpoints, [
    { api_url: "https://api.smith.langchain.com", api_key: "" },
    { api_url: "http://127.0.0.1:2984", api_key: "local" },
  ]);
  applyConfig(cfg, env);
  assert.deepEqual(JSON.parse(env.LANGSMITH_RUNS_ENDPOINTS ?? "null"), cfg.langsmith.runsEndpoints);
  assert.equal(env.LANGSMITH_ENDPOINT, "https://api.smith.langchain.com", "array form may coexist with LANGSMITH_ENDPOINT");
  assert.equal(env.LANGSMITH_API_KEY, LS_SECRET, "the key LangSmith's replica is sent with");
  assert.deepEqual(cfg.warnings, []);
  assert.equal(load({ MIRROR_TO_LOCAL: "true" }).langsmith.runsEndpoints, undefined, "no mirror in local mode");
  const keyed = load({ LANGSMITH_API_KEY: LS_SECRET, MIRROR_TO_LOCAL: "true", TRACE_SERVER_API_KEY: "trace-server-secret-123" });
  assert.equal(keyed.langsmith.runsEndpoints?.[1]?.api_key, "trace-server-secret-123");
  assert.ok(keyed.warnings.some((w) => w.includes("TRACE_SERVER_API_KEY") && w.includes("metadata")));
});

test("the SDK copies LANGSMITH_RUNS_ENDPOINTS into run metadata, and the mirror's value holds no LangSmith key", () => {
  const env: NodeJS.ProcessEnv = { LANGSMITH_API_KEY: LS_SECRET, MIRROR_TO_LOCAL: "true" };
  applyConfig(load(env), env);
  const saved = process.env.LANGSMITH_RUNS_ENDPOINTS;
  process.env.LANGSMITH_RUNS_ENDPOINTS = env.LANGSMITH_RUNS_ENDPOINTS;
  try {
    const client = new Client({ apiUrl: "http://127.0.0.1:9", apiKey: "x" });
    const cached = (client as unknown as { cachedLSEnvVarsForMetadata: Record<string, string> }).cachedLSEnvVarsForMetadata;
    assert.equal(cached.LANGSMITH_RUNS_ENDPOINTS, env.LANGSMITH_RUNS_ENDPOINTS);
    for (const fragment of secretFragments(LS_SECRET, "lsv2_pt_".length)) assert.ok(!JSON.stringify(cached).includes(fragment));
  } finally {
    if (saved === undefined) delete process.env.LANGSMITH_RUNS_ENDPOINTS;
    else process.env.LANGSMITH_RUNS_ENDPOINTS = saved;
  }
});

test("local mode removes a stray LANGSMITH_RUNS_ENDPOINTS so nothing leaves the machine", () => {
  const env: NodeJS.ProcessEnv = { LANGSMITH_RUNS_ENDPOINTS: '{"https://api.smith.langchain.com":"k"}' };
  const cfg = load(env);
  assert.ok(cfg.warnings.some((w) => w.includes("LANGSMITH_RUNS_ENDPOINTS")));
  applyConfig(cfg, env);
  assert.equal(env.LANGSMITH_RUNS_ENDPOINTS, undefined);
});

test("model: OPENAI_API_KEY → OpenAI; OPENAI_BASE_URL → that endpoint; neither → local endpoint", () => {
  const openai = load({ OPENAI_API_KEY: OPENAI_SECRET });
  assert.deepEqual(openai.model, { provider: "openai", baseURL: undefined, apiKey: OPENAI_SECRET, name: "gpt-4o-mini" });
  const custom = load({ OPENAI_BASE_URL: "http://10.0.0.5:8000/v1/", OPENAI_MODEL: "llama" });
  assert.deepEqual(custom.model, { provider: "custom", baseURL: "http://10.0.0.5:8000/v1", apiKey: "local", name: "llama" });
});

test("applyConfig writes what the SDK and ChatOpenAI read, and is idempotent (loadConfig after it is unchanged)", () => {
  const env: NodeJS.ProcessEnv = { LANGCHAIN_TRACING_V2: "true", LANGSMITH_SERVICE: "gateway" };
  const first = load(env);
  applyConfig(first, env);
  assert.equal(env.LANGSMITH_TRACING, "true");
  assert.equal(env.LANGSMITH_ENDPOINT, "http://127.0.0.1:1984");
  assert.equal(env.LANGSMITH_API_KEY, "local");
  assert.equal(env.LANGSMITH_PROJECT, "default");
  assert.equal(env.OPENAI_BASE_URL, "http://127.0.0.1:1985/v1");
  assert.equal(env.OPENAI_API_KEY, "local");
  assert.equal(env.LANGCHAIN_TRACING_V2, undefined);
  const snapshot = { ...env };
  const second = load(env);
  assert.deepEqual(second, first, "the placeholder key written by applyConfig does not flip the mode to cloud");
  applyConfig(second, env);
  assert.deepEqual({ ...env }, snapshot);

  const cloudEnv: NodeJS.ProcessEnv = { LANGSMITH_API_KEY: LS_SECRET, OPENAI_API_KEY: OPENAI_SECRET, OPENAI_BASE_URL: "" };
  const cloud = load(cloudEnv);
  applyConfig(cloud, cloudEnv);
  assert.deepEqual(load(cloudEnv), cloud);
  assert.equal(cloudEnv.OPENAI_BASE_URL, undefined);
});

test("describeConfig never prints a secret", () => {
  const env: NodeJS.ProcessEnv = {
    LANGSMITH_API_KEY: LS_SECRET,
    OPENAI_API_KEY: OPENAI_SECRET,
    MIRROR_TO_LOCAL: "true",
    LANGSMITH_ENDPOINT: "https://user:hunter2pass@ls.example.com",
    TRACE_SERVER_API_KEY: "trace-server-secret-123",
  };
  const text = describeConfig(load(env));
  for (const fragment of [...secretFragments(LS_SECRET, "lsv2_pt_".length), ...secretFragments(OPENAI_SECRET, "sk-proj-".length)]) {
    assert.ok(!text.includes(fragment), `leaked ${fragment} in:\n${text}`);
  }
  assert.ok(!text.includes("hunter2pass"));
  assert.ok(!text.includes("trace-server-secret"));
  assert.match(text, /langsmith key {2}lsv2_pt_…\(set\)/);
  assert.match(text, /key sk-proj-…\(set\)/);
  assert.match(text, /mode {11}cloud \(LANGSMITH_API_KEY is set\)/);

  const local = describeConfig(load({}));
  assert.match(local, /mode {11}local \(no LANGSMITH_API_KEY\)/);
  assert.match(local, /trace viewer {3}http:\/\/127\.0\.0\.1:1984/);
});

test("maskSecret shows at most a known type prefix, and nothing of short or unknown keys", () => {
  assert.equal(maskSecret(undefined), "(not set)");
  assert.equal(maskSecret("abc"), "(set)");
  assert.equal(maskSecret("sk-short"), "(set)");
  assert.equal(maskSecret("lsv2_sk_abcdefghijklmnop"), "lsv2_sk_…(set)");
  assert.equal(maskSecret("local"), `"local" (placeholder)`);
});

test(".env at the repo root is read, and variables already set win", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tp-config-"));
  try {
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "langsmith-distributed-tracing-patterns" }));
    writeFileSync(path.join(dir, ".env"), "LANGSMITH_PROJECT=from-dotenv\nLANGSMITH_SERVICE=from-dotenv\nOPENAI_MODEL=dotenv-model\n");
    const nested = path.join(dir, "notebooks", "deep");
    assert.equal(findRepoRoot(nested, {}), dir, "found by walking up from a subdirectory");
    assert.equal(findRepoRoot(tmpdir(), {}), undefined);
    const env: NodeJS.ProcessEnv = { LANGSMITH_SERVICE: "from-env", TRACING_PATTERNS_ROOT: dir };
    const cfg = loadConfig({ env });
    assert.equal(cfg.envFile, path.join(dir, ".env"));
    assert.equal(cfg.project, "from-dotenv");
    assert.equal(cfg.service, "from-env");
    assert.equal(cfg.model.name, "dotenv-model");
    assert.equal(env.LANGSMITH_PROJECT, "from-dotenv", ".env values land in the environment");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("chatModel returns a real ChatOpenAI aimed at the configured endpoint", () => {
  const local = chatModel({ config: load({}), temperature: 0 });
  assert.equal(local.constructor.name, "ChatOpenAI");
  assert.equal(local.model, "gpt-4o-mini");
  assert.equal(local.temperature, 0);
  assert.equal((local as unknown as { clientConfig: { baseURL?: string } }).clientConfig.baseURL, "http://127.0.0.1:1985/v1");
  const openai = chatModel({ config: load({ OPENAI_API_KEY: OPENAI_SECRET }), model: "gpt-4.1" });
  assert.equal(openai.model, "gpt-4.1");
  assert.equal((openai as unknown as { clientConfig: { baseURL?: string } }).clientConfig.baseURL, undefined);
});

test("the tracing switch is read from all four variables the SDK reads, and applyConfig leaves no contradicting one", () => {
  const cases: Array<[NodeJS.ProcessEnv, boolean]> = [
    [{}, true],
    [{ LANGSMITH_TRACING: "false" }, false],
    [{ LANGSMITH_TRACING_V2: "false" }, false],
    [{ LANGCHAIN_TRACING: "false" }, false],
    [{ LANGCHAIN_TRACING_V2: "false" }, false],
    // The SDK traces when either name is "true": a V2 "true" beats a plain "false".
    [{ LANGSMITH_TRACING_V2: "true", LANGSMITH_TRACING: "false" }, true],
    [{ LANGCHAIN_TRACING_V2: "true", LANGSMITH_TRACING: "false" }, true],
    // The LANGSMITH_ name wins over its LANGCHAIN_ twin.
    [{ LANGSMITH_TRACING: "false", LANGCHAIN_TRACING: "true" }, false],
  ];
  for (const [env, expected] of cases) {
    const cfg = load({ ...env });
    assert.equal(cfg.tracing, expected, JSON.stringify(env));
    const applied: NodeJS.ProcessEnv = { ...env };
    applyConfig(cfg, applied);
    const tracingVars = Object.keys(applied).filter((k) => /^(LANGSMITH|LANGCHAIN)_TRACING(_V2)?$/.test(k));
    assert.deepEqual(tracingVars, ["LANGSMITH_TRACING"], JSON.stringify(env));
    assert.equal(applied.LANGSMITH_TRACING, expected ? "true" : "false");
  }
});
