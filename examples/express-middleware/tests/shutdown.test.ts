// Shutdown of the example's services: a request in flight at SIGTERM is
// answered and its run stored, and a request that never finishes cannot hold
// the exit. The README's shutdown step is run here as written (the kit's own
// tests of the shutdown are in examples/kit/tests/shutdown.test.ts).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { Client, type Run } from "langsmith";
import { startTraceServer, type TraceServerHandle } from "@tracing-patterns/setup";
import { isolateFromLangSmithEnv, tracingEnv } from "./helpers.js";

isolateFromLangSmithEnv();

const exampleDir = fileURLToPath(new URL("..", import.meta.url));
const nodeArgs = ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx"];

let traceServer: TraceServerHandle;
const children: ChildProcess[] = [];
const servers: http.Server[] = [];

before(async () => {
  traceServer = await startTraceServer({ port: 0 });
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await traceServer?.close();
});

interface Spawned {
  child: ChildProcess;
  /** Resolves with the first match of `pattern` in stdout (searched from the start). */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  output(): string;
}

function start(args: string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: exampleDir, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  const waiters: Array<() => void> = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of [...waiters]) check();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    child,
    output: () => `stdout:\n${stdout}\nstderr:\n${stderr}`,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(stdout);
          if (match === null) return;
          waiters.splice(waiters.indexOf(check), 1);
          resolve(match);
        };
        waiters.push(check);
        child.once("exit", (code) => reject(new Error(`exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`)));
        check();
      }),
  };
}

async function runsIn(project: string): Promise<Run[]> {
  const client = new Client({ apiUrl: traceServer.url, apiKey: "local" });
  const runs: Run[] = [];
  for await (const run of client.listRuns({ projectName: project })) runs.push(run);
  return runs;
}

/**
 * The README's shutdown snippet ("How to copy it"), unindented: the code people
 * copy. It imports the kit from where the README says to copy it, ./tracing/;
 * here that is the workspace package.
 */
async function readmeShutdownSnippet(): Promise<string> {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)\n\s*```/g)].map((m) => m[1] ?? "").filter((b) => b.includes("installShutdown({"));
  assert.equal(blocks.length, 1, "one shutdown snippet in the README");
  const snippet = (blocks[0] ?? "")
    .split("\n")
    .map((line) => line.replace(/^ {3}/, ""))
    .join("\n");
  assert.match(snippet, /from "\.\/tracing\/index\.js"/);
  return snippet.replaceAll("./tracing/index.js", "@tracing-patterns/kit");
}

describe("README shutdown step, run as written", () => {
  test("a request in flight at SIGTERM is answered, its run stored as ended, and the process exits 0", { timeout: 60_000 }, async () => {
    // Plain JavaScript around the snippet, so node can evaluate it as given.
    // The route waits for the test to write to stdin (after SIGTERM), then
    // works for one more second: a flush that does not wait for requests
    // returns within milliseconds and exits under it.
    const before = `
import express from "express";
import { langsmithTracing } from "@tracing-patterns/kit";
const app = express();
app.use(langsmithTracing({ trust: "edge" }));
app.get("/slow", async (_req, res) => {
  console.log("handler started");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  res.json({ ok: true });
});
const server = app.listen(0, "127.0.0.1", () => console.log("listening on " + server.address().port));
`;
    // Registered after the snippet's handler, so it runs once the shutdown has begun.
    const afterSnippet = `\nprocess.on("SIGTERM", () => console.log("shutdown begun"));\n`;
    const code = before + (await readmeShutdownSnippet()) + afterSnippet;
    const app = start(["--input-type=module", "-e", code], { ...tracingEnv(traceServer.url, "readme-shutdown"), LANGSMITH_SERVICE: "readme" });
    const port = (await app.waitFor(/listening on (\d+)/))[1];

    const request = fetch(`http://127.0.0.1:${port}/slow`);
    await app.waitFor(/handler started/);
    const exited = once(app.child, "exit");
    app.child.kill("SIGTERM");
    await app.waitFor(/shutdown begun/);
    app.child.stdin?.write("answer now\n");

    const response = await request;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true });
    const traceId = response.headers.get("x-trace-id");
    const [code0] = (await exited) as [number | null];
    assert.equal(code0, 0, app.output());

    const runs = await runsIn("readme-shutdown");
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.name, "GET /slow");
    assert.equal(runs[0]?.trace_id, traceId);
    assert.ok(runs[0]?.end_time, "the run ended");
    assert.deepEqual(runs[0]?.outputs, { status_code: 200 });
  });
});

describe("server.ts", () => {
  test("a request that never finishes is cut off at the drain deadline, its run still flushed, and the process exits 0", { timeout: 60_000 }, async () => {
    // The internal service the edge calls accepts the request and never answers.
    let received: () => void = () => undefined;
    const calledInternal = new Promise<void>((resolve) => {
      received = resolve;
    });
    const hung = http.createServer(() => received());
    servers.push(hung);
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const internalUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;

    const edge = start(["server.ts", "edge"], {
      ...tracingEnv(traceServer.url, "hung-request"),
      LANGSMITH_SERVICE: "edge",
      INTERNAL_URL: internalUrl,
      PORT: "0",
      SHUTDOWN_TIMEOUT_MS: "2000",
    });
    const url = (await edge.waitFor(/edge listening on (http:\/\/\S+)/))[1];
    const request = fetch(`${url}/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: "{\"question\":\"hi\"}" });
    await calledInternal;
    const exited = once(edge.child, "exit");
    edge.child.kill("SIGTERM");

    await assert.rejects(request, "the cut-off request gets no answer");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, edge.output());
    assert.match(edge.output(), /\[shutdown\] SIGTERM: not accepting connections; finishing 1 in-flight request\(s\) within 1500 ms/);
    assert.match(edge.output(), /\[shutdown\] in-flight requests cut off at the deadline; traces flushed in \d+ ms/);
    assert.doesNotMatch(edge.output(), /traces NOT flushed/);

    const runs = await runsIn("hung-request");
    assert.deepEqual(runs.map((r) => r.name), ["POST /chat"]);
    assert.ok(runs[0]?.end_time, "the cut-off request's run ended and was flushed");
    assert.equal(runs[0]?.error, "client disconnected");
  });
});
