// Signed trace context (signing.ts): what a receiver with `{ signedBy: key }`
// continues and what it restarts, from headers a real sender (injectTraceHeaders
// inside a run) produced, then altered the ways an attacker would.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Client } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { SIGNATURE_HEADER, inboundMetadata, injectTraceHeaders, onceWarner, readInbound, serverTracing, signContext, verifyContext, type InboundContext } from "../index.js";

const KEY = randomBytes(32).toString("hex");
// Never contacted: these runs are only turned into headers.
const client = new Client({ apiUrl: "http://127.0.0.1:9", apiKey: "unused" });

interface Sent {
  trace: string;
  baggage: string;
  signature: string;
}

async function sentBy(tenant: string, key: string | undefined = KEY): Promise<{ run: RunTree; sent: Sent }> {
  const run = new RunTree({ name: "gateway", client, project_name: "signed", tracingEnabled: true, metadata: { tenant } });
  const headers = await withRunTree(run, () => injectTraceHeaders({ baggage: "vendor=1" }, key === undefined ? {} : { signingKey: key }));
  return { run, sent: { trace: headers.get("langsmith-trace") ?? "", baggage: headers.get("baggage") ?? "", signature: headers.get(SIGNATURE_HEADER) ?? "" } };
}

function receive(sent: Partial<Sent>, warnings: string[] = [], maxAgeSeconds?: number): InboundContext {
  const lines = (v: string | undefined): string[] | undefined => (v === undefined || v === "" ? undefined : [v]);
  return readInbound(
    { trace: lines(sent.trace), baggage: lines(sent.baggage), signature: lines(sent.signature) },
    { trusted: { signedBy: KEY, maxAgeSeconds }, client, projectName: "signed", warn: onceWarner({ warn: (m) => warnings.push(m) }) },
  );
}

function tenantOf(context: InboundContext): unknown {
  return context.kind === "continued" ? context.parent.metadata?.tenant : undefined;
}

