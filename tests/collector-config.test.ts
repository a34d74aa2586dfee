// Structure of the OpenTelemetry Collector configuration in docs/collector/ (it cannot run here):
// every pipeline names components that are defined, nothing defined is unused, tier 1 routes by
// trace ID to the port tier 2 listens on, and tier 2 keeps errors plus a share of the rest with a
// decision cache before exporting to an OTLP traces endpoint with LangSmith's headers.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";

type Section = "receivers" | "processors" | "exporters" | "connectors" | "extensions";
type Config = Partial<Record<Section, Record<string, Record<string, unknown> | null>>> & {
  service?: { extensions?: string[]; pipelines?: Record<string, Partial<Record<"receivers" | "processors" | "exporters", string[]>>> };
};

const load = (name: string): Config => parse(readFileSync(new URL(`../docs/collector/${name}`, import.meta.url), "utf8")) as Config;
const tiers = { "load-balancer.yaml": load("load-balancer.yaml"), "tail-sampler.yaml": load("tail-sampler.yaml") };

/** Every reference problem of a Collector config: undefined components named by the service, defined ones never used. */
function referenceProblems(config: Config): string[] {
  const problems: string[] = [];
  const defined = (section: Section): Set<string> => new Set(Object.keys(config[section] ?? {}));
  const used = new Map<Section, Set<string>>();
  const use = (section: Section, id: string, where: string): void => {
    // A connector is a pipeline's exporter and another's receiver: defined under connectors.
    const home: Section = (section === "receivers" || section === "exporters") && defined("connectors").has(id) ? "connectors" : section;
    if (!defined(home).has(id)) problems.push(`${where} names ${section.slice(0, -1)} "${id}", which is not defined`);
    used.set(home, (used.get(home) ?? new Set()).add(id));
  };
  const pipelines = config.service?.pipelines ?? {};
  if (Object.keys(pipelines).length === 0) problems.push("service.pipelines is empty");
  for (const [name, pipeline] of Object.entries(pipelines)) {
    if (!/^(traces|metrics|logs)(\/.+)?$/.test(name)) problems.push(`pipeline "${name}" is not traces, metrics or logs`);
    for (const kind of ["receivers", "exporters"] as const) {
      if (!pipeline[kind]?.length) problems.push(`pipeline "${name}" has no ${kind}`);
    }
    for (const kind of ["receivers", "processors", "exporters"] as const) {
      const ids = pipeline[kind] ?? [];
      if (new Set(ids).size !== ids.length) problems.push(`pipeline "${name}" lists a ${kind.slice(0, -1)} twice`);
      for (const id of ids) use(kind, id, `pipeline "${name}"`);
    }
  }
  for (const id of config.service?.extensions ?? []) use("extensions", id, "service.extensions");
  for (const section of ["receivers", "processors", "exporters", "connectors", "extensions"] as const) {
    for (const id of defined(section)) if (!used.get(section)?.has(id)) problems.push(`${section.slice(0, -1)} "${id}" is defined but never used`);
  }
  return problems;
}

for (const [file, config] of Object.entries(tiers)) {
  test(`${file}: every pipeline names defined receivers, processors and exporters, and nothing defined is unused`, () => {
    assert.deepEqual(referenceProblems(config), []);
    assert.equal(config.processors?.memory_limiter !== undefined, true, "a memory_limiter");
    assert.equal(config.service?.pipelines?.traces?.processors?.[0], "memory_limiter", "memory_limiter runs first");
  });
}

test("the reference check finds what it is there to find", () => {
  const broken: Config = {
    receivers: { otlp: {} },
    processors: { batch: {}, unused: {} },
    exporters: { debug: {} },
    service: { pipelines: { traces: { receivers: ["otlp"], processors: ["batch", "tail_sampling"], exporters: ["otlphttp"] } } },
  };
  assert.deepEqual(referenceProblems(broken).sort(), [
    'pipeline "traces" names exporter "otlphttp", which is not defined',
    'pipeline "traces" names processor "tail_sampling", which is not defined',
    'exporter "debug" is defined but never used',
    'processor "unused" is defined but never used',
  ].sort());
});

