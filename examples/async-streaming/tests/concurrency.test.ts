// Concurrency inside one service: fan-out and fan-in under load, a shared
// concurrency limit, state and listeners shared between requests, and work
// deferred to a runner. Each broken variant is asserted to be broken (runs
// leak into another request's trace, or land in traces of their own) and each
// fix to give every request exactly its own, complete tree.
import assert from "node:assert/strict";
import { AsyncResource } from "node:async_hooks";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { Client, type Run } from "langsmith";
import { RunTree } from "langsmith/run_trees";
import { getCurrentRunTree, traceable, withRunTree } from "langsmith/traceable";
import { formatReport, verifyTrace } from "@tracing-patterns/setup";
import { BackgroundTasks, checkIsolation, currentRun, formatIsolation, pLimit } from "../index.js";
import { isolateEnv, readProjectTraces, startLocalStack, useEnv, type LocalStack } from "./helpers.js";

isolateEnv();

let stack: LocalStack;
let client: Client;

before(async () => {
  stack = await startLocalStack();
  useEnv(stack.env("api", "concurrency"));
  client = new Client({ apiUrl: stack.traces.url, apiKey: "local" });
});

after(async () => {
  await stack?.close();
});

interface Step {
  request_id: string;
  part: string;
}

/** Simulated I/O of varying length, so concurrent requests interleave. */
function work(step: Step): Promise<void> {
  const jitter = [...`${step.request_id}${step.part}`].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 7;
  return sleep(2 + jitter);
}

const lookup = traceable(
  async (step: Step) => {
    await work(step);
    if (step.part === "flaky") throw new Error(`${step.part} source unavailable`);
    return { found: `${step.part} for ${step.request_id}` };
  },
  { name: "lookup", run_type: "retriever" },
);

/**
 * Runs `count` requests at once, each a traced root `handle_request` with
 * input request_id, and reads every trace back: request id -> the runs of the
 * trace whose root is that request.
 */
async function runRequests(project: string, count: number, body: (requestId: string) => Promise<unknown>): Promise<Map<string, Run[]>> {
  process.env.LANGSMITH_PROJECT = project;
  const handle = traceable(async (input: { request_id: string }) => body(input.request_id), { name: "handle_request" });
  await Promise.all(Array.from({ length: count }, (_, i) => handle({ request_id: `req-${String(i).padStart(3, "0")}` }).catch(() => undefined)));
  await RunTree.getSharedClient().awaitPendingTraceBatches();
  const byRequest = new Map<string, Run[]>();
  for (const runs of (await readProjectTraces(client, project)).values()) {
    const root = runs.find((r) => r.name === "handle_request" && !r.parent_run_id);
    const requestId = (root?.inputs as { request_id?: string } | undefined)?.request_id;
    if (requestId) byRequest.set(requestId, runs);
  }
  assert.equal(byRequest.size, count);
  return byRequest;
}

/** Every request's trace is one complete tree holding its own `expected` runs named `step` and nothing of another request's. */
function problems(byRequest: Map<string, Run[]>, step: string, expected: number): string[] {
  const found: string[] = [];
  for (const [requestId, runs] of byRequest) {
    const report = verifyTrace(runs, { rootName: "handle_request", runNames: [step], services: ["api"] });
    if (!report.ok) found.push(formatReport(report));
    const isolation = checkIsolation(runs, requestId);
    if (!isolation.ok || isolation.own !== expected + 1) found.push(formatIsolation(isolation));
  }
  return found;
}

describe("fan-out and fan-in under load", () => {
  test("Promise.all: 100 concurrent requests x 5 lookups, every lookup under its own request's root", async () => {
    const parts = ["web", "docs", "tickets", "wiki", "code"];
    const byRequest = await runRequests("fanout-all", 100, (request_id) => Promise.all(parts.map((part) => lookup({ request_id, part }))));
    assert.equal(byRequest.size, 100);
    assert.deepEqual(problems(byRequest, "lookup", 5), []);
    for (const runs of byRequest.values()) {
      const root = runs.find((r) => r.name === "handle_request");
      assert.ok(root);
      assert.ok(runs.filter((r) => r.name === "lookup").every((r) => r.parent_run_id === root.id));
    }
  });

  test("Promise.allSettled: a failed branch is recorded on its own run and the request still completes", async () => {
    const parts = ["web", "flaky", "docs"];
    const byRequest = await runRequests("fanout-settled", 50, async (request_id) => {
      const settled = await Promise.allSettled(parts.map((part) => lookup({ request_id, part })));
      return { ok: settled.filter((s) => s.status === "fulfilled").length };
    });
    assert.deepEqual(problems(byRequest, "lookup", 3), []);
    for (const runs of byRequest.values()) {
      const failed = runs.filter((r) => r.error);
      assert.deepEqual(failed.map((r) => [r.name, (r.inputs as Step).part]), [["lookup", "flaky"]]);
      assert.deepEqual(runs.find((r) => r.name === "handle_request")?.outputs, { ok: 2 });
    }
  });
});

