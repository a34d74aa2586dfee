import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Reply of a bench child process to one request. */
type Reply<T> = ({ ok: true } & T) | { ok: false; error: string };

export interface Child {
  process: ChildProcess;
  /** Send one request and wait (bounded) for the reply. */
  ask<T extends object>(message: object, timeoutMs: number): Promise<T>;
}

/**
 * Fork a TypeScript module of bench/ under tsx, with the source condition,
 * as its own process. `env` is the whole environment: no LANGSMITH_* from
 * the parent leaks into a child unless passed on purpose.
 */
export function forkBench(module: string, env: NodeJS.ProcessEnv, extraArgs: string[] = []): Child {
  const child = fork(fileURLToPath(new URL(module, import.meta.url)), [], {
    execArgv: ["--disable-warning=ExperimentalWarning", "--conditions=source", "--import", "tsx", ...extraArgs],
    env,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ask = <T extends object>(message: object, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        child.kill();
        reject(new Error(`${module} did not answer ${JSON.stringify(message)} within ${timeoutMs} ms; stopped it`));
      }, timeoutMs);
      const onMessage = (reply: Reply<T>): void => {
        cleanup();
        if (reply.ok) resolve(reply as T);
        else reject(new Error(`${module}: ${reply.error}`));
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new Error(`${module} exited (${signal ?? code}) before answering`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
      };
      child.on("message", onMessage);
      child.on("exit", onExit);
      child.send(message);
    });
  return { process: child, ask };
}

/** Environment for a child: PATH and HOME only, plus what the caller adds. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...extra };
  for (const key of ["PATH", "HOME", "TMPDIR", "LANG"]) if (process.env[key] !== undefined) env[key] = process.env[key];
  return env;
}
