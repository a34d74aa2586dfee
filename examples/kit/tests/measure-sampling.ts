// What sampling costs, measured (a script, not a test: figures belong in reports, not assertions).
//
//   node --expose-gc --conditions=source --import tsx examples/kit/tests/measure-sampling.ts
//
// 1. Added CPU of a sampled-out request on one service: the same express app
//    (four steps, one outbound header build) with no tracing at all, then with
//    the kit at rate 0 as an edge, then as a signed mesh service receiving a
//    signed `drop`. CPU of this process (server and client) per request over
//    many loopback requests; the difference is what the kit adds.
// 2. Memory per held run: tail traces of ten runs held in a Sampler's buffer.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import express from "express";
import { RunTree } from "langsmith/run_trees";
import { withRunTree } from "langsmith/traceable";
import { createSampler, injectTraceHeaders, langsmithTracing, signContext, traced, SAMPLING_HEADER, SIGNATURE_HEADER } from "../index.js";

const KEY = randomBytes(32).toString("hex");
const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
process.env.LANGSMITH_TRACING = "true";
process.env.LANGSMITH_ENDPOINT = "http://127.0.0.1:9";

type Mode = "untraced" | "edge-drop" | "mesh-drop";

function app(mode: Mode): express.Express {
  const plain = async (n: number): Promise<number> => n + 1;
  const step = mode === "untraced" ? plain : traced(plain, { name: "step" });
  const a = express();
  if (mode === "edge-drop") a.use(langsmithTracing({ trust: "edge", sampling: createSampler({ rate: 0 }) }));
  if (mode === "mesh-drop") a.use(langsmithTracing({ trust: { signedBy: KEY }, sampling: createSampler({ rate: 1 }) }));
  a.get("/", async (_req, res) => {
    let n = 0;
    for (let i = 0; i < 4; i++) n = await step(n);
    const headers = mode === "untraced" ? new Headers({ "content-type": "application/json" }) : injectTraceHeaders({ "content-type": "application/json" }, { signingKey: KEY });
    res.json({ n, forwarded: headers.get(SAMPLING_HEADER) });
  });
  return a;
}

async function cpuPerRequest(mode: Mode): Promise<number> {
  const server = http.createServer(app(mode)).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers: Record<string, string> = mode === "mesh-drop" ? { [SAMPLING_HEADER]: "drop", [SIGNATURE_HEADER]: signContext("", undefined, KEY, Date.now(), "drop") } : {};
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      http.get({ port, host: "127.0.0.1", path: "/", agent, headers }, (res) => res.resume().on("end", resolve)).on("error", reject);
    });
  for (let i = 0; i < 2000; i++) await get();
  const before = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) await get();
  const used = process.cpuUsage(before);
  agent.destroy();
  server.close();
  return (used.user + used.system) / REQUESTS;
}

/**
 * The kit's own work for one dropped request, without HTTP noise: the
 * middleware on a request object, four traced steps, one outbound header
 * build; minus the same steps untraced. Median of rounds of 100k.
 */
async function kitWorkPerDroppedRequest(mode: "edge-drop" | "mesh-drop"): Promise<number> {
  const middleware = mode === "edge-drop" ? langsmithTracing({ trust: "edge", sampling: createSampler({ rate: 0 }) }) : langsmithTracing({ trust: { signedBy: KEY }, sampling: createSampler({ rate: 1 }) });
  const plain = async (n: number): Promise<number> => n + 1;
  const step = traced(plain, { name: "step" });
  const inbound = mode === "mesh-drop" ? { [SAMPLING_HEADER]: ["drop"], [SIGNATURE_HEADER]: [signContext("", undefined, KEY, Date.now(), "drop")] } : {};
  const fakeRes = { setHeader: () => undefined, once: () => undefined, end: () => undefined } as unknown as express.Response;
  const handler = async (f: (n: number) => Promise<number>, traceHeaders: boolean): Promise<void> => {
    let n = 0;
    for (let i = 0; i < 4; i++) n = await f(n);
    if (traceHeaders) injectTraceHeaders({ "content-type": "application/json" }, { signingKey: KEY });
    else new Headers({ "content-type": "application/json" });
  };
  const once = (kit: boolean): Promise<void> => {
    if (!kit) return handler(plain, false);
    const req = { method: "POST", url: "/chat", originalUrl: "/chat", headersDistinct: { ...inbound } } as unknown as express.Request;
    return new Promise<void>((resolve, reject) => middleware(req, fakeRes, () => void handler(step, true).then(resolve, reject)));
  };
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const cpu = async (kit: boolean): Promise<number> => {
      const before = process.cpuUsage();
      for (let i = 0; i < 100_000; i++) await once(kit);
      const used = process.cpuUsage(before);
      return (used.user + used.system) / 100_000;
    };
    const without = await cpu(false);
    rounds.push((await cpu(true)) - without);
  }
  return median(rounds);
}

async function heldRunBytes(): Promise<{ perRun: number; perTrace: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc");
  const sampler = createSampler({ rate: 0, tail: { limits: { maxTraces: 5000, maxBytes: 1024 * 1024 * 1024 } }, clientConfig: { apiUrl: "http://127.0.0.1:9", apiKey: "x" } });
  const traces = 2000;
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let t = 0; t < traces; t++) {
    const root = new RunTree({ name: "POST /chat", client: sampler.client, tracingEnabled: true, inputs: { method: "POST", path: "/chat" } });
    sampler.hold(root.trace_id, true);
    await root.postRun();
    await withRunTree(root, async () => {
      for (let i = 0; i < 4; i++) {
        const child = root.createChild({ name: `step_${i}`, inputs: { message: "how does the trace header reach the next service?" } });
        await child.postRun();
        await child.end({ answer: "It travels in langsmith-trace." });
        await child.patchRun();
      }
    });
  }
  gc();
  const held = sampler.stats().tail.heldRuns;
  const bytes = process.memoryUsage().heapUsed - before;
  sampler.close();
  return { perRun: Math.round(bytes / held), perTrace: Math.round(bytes / traces) };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
}

for (const mode of ["edge-drop", "mesh-drop"] as const) console.log(`Kit work per dropped request, ${mode}: ${(await kitWorkPerDroppedRequest(mode)).toFixed(1)} us of CPU (median of 5 rounds of 100k)`);
const results: Record<Mode, number[]> = { untraced: [], "edge-drop": [], "mesh-drop": [] };
for (let round = 0; round < 3; round++) for (const mode of Object.keys(results) as Mode[]) results[mode].push(await cpuPerRequest(mode));
const base = median(results.untraced);
console.log(`CPU per request (median of 3 rounds of ${REQUESTS}, server and client in one process):`);
for (const mode of Object.keys(results) as Mode[]) {
  const m = median(results[mode]);
  console.log(`  ${mode.padEnd(10)} ${m.toFixed(1)} us  (added ${(m - base).toFixed(1)} us; rounds ${results[mode].map((x) => x.toFixed(1)).join(", ")})`);
}
const memory = await heldRunBytes();
console.log(`Held tail runs: ${memory.perRun} bytes of heap per held run operation, ${memory.perTrace} bytes per trace of 9 operations (1 root create, 4 child create+update)`);
process.exit(0);