/**
 * A shared limiter written the obvious way (and the way p-limit worked up to
 * version 3): a finishing task starts the next queued one, so the next task
 * runs in the finishing task's async context, i.e. inside another request.
 */
function naiveLimiter(concurrency: number, bind: boolean) {
  const queue: Array<() => void> = [];
  let active = 0;
  const next = (): void => {
    if (active >= concurrency) return;
    const start = queue.shift();
    if (!start) return;
    active++;
    start();
  };
  return <T>(task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      // The fix: bind the task to the context of the code that queued it.
      const run = bind ? AsyncResource.bind(task) : task;
      queue.push(() => {
        run()
          .then(resolve, reject)
          .finally(() => {
            active--;
            next();
          });
      });
      next();
    });
}

describe("a concurrency limit shared by all requests", () => {
  const parts = ["a", "b", "c", "d"];

  test("broken: a hand-written limiter runs queued tasks inside other requests' traces", async () => {
    const limit = naiveLimiter(3, false);
    const byRequest = await runRequests("limit-naive", 30, (request_id) => Promise.all(parts.map((part) => limit(() => lookup({ request_id, part })))));
    const leaked = [...byRequest].filter(([requestId, runs]) => !checkIsolation(runs, requestId).ok);
    assert.ok(leaked.length > 0, "expected lookups to land in other requests' traces");
    // Requests whose lookups all ran elsewhere have none: the structural check sees that part.
    assert.ok([...byRequest.values()].some((runs) => !verifyTrace(runs, { runNames: ["lookup"] }).ok));
  });

  test("fixed with AsyncResource.bind at enqueue time", async () => {
    const limit = naiveLimiter(3, true);
    const byRequest = await runRequests("limit-bound", 30, (request_id) => Promise.all(parts.map((part) => limit(() => lookup({ request_id, part })))));
    assert.deepEqual(problems(byRequest, "lookup", parts.length), []);
  });

  test("fixed with p-limit 7, which keeps the queuing code's context", async () => {
    const limit = pLimit(3);
    const byRequest = await runRequests("limit-plimit", 30, (request_id) => Promise.all(parts.map((part) => limit(() => lookup({ request_id, part })))));
    assert.deepEqual(problems(byRequest, "lookup", parts.length), []);
  });
});

describe("state shared between concurrent requests", () => {
  const save = traceable(async (step: Step) => ({ saved: step.part }), { name: "save_answer", run_type: "tool" });

  test("broken: a run tree kept on a shared object is another request's by the time it is used", async () => {
    // A service object created once and shared by every request, remembering "the current run".
    const assistant = {
      run: undefined as RunTree | undefined,
      async handle(request_id: string) {
        this.run = getCurrentRunTree();
        await work({ request_id, part: "draft" });
        // Explicit parent, taken from shared state: whichever request wrote it last.
        const run = this.run;
        return withRunTree(run, () => save({ request_id, part: "answer" }));
      },
    };
    const byRequest = await runRequests("state-shared", 30, (request_id) => assistant.handle(request_id));
    const failing = [...byRequest].filter(([requestId, runs]) => !checkIsolation(runs, requestId).ok);
    assert.ok(failing.length > 0);
    // A request that lost its save_answer has a trace without it; the verifier sees that one.
    assert.ok([...byRequest.values()].some((runs) => !verifyTrace(runs, { runNames: ["save_answer"] }).ok));
  });

  test("fixed: the run travels with the call (a parameter), or is not stored at all (AsyncLocalStorage)", async () => {
    const assistant = {
      async handle(request_id: string, run: RunTree) {
        await work({ request_id, part: "draft" });
        return withRunTree(run, () => save({ request_id, part: "answer" }));
      },
    };
    const byRequest = await runRequests("state-param", 30, (request_id) => assistant.handle(request_id, getCurrentRunTree()));
    assert.deepEqual(problems(byRequest, "save_answer", 1), []);
  });
});

