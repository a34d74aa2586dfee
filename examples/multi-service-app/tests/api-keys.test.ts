import assert from "node:assert/strict";
import { test } from "node:test";
import { parseApiKeys } from "../services/edge.js";

test("GATEWAY_API_KEYS: key=tenant pairs; a bare key is refused and never echoed", () => {
  assert.deepEqual([...parseApiKeys("k1=alice, k2=bob")], [["k1", "alice"], ["k2", "bob"]]);
  for (const spec of ["sk-secret-123", "k1=alice,sk-secret-123", "=alice", "k1="]) {
    assert.throws(
      () => parseApiKeys(spec),
      (err: Error) => /is not key=tenant/.test(err.message) && !err.message.includes("sk-secret") && !err.message.includes("alice"),
      spec,
    );
  }
});
