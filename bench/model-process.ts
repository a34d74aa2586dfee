// Child process: the local OpenAI-compatible model endpoint for the overhead
// benchmark, alone in its process so its CPU is not the app's. It answers
// from its deterministic responder with no added latency, so the time a
// request spends is the app's and its tracing's, not a model's.
import { startModelServer, type ModelServerHandle } from "../setup/src/model-server/index.js";

export type ModelRequest = { kind: "start" } | { kind: "stats" } | { kind: "stop" };

export interface ModelStats {
  completions: number;
  cpuSeconds: number;
}

let handle: ModelServerHandle | undefined;

// The parent is gone (it failed or was interrupted): do not linger as an orphan.
process.on("disconnect", () => process.exit(1));

process.on("message", (msg: ModelRequest) => {
  const reply = (body: object): void => void process.send?.(body);
  const fail = (e: unknown): void => reply({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  if (msg.kind === "start") {
    startModelServer({ port: 0, latencyMs: 0 }).then((h) => {
      handle = h;
      reply({ ok: true, url: h.url });
    }, fail);
  } else if (msg.kind === "stats") {
    const cpu = process.cpuUsage();
    reply({ ok: true, stats: { completions: handle?.stats().completions ?? 0, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies ModelStats });
  } else {
    (handle?.close() ?? Promise.resolve()).then(() => process.send?.({ ok: true }, () => process.exit(0)), fail);
  }
});
