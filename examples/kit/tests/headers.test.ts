// Unit tests of the header validation that runs before RunTree.fromHeaders,
// including proof that the SDK itself throws on the inputs it is shielded from.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { RunTree, convertToDottedOrderFormat } from "langsmith/run_trees";
import { DEFAULT_LIMITS, parseTraceHeader, sanitizeBaggage, type BaggagePolicy } from "../index.js";

const strict: BaggagePolicy = { allowProjectOverride: false, allowReplicas: false, limits: DEFAULT_LIMITS };
const permissive: BaggagePolicy = { allowProjectOverride: true, allowReplicas: true, limits: DEFAULT_LIMITS };

function segment(id = randomUUID(), epoch = Date.UTC(2025, 0, 2, 3, 4, 5, 678)): string {
  return convertToDottedOrderFormat(epoch, id).dottedOrder;
}

describe("parseTraceHeader", () => {
  test("accepts the SDK's own dotted order and names the trace and the parent", () => {
    const rootId = randomUUID();
    const childId = randomUUID();
    const dotted = `${segment(rootId)}.${segment(childId)}`;
    const result = parseTraceHeader([dotted]);
    assert.deepEqual(result, { kind: "valid", header: { dottedOrder: dotted, traceId: rootId, parentRunId: childId } });
  });

  test("accepts what RunTree.toHeaders produces", () => {
    const run = new RunTree({ name: "caller", project_name: "p", tracingEnabled: false });
    const child = run.createChild({ name: "child" });
    const result = parseTraceHeader([child.toHeaders()["langsmith-trace"]]);
    assert.equal(result.kind, "valid");
    assert.equal(result.kind === "valid" && result.header.traceId, run.id);
    assert.equal(result.kind === "valid" && result.header.parentRunId, child.id);
  });

  test("a run id in capitals is the same run, passed on in lower case", () => {
    const runId = randomUUID();
    const result = parseTraceHeader([segment(runId).toUpperCase()]);
    assert.deepEqual(result, { kind: "valid", header: { dottedOrder: segment(runId), traceId: runId, parentRunId: runId } });
  });

  test("absent when there is no header, duplicate when there are two", () => {
    assert.deepEqual(parseTraceHeader(undefined), { kind: "absent" });
    assert.deepEqual(parseTraceHeader([]), { kind: "absent" });
    assert.deepEqual(parseTraceHeader([segment(), segment()]), { kind: "invalid", reason: "trace-header-duplicate" });
  });

  const id = randomUUID();
  const malformed: Array<[string, string]> = [
    ["empty", ""],
    ["uuid only", id],
    ["timestamp only", "20250102T030405678000Z"],
    ["month 13", `20251302T030405678000Z${id}`],
    ["February 30", `20250230T030405678000Z${id}`],
    ["hour 24", `20250102T240405678000Z${id}`],
    ["milliseconds only", `20250102T030405678Z${id}`],
    ["ISO punctuation", `2025-01-02T03:04:05.678000Z${id}`],
    ["trailing dot", `${segment(id)}.`],
    ["a run that is its own ancestor", `${segment(id)}.${segment(id)}`],
  ];
  for (const [name, value] of malformed) {
    test(`malformed: ${name}`, () => {
      assert.deepEqual(parseTraceHeader([value]), { kind: "invalid", reason: "trace-header-malformed" });
    });
  }

  test("too deep and too long are told apart from malformed", () => {
    const deep = Array.from({ length: DEFAULT_LIMITS.maxTraceDepth + 1 }, () => segment()).join(".");
    assert.deepEqual(parseTraceHeader([deep], { ...DEFAULT_LIMITS, maxTraceHeaderLength: 1_000_000 }), {
      kind: "invalid",
      reason: "trace-header-too-deep",
    });
    assert.deepEqual(parseTraceHeader(["x".repeat(DEFAULT_LIMITS.maxTraceHeaderLength + 1)]), {
      kind: "invalid",
      reason: "trace-header-too-long",
    });
  });
});

