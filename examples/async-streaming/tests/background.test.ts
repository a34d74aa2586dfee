// BackgroundTasks' promise that a failed task never crashes the process: a task
// that throws before returning its promise, and an onError that throws itself,
// end up reported, never thrown out of run() or left as an unhandled rejection
// (which Node's default --unhandled-rejections=throw turns into a crash).
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { BackgroundTasks } from "../index.js";

let unhandled: unknown[];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
});

afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

/** Node reports unhandled rejections after the microtask queue drains; one macrotask later they have been. */
const afterRejectionChecks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("BackgroundTasks failures", () => {
  test("a task that throws synchronously does not escape run() and reaches onError", async () => {
    const errors: unknown[] = [];
    const background = new BackgroundTasks((error) => errors.push(error));
    const failure = new Error("thrown before any await");
    assert.doesNotThrow(() =>
      background.run(() => {
        throw failure;
      }),
    );
    await background.drain();
    await afterRejectionChecks();
    assert.deepEqual(errors, [failure]);
    assert.equal(background.size, 0);
    assert.deepEqual(unhandled, []);
  });

  test("an onError that throws leaves no unhandled rejection, and the other tasks still settle", async () => {
    const background = new BackgroundTasks(() => {
      throw new Error("the error handler failed");
    });
    const originalConsoleError = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => logged.push(args);
    let finished = false;
    try {
      background.run(() => Promise.reject(new Error("task failed")));
      background.run(async () => {
        finished = true;
      });
      await background.drain();
      await afterRejectionChecks();
    } finally {
      console.error = originalConsoleError;
    }
    assert.deepEqual(unhandled, []);
    assert.equal(finished, true);
    assert.equal(background.size, 0);
    assert.equal(logged.length, 1, "both failures are logged once, together");
    assert.match(String(logged[0]?.[0]), /onError threw/);
  });
});
