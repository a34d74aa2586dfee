// start.ts, the demo launcher, as a terminal runs it: its own process group,
// with redis-server, the chat service and the worker as its children. Ctrl-C
// in a terminal sends SIGINT to the whole group, npm forwards a second SIGINT
// to the launcher, and the launcher then sends SIGTERM to each child. The
// worker must treat the repeats as the same request: finish (or cut off at its
// deadline) the job in progress, flush its runs and exit, and the launcher must
// show what its children reported on the way out.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, test } from "node:test";
import { Queue } from "bullmq";
import { Client, type Run } from "langsmith";
import { addTracedJob, EXAMPLE_DIR, type TracedJobData } from "../index.js";
import type { AnswerJob, AnswerResult } from "../worker.js";
import { byName, isolateEnv, readProjectTraces, startLocalStack, type LocalStack } from "./helpers.js";

isolateEnv();

const PROJECT = "start-ctrl-c";
const QUESTION = "Is this job finished after Ctrl-C?";
let stack: LocalStack;
let launcher: ChildProcess | undefined;

before(async () => {
  stack = await startLocalStack();
});

after(async () => {
  // Only when the test failed before the launcher exited: the whole group, so no child outlives the test.
  if (launcher?.pid !== undefined && launcher.exitCode === null && launcher.signalCode === null) {
    const exited = once(launcher, "exit");
    process.kill(-launcher.pid, "SIGKILL");
    await exited;
  }
  await stack?.close();
});

/** Every line of the launcher's stdout and stderr, to `listener`; resolves with the first capture group of the first line matching `pattern`. */
function lineMatching(lines: Array<(line: string) => void>, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    lines.push((line) => {
      const match = pattern.exec(line);
      if (match) resolve(match[1] ?? match[0]);
    });
  });
}

// The guard turns a launcher that never exits into a failure; the budget under test is 8 s.
test("Ctrl-C on the launcher's process group, plus npm's forwarded SIGINT, lets the worker finish its job and flush before everything exits 0", { timeout: 90_000 }, async () => {
  const client = new Client({ apiUrl: stack.traces.url, apiKey: "local" });
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", join(EXAMPLE_DIR, "start.ts")], {
    cwd: EXAMPLE_DIR,
    env: {
      ...process.env,
      // The launcher's local stack is this test's: the servers are reused, not started.
      TRACING_PATTERNS_OFFLINE: "true",
      TRACE_SERVER_URL: stack.traces.url,
      MODEL_SERVER_URL: stack.model.url,
      LANGSMITH_PROJECT: PROJECT,
      SHUTDOWN_TIMEOUT_MS: "8000",
    },
    // A process group of its own, as a shell gives a foreground job: what Ctrl-C signals.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  launcher = child;
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const listeners: Array<(line: string) => void> = [];
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) for (const listener of listeners) listener(line);
    });
  }
  const redisUrl = lineMatching(listeners, /· redis (redis:\/\/\S+) ·/);
  const interactive = lineMatching(listeners, /^Ctrl-C to stop\.$/);
  await Promise.race([interactive, exited.then(() => assert.fail(`start.ts exited before it was up:\n${output}`))]);

  // A job in progress at Ctrl-C: its model call takes 1.5 s.
  stack.model.inject({ latencyMs: 1_500, times: 1 });
  const queue = new Queue<TracedJobData<AnswerJob>, AnswerResult>("answers", { connection: { url: await redisUrl } });
  await addTracedJob(queue, "answer", { question: QUESTION });
  await queue.close();
  // Readiness: the job's run has reached the trace server, so the worker is running it.
  const jobRun = async (): Promise<Run | undefined> =>
    [...(await readProjectTraces(client, PROJECT)).values()].flat().find((r) => r.name === "process answers/answer" && JSON.stringify(r.inputs).includes(QUESTION));
  while ((await jobRun()) === undefined) await delay(50);

  assert.ok(child.pid !== undefined);
  process.kill(-child.pid, "SIGINT");
  process.kill(child.pid, "SIGINT");
  const [code, signal] = await exited;
  assert.equal(code, 0, `${signal ?? ""}\n${output}`);

  assert.match(output, /\[worker\] \[shutdown\] SIGINT: not taking new jobs; finishing 1 job\(s\) in progress/);
  assert.match(output, /\[worker\] \[shutdown\] SIGTERM while stopping: ignored/);
  // Finished, or cut off when redis-server (which got the Ctrl-C too) went first; the run is checked below.
  assert.match(output, /\[worker\] \[shutdown\] jobs in progress (?:finished|cut off at the deadline); traces flushed in \d+ ms/);
  assert.doesNotMatch(output, /exiting now/);
  assert.match(output, /\[chat\] \[shutdown\] .*traces flushed in \d+ ms/);
  // redis-server got the Ctrl-C too: the worker reports losing it once, not at every reconnect attempt.
  assert.ok((output.match(/\[worker\] \[worker\] Error: connect ECONNREFUSED/g) ?? []).length <= 1, output);

  const run = await jobRun();
  assert.ok(run?.end_time, "the job's run was ended and flushed");
  assert.equal(run.error ?? undefined, undefined);
  assert.match(JSON.stringify(run.outputs), /\[local-model\]/);
  const trace = (await readProjectTraces(client, PROJECT)).get(run.trace_id ?? "") ?? [];
  assert.ok(byName(trace, "answer_job").end_time, "the handler's run too");
});