describe("sanitizeBaggage", () => {
  test("keeps metadata and tags, re-encoded the way the SDK parses them", () => {
    const raw = `langsmith-metadata=${encodeURIComponent(JSON.stringify({ user: "u1", n: 2 }))},langsmith-tags=${encodeURIComponent("a,b")}`;
    const result = sanitizeBaggage([raw], strict);
    assert.equal(result.kind, "valid");
    assert.ok(result.kind === "valid");
    assert.deepEqual(result.adjustments, []);
    const parent = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: result.baggage }, { tracingEnabled: false });
    assert.deepEqual(parent?.metadata, { user: "u1", n: 2 });
    assert.deepEqual(parent?.tags, ["a", "b"]);
  });

  test("strips project, address and replicas unless allowed", () => {
    const raw = [
      "langsmith-project=attacker",
      `langsmith-replicas=${encodeURIComponent(JSON.stringify([{ projectName: "exfil" }]))}`,
      "langsmith-address=lrn%3Aagents%2Fx%2Fenvironments%2Fproduction",
    ].join(",");
    const stripped = sanitizeBaggage([raw], strict);
    assert.deepEqual(stripped, {
      kind: "valid",
      baggage: "",
      adjustments: ["project-override-ignored", "replicas-ignored", "address-override-ignored"],
    });
    const allowed = sanitizeBaggage(["langsmith-project=theirs", `langsmith-replicas=${encodeURIComponent("[{\"projectName\":\"copy\"}]")}`], permissive);
    assert.equal(allowed.kind, "valid");
    assert.ok(allowed.kind === "valid" && allowed.baggage.includes("langsmith-project=theirs"));
    assert.ok(allowed.kind === "valid" && allowed.baggage.includes("langsmith-replicas="));
  });

  test("allowed replicas keep only a project name: the tuple form's updates never reach the copies", () => {
    // What the SDK would do with the caller's own list: spread `updates` over every copy's patch.
    const forged = { outputs: { answer: "forged" }, error: "forged", trace_id: randomUUID(), extra: { metadata: { forged: true } } };
    const hostile = [
      ["copy", forged],
      { projectName: "copy2", updates: { outputs: { answer: "forged" } }, reroot: true },
    ];
    const raw = `langsmith-replicas=${encodeURIComponent(JSON.stringify(hostile))}`;
    const unsanitized = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: raw }, { tracingEnabled: false });
    assert.deepEqual(unsanitized?.replicas?.[0], { projectName: "copy", updates: forged }, "the SDK keeps the updates as given");
    const result = sanitizeBaggage([raw], permissive);
    assert.ok(result.kind === "valid");
    assert.deepEqual(result.adjustments, ["replicas-trimmed"]);
    const parent = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: result.baggage }, { tracingEnabled: false });
    assert.deepEqual(parent?.replicas, [{ projectName: "copy" }, { projectName: "copy2" }]);
  });

  test("allowed replicas are capped at maxReplicas, without duplicates or invalid names", () => {
    const names = Array.from({ length: 50 }, (_, i) => ({ projectName: `copy-${i}` }));
    const list = [{ projectName: "copy-0" }, { projectName: "" }, { projectName: 42 }, { projectName: "x".repeat(1000) }, ...names];
    const result = sanitizeBaggage([`langsmith-replicas=${encodeURIComponent(JSON.stringify(list))}`], permissive);
    assert.ok(result.kind === "valid");
    assert.deepEqual(result.adjustments, ["replicas-trimmed"]);
    const parent = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: result.baggage }, { tracingEnabled: false });
    assert.deepEqual(parent?.replicas, names.slice(0, DEFAULT_LIMITS.maxReplicas));
    const plain = sanitizeBaggage([`langsmith-replicas=${encodeURIComponent(JSON.stringify(names.slice(0, 2)))}`], permissive);
    assert.deepEqual(plain.kind === "valid" && plain.adjustments, [], "plain project names within the limit are not reported");
  });

  test("a caller naming this service's own project overrides nothing and is not reported", () => {
    assert.deepEqual(sanitizeBaggage(["langsmith-project=mine"], { ...strict, ownProject: "mine" }), { kind: "valid", baggage: "", adjustments: [] });
    assert.deepEqual(sanitizeBaggage(["langsmith-project=theirs"], { ...strict, ownProject: "mine" }), {
      kind: "valid",
      baggage: "",
      adjustments: ["project-override-ignored"],
    });
  });

  test("rejects what would make the SDK throw, and the SDK really does throw on it", () => {
    const cases: Array<[string, string]> = [
      ["langsmith-metadata=%E0%A4%A", "baggage-bad-encoding"],
      ["vendor=%ZZ", "valid"],
      ["langsmith-metadata=%7Bnot-json", "baggage-bad-metadata"],
    ];
    for (const [raw, expected] of cases) {
      const result = sanitizeBaggage([raw], strict);
      assert.equal(result.kind === "valid" ? "valid" : result.reason, expected, raw);
      assert.throws(() => RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: raw }), raw);
    }
  });

  test("the SDK follows a caller-chosen project; the sanitized baggage does not carry it", () => {
    const raw = "langsmith-project=attacker";
    const trusting = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: raw }, { tracingEnabled: false });
    assert.equal(trusting?.project_name, "attacker");
    const result = sanitizeBaggage([raw], strict);
    assert.ok(result.kind === "valid");
    const parent = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: result.baggage }, { project_name: "mine", tracingEnabled: false });
    assert.equal(parent?.project_name, "mine");
  });

  test("metadata must be a JSON object", () => {
    for (const json of ["[1,2]", "null", "\"text\"", "42", "{\"a\":"]) {
      assert.deepEqual(sanitizeBaggage([`langsmith-metadata=${encodeURIComponent(json)}`], strict), {
        kind: "invalid",
        reason: "baggage-bad-metadata",
      });
    }
  });

  test("bounds metadata: count, value size, reserved and prototype keys", () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]));
    const r1 = sanitizeBaggage([`langsmith-metadata=${encodeURIComponent(JSON.stringify(many))}`], strict);
    assert.ok(r1.kind === "valid");
    assert.deepEqual(r1.adjustments, ["metadata-trimmed"]);
    const kept1 = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: r1.baggage }, { tracingEnabled: false })?.metadata ?? {};
    assert.equal(Object.keys(kept1).length, DEFAULT_LIMITS.maxMetadataEntries);

    const spoof = '{"__proto__":{"polluted":1},"LANGSMITH_SERVICE":"fake","untrusted_parent_trace_id":"x","http.route":"/x","big":"' + "v".repeat(300) + '","ok":1}';
    const r2 = sanitizeBaggage([`langsmith-metadata=${encodeURIComponent(spoof)}`], strict);
    assert.ok(r2.kind === "valid");
    const kept2 = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: r2.baggage }, { tracingEnabled: false })?.metadata ?? {};
    assert.deepEqual(kept2, { ok: 1 });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("bounds tags and drops control characters", () => {
    const tags = Array.from({ length: 50 }, (_, i) => `t${i}`).concat(["bad\r\ninjected"]);
    const result = sanitizeBaggage([`langsmith-tags=${encodeURIComponent(tags.join(","))}`], strict);
    assert.ok(result.kind === "valid");
    assert.deepEqual(result.adjustments, ["tags-trimmed"]);
    const parent = RunTree.fromHeaders({ "langsmith-trace": segment(), baggage: result.baggage }, { tracingEnabled: false });
    assert.equal(parent?.tags?.length, DEFAULT_LIMITS.maxTags);
    assert.ok(!parent?.tags?.some((t) => t.includes("\n")));
  });

  test("size is checked over all header lines together", () => {
    const half = `vendor=${"x".repeat(DEFAULT_LIMITS.maxBaggageBytes / 2)}`;
    assert.deepEqual(sanitizeBaggage([half, half], strict), { kind: "invalid", reason: "baggage-too-large" });
    assert.equal(sanitizeBaggage([half], strict).kind, "valid");
  });

  test("a langsmith member named twice is ambiguous", () => {
    assert.deepEqual(sanitizeBaggage(["langsmith-tags=a", "langsmith-tags=b"], strict), {
      kind: "invalid",
      reason: "baggage-duplicate-entry",
    });
  });
});