test("tier 1 routes every span by trace ID to the port tier 2 receives OTLP on", () => {
  const lb = tiers["load-balancer.yaml"].exporters?.loadbalancing as { routing_key?: string; protocol?: { otlp?: unknown }; resolver?: Record<string, { ports?: number[]; port?: number }> };
  assert.equal(lb.routing_key, "traceID");
  assert.ok(lb.protocol?.otlp, "sends OTLP");
  const resolvers = Object.entries(lb.resolver ?? {});
  assert.equal(resolvers.length, 1, "exactly one resolver");
  const [, resolver] = resolvers[0] as [string, { ports?: number[]; port?: number }];
  const ports = resolver.ports ?? (resolver.port === undefined ? [] : [resolver.port]);
  const tier2 = tiers["tail-sampler.yaml"].receivers?.otlp as { protocols?: { grpc?: { endpoint?: string } } };
  const tier2Port = Number(tier2.protocols?.grpc?.endpoint?.split(":").at(-1));
  assert.deepEqual(ports, [tier2Port], "tier 1 sends gRPC to the port tier 2 listens on");
  assert.deepEqual(tiers["load-balancer.yaml"].service?.pipelines?.traces?.exporters, ["loadbalancing"]);
});

test("tier 2 keeps every error trace and a share of the rest, remembers decisions, then batches and exports to LangSmith", () => {
  const config = tiers["tail-sampler.yaml"];
  const processors = config.service?.pipelines?.traces?.processors ?? [];
  assert.ok(processors.indexOf("tail_sampling") < processors.indexOf("batch"), "batch after sampling: batches only what is kept");
  const ts = config.processors?.tail_sampling as {
    decision_wait?: string;
    num_traces?: number;
    decision_cache?: { sampled_cache_size?: number; non_sampled_cache_size?: number };
    policies?: Array<{ type: string; status_code?: { status_codes?: string[] }; probabilistic?: { sampling_percentage?: number } }>;
  };
  const waitSeconds = Number(/^(\d+)s$/.exec(ts.decision_wait ?? "")?.[1]);
  assert.ok(waitSeconds > 5, "decision_wait exceeds the BatchSpanProcessor's default 5 s export delay");
  const numTraces = ts.num_traces ?? 50_000;
  for (const key of ["sampled_cache_size", "non_sampled_cache_size"] as const) {
    assert.ok((ts.decision_cache?.[key] ?? 0) >= 10 * numTraces, `${key} is at least ten times num_traces`);
  }
  const policies = ts.policies ?? [];
  assert.ok(policies.some((p) => p.type === "status_code" && p.status_code?.status_codes?.includes("ERROR")), "a policy keeps error traces");
  const share = policies.find((p) => p.type === "probabilistic")?.probabilistic?.sampling_percentage;
  assert.ok(share !== undefined && share > 0 && share < 100, "a probabilistic policy keeps a share of the rest");

  const [exporterId] = config.service?.pipelines?.traces?.exporters ?? [];
  assert.match(String(exporterId), /^otlphttp(\/|$)/);
  const exporter = config.exporters?.[String(exporterId)] as { traces_endpoint?: string; headers?: Record<string, string> };
  assert.match(String(exporter.traces_endpoint), /\$\{env:[A-Z_]+\}/, "the endpoint comes from the environment");
  assert.equal(exporter.headers?.["x-api-key"], "${env:LANGSMITH_API_KEY}");
  assert.equal(exporter.headers?.["Langsmith-Project"], "${env:LANGSMITH_PROJECT}");
  // The endpoints the file's comment offers are LangSmith's OTLP traces paths (and the local server's).
  const offered = readFileSync(new URL("../docs/collector/tail-sampler.yaml", import.meta.url), "utf8").match(/https?:\/\/\S+/g) ?? [];
  assert.ok(offered.length >= 3);
  for (const url of offered) assert.match(url, /\/otel\/v1\/traces$/, url);
});