/**
 * A shared component that batches calls and answers through an EventEmitter,
 * like a client multiplexing one connection. Its flush timer is created by the
 * request that opened the batch, so every listener the flush triggers runs in
 * that request's context.
 */
class BatchingGateway extends EventEmitter {
  #batch: string[] = [];
  send(id: string): void {
    this.#batch.push(id);
    if (this.#batch.length === 1) setTimeout(() => this.#flush(), 5);
  }
  #flush(): void {
    const batch = this.#batch;
    this.#batch = [];
    for (const id of batch) this.emit(`reply:${id}`, `reply to ${id}`);
  }
}

describe("listeners of a shared event emitter", () => {
  const format = traceable(async (step: Step) => ({ formatted: step.part }), { name: "format_reply" });

  /** Each request sends through one shared gateway and formats the reply: in the listener, in a bound listener, or after awaiting it. */
  function viaGateway(project: string, mode: "in-listener" | "bound-listener" | "after-await"): Promise<Map<string, Run[]>> {
    const gateway = new BatchingGateway();
    gateway.setMaxListeners(0);
    return runRequests(project, 30, async (request_id) => {
      if (mode === "after-await") {
        const reply = await new Promise<string>((resolve) => {
          gateway.once(`reply:${request_id}`, resolve);
          gateway.send(request_id);
        });
        return format({ request_id, part: reply });
      }
      return new Promise<unknown>((resolve) => {
        const listener = (text: string): void => void format({ request_id, part: text }).then(resolve);
        gateway.once(`reply:${request_id}`, mode === "bound-listener" ? AsyncResource.bind(listener) : listener);
        gateway.send(request_id);
      });
    });
  }

  test("broken: work done in the listener lands in the trace of the request that opened the batch", async () => {
    const byRequest = await viaGateway("emitter-listener", "in-listener");
    assert.ok([...byRequest].some(([requestId, runs]) => !checkIsolation(runs, requestId).ok));
  });

  test("fixed: AsyncResource.bind(listener) runs it in the context of the request that registered it", async () => {
    assert.deepEqual(problems(await viaGateway("emitter-bound", "bound-listener"), "format_reply", 1), []);
  });

  test("awaiting the reply and doing the work after the await is already safe", async () => {
    assert.deepEqual(problems(await viaGateway("emitter-await", "after-await"), "format_reply", 1), []);
  });
});

describe("work handed to a runner started elsewhere", () => {
  const remember = traceable(async (step: Step) => ({ remembered: step.part }), { name: "remember" });

  /** An in-process job runner started once, at startup: its loop runs in the startup context. */
  function startRunner() {
    const jobs: Array<() => Promise<unknown>> = [];
    const idleWaiters: Array<() => void> = [];
    let wake: (() => void) | undefined;
    void (async () => {
      for (;;) {
        const job = jobs.shift();
        if (job) {
          await job().catch(() => undefined);
        } else {
          for (const resolve of idleWaiters.splice(0)) resolve();
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
    })();
    return {
      enqueue(job: () => Promise<unknown>): void {
        jobs.push(job);
        wake?.();
      },
      idle: () => new Promise<void>((resolve) => idleWaiters.push(resolve)),
    };
  }

  test("broken: the job's runs start traces of their own; fixed: BackgroundTasks runs it under the captured run", async () => {
    process.env.LANGSMITH_PROJECT = "runner";
    const runner = startRunner();
    const background = new BackgroundTasks();
    const handle = traceable(
      async (input: { request_id: string }) => {
        runner.enqueue(() => remember({ request_id: input.request_id, part: "lost" }));
        // The fix captures the run here, where the request's context still exists.
        const run = currentRun();
        runner.enqueue(() => {
          background.run(() => remember({ request_id: input.request_id, part: "kept" }), run);
          return background.drain();
        });
        return { accepted: true };
      },
      { name: "handle_request" },
    );
    const idle = runner.idle();
    await handle({ request_id: "req-runner" });
    await idle;
    await RunTree.getSharedClient().awaitPendingTraceBatches();
    const traces = [...(await readProjectTraces(client, "runner")).values()];
    const main = traces.find((runs) => runs.some((r) => r.name === "handle_request"));
    assert.ok(main);
    assert.deepEqual(main.filter((r) => r.name === "remember").map((r) => (r.inputs as Step).part), ["kept"]);
    const others = traces.filter((runs) => runs !== main);
    assert.deepEqual(others.map((runs) => runs.map((r) => [r.name, (r.inputs as Step).part, r.parent_run_id ?? null])), [[["remember", "lost", null]]]);
  });
});
