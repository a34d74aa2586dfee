// `npm run example:middleware`: the local trace server, the internal role of
// server.ts as its own process and the edge in this one, one request that
// claims to belong to someone else's trace, and the resulting trace as text.
// `--once` exits after printing it; otherwise Ctrl-C stops everything.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { installShutdown } from "@tracing-patterns/kit";
import { ensureLocalStack, readTrace, renderTraceText, setServiceName, traceUrl } from "@tracing-patterns/setup";
import { createEdgeApp, listenOn, shutdownTimeoutMs } from "./server.js";

const serverFile = fileURLToPath(new URL("./server.ts", import.meta.url));

/** Starts a role of server.ts in another process and resolves with the URL from its "listening on" line. */
async function spawnRole(role: "internal", env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...process.execArgv, serverFile, role], { env, stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before listening:\n${output}`)));
  });
  return { child, url };
}

const exitAfter = process.argv.includes("--once");
const stack = await ensureLocalStack();
const internal = await spawnRole("internal", { ...process.env, LANGSMITH_SERVICE: "internal", PORT: "0" });
setServiceName("edge");
const edge = await listenOn(createEdgeApp(internal.url), Number(process.env.PORT ?? 0));
console.log(`edge listening on ${edge.url}, internal on ${internal.url}, traces at ${stack.traceServerUrl}`);

// The edge's own stop (drain, flush), then the internal process's, then the local stack.
const { shutdown } = installShutdown({
  timeoutMs: shutdownTimeoutMs(),
  drain: [edge.server],
  exit: () => {
    internal.child.kill("SIGTERM");
    void once(internal.child, "exit")
      .then(() => stack.stop())
      .then(() => process.exit(0));
  },
});

// A request from the internet that claims to be part of someone else's trace.
const forged = "20250101T000000000000Z00000000-0000-4000-8000-000000000000";
const response = await fetch(`${edge.url}/chat`, {
  method: "POST",
  headers: { "content-type": "application/json", "langsmith-trace": forged },
  body: JSON.stringify({ question: "What does the baggage header carry?" }),
});
const traceId = response.headers.get("x-trace-id") ?? "";
console.log(`\nPOST /chat -> ${response.status} ${JSON.stringify(await response.json())}`);
console.log(`x-trace-id: ${traceId}\n`);
console.log(renderTraceText(await readTrace(traceId, { expectRuns: 4 })));
console.log(`\nIn the viewer: ${traceUrl(traceId, stack.viewerUrl)}`);

if (exitAfter) {
  await shutdown("demo done");
} else {
  console.log(`\nTry: curl -si -X POST ${edge.url}/chat -H 'content-type: application/json' -d '{"question":"what is x-trace-id for?"}'`);
  console.log("Ctrl-C to stop.");
}
