// Summarises V8 CPU profiles (.cpuprofile, from `BENCH_CPU_PROFILE=<dir> npm
// run bench -- overhead`, one file per service process) into the top frames by
// self time, the share of time by where the code lives (an npm package,
// Node's internals, the app), and the kit's and the SDK's frames with what
// they call (inclusive time), per configuration:
//
//   node --conditions=source --import tsx bench/overhead/profile.ts <dir> [config-id] [top]
//
// The bench writes each configuration's profiles into `<dir>/<config-id>/`,
// one per thread of each service; all of them are added up.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Self time per frame, largest first. */
  frames: Array<{ frame: string; where: string; ms: number; share: number }>;
  /** Self time per place the code lives, largest first. */
  places: Array<{ where: string; ms: number; share: number }>;
  /** Time in a frame or anything it called, for frames of the kit and the SDK, largest first. */
  inclusive: Array<{ frame: string; where: string; ms: number; share: number }>;
}

export function summarizeProfiles(files: readonly string[], top = 15): ProfileSummary {
  const frames = new Map<string, { where: string; us: number }>();
  const places = new Map<string, number>();
  const inclusive = new Map<string, { where: string; us: number }>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parentOf = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
    profile.samples.forEach((id, i) => {
      const node = byId.get(id);
      const us = profile.timeDeltas[i] ?? 0;
      if (!node) return;
      total += us;
      const { functionName, url, lineNumber } = node.callFrame;
      const where = placeOf(url, functionName);
      const key = `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`;
      const entry = frames.get(key) ?? { where, us: 0 };
      entry.us += us;
      frames.set(key, entry);
      places.set(where, (places.get(where) ?? 0) + us);
      // Each kit or SDK frame on the sample's stack, once per sample even under recursion.
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
        const frame = byId.get(at)?.callFrame;
        if (!frame) break;
        const place = placeOf(frame.url, frame.functionName);
        if (place !== "kit" && place !== "langsmith") continue;
        const name = `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
        if (seen.has(name)) continue;
        seen.add(name);
        const e = inclusive.get(name) ?? { where: place, us: 0 };
        e.us += us;
        inclusive.set(name, e);
      }
    });
  }
  const share = (us: number): number => (total === 0 ? 0 : us / total);
  return {
    totalMs: total / 1000,
    frames: [...frames.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([frame, e]) => ({ frame, where: e.where, ms: e.us / 1000, share: share(e.us) })),
    places: [...places.entries()].sort((a, b) => b[1] - a[1]).map(([where, us]) => ({ where, ms: us / 1000, share: share(us) })),
    inclusive: [...inclusive.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([frame, e]) => ({ frame, where: e.where, ms: e.us / 1000, share: share(e.us) })),
  };
}

/** The npm package a frame's code is in, "node" for Node's own, "(idle)", "(gc)" and such for V8's pseudo-frames, else "app". */
function placeOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return "node";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m?.[1]) return m[1];
  if (url.includes("/examples/kit/")) return "kit";
  return "app";
}

function shortUrl(url: string): string {
  const i = url.lastIndexOf("node_modules/");
  if (i >= 0) return url.slice(i + "node_modules/".length);
  const e = url.indexOf("/examples/");
  return e >= 0 ? url.slice(e + 1) : url;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, config, top] = process.argv.slice(2);
  if (!dir) {
    console.error("usage: profile.ts <dir> [config-id] [top]");
    process.exit(2);
  }
  const folder = config === undefined ? dir : join(dir, config);
  const files = readdirSync(folder)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(folder, f));
  const s = summarizeProfiles(files, Number(top ?? 15));
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`.padStart(6);
  console.log(`${files.length} profiles, ${Math.round(s.totalMs)} ms sampled`);
  console.log("\nby place (self time):");
  for (const p of s.places.slice(0, 12)) console.log(`  ${pct(p.share)}  ${p.where}`);
  console.log("\ntop frames (self time):");
  for (const f of s.frames) console.log(`  ${pct(f.share)}  ${f.frame}  [${f.where}]`);
  console.log("\nkit and SDK frames, with what they call (inclusive time):");
  for (const f of s.inclusive) console.log(`  ${pct(f.share)}  ${f.frame}  [${f.where}]`);
}
