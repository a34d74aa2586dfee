import type { Readable } from "node:stream";

/** What captured output keeps: the end, which is where the error that stopped a process is. */
export const CHILD_OUTPUT_LIMIT = 64 * 1024;

/**
 * Follows a child process's stdout and stderr: hands each complete line to
 * `onLine` as it arrives and keeps the last `limit` characters of both,
 * interleaved, for error reports, so a long-running child's output cannot
 * grow the launcher's memory without bound. Returns a reader of what is kept.
 */
export function captureOutput(
  child: { stdout: Readable; stderr: Readable },
  onLine: (line: string, from: "stdout" | "stderr") => void,
  limit = CHILD_OUTPUT_LIMIT,
): () => string {
  let output = "";
  for (const from of ["stdout", "stderr"] as const) {
    let partial = "";
    child[from].setEncoding("utf8").on("data", (chunk: string) => {
      output = (output + chunk).slice(-limit);
      const lines = (partial + chunk).split("\n");
      // A line that never ends is kept to the same limit.
      partial = (lines.pop() ?? "").slice(-limit);
      for (const line of lines) onLine(line, from);
    });
  }
  return () => output;
}