describe("signed trace context", () => {
  test("a correctly signed context always continues, with its baggage metadata", async () => {
    for (let i = 0; i < 20; i++) {
      const { run, sent } = await sentBy(`tenant-${i}`);
      assert.match(sent.signature, /^v1,t=\d+,s=[A-Za-z0-9_-]{43}$/);
      const context = receive(sent);
      assert.equal(context.kind, "continued");
      assert.equal(context.kind === "continued" && context.parent.id, run.id);
      assert.equal(context.kind === "continued" && context.parent.trace_id, run.trace_id);
      assert.equal(tenantOf(context), `tenant-${i}`);
    }
  });

  test("members another vendor's proxy adds to baggage do not break the signature", async () => {
    const { sent } = await sentBy("alice");
    assert.equal(receive({ ...sent, baggage: `${sent.baggage},proxy=added` }).kind, "continued");
  });

  const restarts: Array<[string, (s: Sent) => Partial<Sent>, string]> = [
    ["no signature", (s) => ({ ...s, signature: undefined }), "signature-missing"],
    ["a forged signature", (s) => ({ ...s, signature: s.signature.replace(/s=.*/, `s=${randomBytes(32).toString("base64url")}`) }), "signature-invalid"],
    ["a signature that is not v1,t=,s=", (s) => ({ ...s, signature: `${s.signature},x=1` }), "signature-malformed"],
    ["another trace header under the same signature", (s) => ({ ...s, trace: s.trace.replace(/[0-9a-f]{12}$/, "000000000000") }), "signature-invalid"],
    ["the timestamp changed to refresh it", (s) => ({ ...s, signature: s.signature.replace(/t=(\d+)/, (_m, t: string) => `t=${Number(t) + 1}`) }), "signature-invalid"],
  ];
  for (const [label, alter, reason] of restarts) {
    test(`${label}: a new root, recorded as ${reason}, with the claimed parent kept as untrusted`, async () => {
      const { sent } = await sentBy("alice");
      const altered = alter(sent);
      const warnings: string[] = [];
      const context = receive(altered, warnings);
      assert.equal(context.kind, "restarted");
      const metadata = inboundMetadata(context);
      assert.equal(metadata["trace.inbound_reason"], reason);
      assert.equal(metadata.untrusted_parent_trace_id, altered.trace?.slice(-36));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? "", new RegExp(`cause: ${reason}; reported once`));
    });
  }

  test("a context re-signed with another key does not continue", async () => {
    const { sent } = await sentBy("alice", randomBytes(32).toString("hex"));
    assert.match(sent.signature, /^v1,/);
    const context = receive(sent);
    assert.equal(context.kind === "restarted" && context.reason, "signature-invalid");
  });

  test("a signature replayed with another tenant's baggage never carries that tenant into the trace", async () => {
    const alice = await sentBy("alice");
    const bob = await sentBy("bob");
    // Alice's trace and signature, bob's baggage: the tenant swapped under a valid signature.
    const context = receive({ ...alice.sent, baggage: bob.sent.baggage });
    assert.equal(context.kind === "restarted" && context.reason, "signature-invalid");
    assert.equal(tenantOf(context), undefined);
    // And bob's baggage alone, unsigned, into alice's trace.
    assert.equal(receive({ trace: alice.sent.trace, baggage: bob.sent.baggage }).kind, "restarted");
  });

  test("an expired or future-dated signature restarts, even though it is genuine", async () => {
    const { sent } = await sentBy("alice");
    const baggage = [sent.baggage];
    const oldSignature = signContext(sent.trace, sent.baggage, KEY, Date.now() - 61_000);
    const context = receive({ ...sent, signature: oldSignature });
    assert.equal(context.kind === "restarted" && context.reason, "signature-expired");
    assert.deepEqual(verifyContext({ trace: [sent.trace], baggage, signature: [oldSignature] }, { signedBy: KEY }), { ok: false, reason: "signature-expired" });
    const future = signContext(sent.trace, sent.baggage, KEY, Date.now() + 120_000);
    assert.deepEqual(verifyContext({ trace: [sent.trace], baggage, signature: [future] }, { signedBy: KEY }), { ok: false, reason: "signature-expired" });
    // maxAgeSeconds moves the bound.
    assert.deepEqual(verifyContext({ trace: [sent.trace], baggage, signature: [oldSignature] }, { signedBy: KEY, maxAgeSeconds: 300 }), { ok: true });
  });

  test("without a signing key the sender sends no signature, and drops a stale one it was given", async () => {
    const run = new RunTree({ name: "gateway", client, project_name: "signed", tracingEnabled: true });
    const headers = await withRunTree(run, () => injectTraceHeaders({ [SIGNATURE_HEADER]: "v1,t=1,s=stale" }));
    assert.equal(headers.get(SIGNATURE_HEADER), null);
  });

  test("a receiver configured with a missing or short key refuses to start", () => {
    assert.throws(() => serverTracing({ trust: { signedBy: "short" } }), /trust\.signedBy must be at least 32 bytes/);
    assert.throws(() => serverTracing({ trust: { signedBy: "" } }), /at least 32 bytes/);
    assert.doesNotThrow(() => serverTracing({ trust: { signedBy: KEY } }));
  });

  test("no trace header: nothing to verify, a new root without a warning", () => {
    const warnings: string[] = [];
    assert.deepEqual(receive({ signature: "v1,t=1,s=x" }, warnings), { kind: "none" });
    assert.deepEqual(warnings, []);
  });
});

test("a dropped request's signature (computed once per second and key) verifies only with its own key, and a new second gets a new one", () => {
  const other = randomBytes(32).toString("hex");
  const now = Date.now();
  const drop = { trace: undefined, baggage: undefined, sampling: ["drop"] };
  const mine = signContext("", undefined, KEY, now, "drop");
  const theirs = signContext("", undefined, other, now, "drop");
  assert.notEqual(mine, theirs);
  assert.equal(signContext("", undefined, KEY, now, "drop"), mine);
  assert.deepEqual(verifyContext({ ...drop, signature: [mine] }, { signedBy: KEY }, now), { ok: true });
  assert.deepEqual(verifyContext({ ...drop, signature: [theirs] }, { signedBy: KEY }, now), { ok: false, reason: "signature-invalid" });
  assert.deepEqual(verifyContext({ ...drop, signature: [theirs] }, { signedBy: other }, now), { ok: true });
  const later = signContext("", undefined, KEY, now + 1000, "drop");
  assert.notEqual(later, mine);
  assert.deepEqual(verifyContext({ ...drop, signature: [later] }, { signedBy: KEY }, now + 1000), { ok: true });
  assert.deepEqual(verifyContext({ ...drop, sampling: ["keep"], signature: [mine] }, { signedBy: KEY }, now), { ok: false, reason: "signature-invalid" });
});
