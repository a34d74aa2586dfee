// normalizeTime: the one place run times are parsed (ISO strings and epoch milliseconds).
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeTime } from "../setup/src/trace-server/time.js";

test("epoch milliseconds keep microseconds, and a fraction that rounds up carries into the millisecond", () => {
  assert.equal(normalizeTime(1700000000000), "2023-11-14T22:13:20.000000Z");
  assert.equal(normalizeTime(1700000000000.25), "2023-11-14T22:13:20.000250Z");
  assert.equal(normalizeTime(1700000000000 + 0.9996), "2023-11-14T22:13:20.001000Z");
  assert.equal(normalizeTime(1700000000999 + 0.9996), "2023-11-14T22:13:21.000000Z");
  assert.equal(normalizeTime(-0.5), "1969-12-31T23:59:59.999500Z");
  assert.equal(normalizeTime(Number.NaN), undefined);
});

test("years 0000-0099 stay themselves (Date.UTC would read them as 1900-1999)", () => {
  assert.equal(normalizeTime("0050-01-01T00:00:00Z"), "0050-01-01T00:00:00.000000Z");
  assert.equal(normalizeTime("0099-12-31 23:59:59.5+00:00"), "0099-12-31T23:59:59.500000Z");
  // Year 0 is a leap year (divisible by 400), 1900 is not.
  assert.equal(normalizeTime("0000-02-29T12:00:00Z"), "0000-02-29T12:00:00.000000Z");
  assert.equal(normalizeTime("1900-02-29T12:00:00Z"), undefined);
});

test("zones, calendar checks, and times no dotted_order can hold", () => {
  assert.equal(normalizeTime("2024-02-29T12:00:00.1234567+05:30"), "2024-02-29T06:30:00.123456Z");
  assert.equal(normalizeTime("2025-03-04T05:06:07"), "2025-03-04T05:06:07.000000Z");
  assert.equal(normalizeTime("2025-02-30T00:00:00Z"), undefined);
  assert.equal(normalizeTime("2025-03-04T24:00:00Z"), undefined);
  // Shifted by their zone out of 0000-9999, or past it as epoch milliseconds.
  assert.equal(normalizeTime("0000-01-01T00:00:00+01:00"), undefined);
  assert.equal(normalizeTime("9999-12-31T23:30:00-01:00"), undefined);
  assert.equal(normalizeTime(Date.UTC(10000, 0, 1)), undefined);
});
