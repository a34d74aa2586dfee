// Finds rot in the repository's markdown: relative links to missing files or headings, malformed
// http(s) links, repository paths named in inline code that do not exist, `npm run X` / `npm test`
// naming scripts that package.json does not have, and `setup/bin/run <task>` naming unknown tasks.
//
//   const facts = loadRepoFacts(root);
//   const problems = docFiles(facts).flatMap((path) => checkDoc(facts, path));   // [] when nothing rotted
//
// What counts as a repository path (inline code only, so prose and output samples never match): the
// whole code span is one path-like token with a slash whose first segment is a top-level entry of the
// repository or of the doc's own directory (`setup/src/flush.ts`, `tests/x.test.ts` in an example's
// README), or that starts with ./ or ../. Anything else (`langsmith/traceable`, `lib/client.js` inside a
// dependency, `src/server.ts` in a user's project) is not ours and is not checked. Paths through a
// directory the root .gitignore lists (`setup/dist`, `node_modules/...`) are build output, skipped.
// `*` is a glob and must match at least one file. npm commands (prose, inline code, shell blocks) name
// scripts of the root package.json, or of <dir>/package.json after `cd <dir>` in a shell block; after a
// cd out of the repository (into the reader's own project) they are the reader's and are not checked.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { posix } from "node:path";
import { parseMarkdown, slugger, stripLinksAndTags, type Fence } from "./markdown.js";

export interface Problem {
  file: string;
  line: number;
  message: string;
}

export interface RepoFacts {
  root: string;
  /** Every file and directory, repository-relative with "/" separators; directories end in "/". */
  entries: ReadonlySet<string>;
  /** `setup/bin/run` tasks and examples, as its usage lists them (empty without that script). */
  tasks: ReadonlySet<string>;
  examples: ReadonlySet<string>;
  /** Directory names the root .gitignore excludes: paths through them are build output. */
  ignoredDirs: ReadonlySet<string>;
}

/** Problems of one markdown file (repository-relative path). */
export function checkDoc(facts: RepoFacts, doc: string): Problem[] {
  const md = parseMarkdown(readFileSync(posix.join(facts.root, doc), "utf8"));
  const problems: Problem[] = [];
  const report = (line: number, message: string): void => void problems.push({ file: doc, line, message });
  for (const link of md.links) checkLink(facts, doc, link.target, (m) => report(link.line, m));
  for (const span of md.codeSpans) {
    checkPathToken(facts, doc, span.text, (m) => report(span.line, m));
    checkCommands(facts, doc, span.text, ".", (m) => report(span.line, m));
  }
  for (const line of md.proseLines) checkCommands(facts, doc, stripCode(line.text), ".", (m) => report(line.line, m));
  for (const fence of md.fences) if (isShell(fence)) checkShellFence(facts, doc, fence, report);
  return problems;
}

/** README.md, docs/*.md and examples/*\/README.md: the documentation the docs test covers. */
export function docFiles(facts: RepoFacts): string[] {
  return [...facts.entries]
    .filter((p) => p === "README.md" || /^docs\/[^/]+\.md$/.test(p) || /^examples\/[^/]+\/README\.md$/.test(p))
    .sort();
}

/** Walks the repository (without .git, node_modules and .gitignore'd directories) and asks setup/bin/run for its tasks. */
export function loadRepoFacts(root: string): RepoFacts {
  const ignoredDirs = new Set(["node_modules", ".git"]);
  if (existsSync(posix.join(root, ".gitignore"))) {
    for (const line of readFileSync(posix.join(root, ".gitignore"), "utf8").split("\n")) {
      const m = /^\/?([^*!#/\s]+)\/$/.exec(line.trim());
      if (m?.[1]) ignoredDirs.add(m[1]);
    }
  }
  const entries = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(posix.join(root, dir), { withFileTypes: true })) {
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (ignoredDirs.has(entry.name)) continue;
        entries.add(`${rel}/`);
        walk(rel);
      } else entries.add(rel);
    }
  };
  walk("");
  const usage = entries.has("setup/bin/run") ? runUsage(root) : { tasks: new Set<string>(), examples: new Set<string>() };
  return { root, entries, ignoredDirs, ...usage };
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join("\n");
}

// `setup/bin/run --help` prints its task and example lists without installing anything.
function runUsage(root: string): { tasks: Set<string>; examples: Set<string> } {
  const result = spawnSync("bash", ["setup/bin/run", "--help"], { cwd: root, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`setup/bin/run --help failed (${result.status}): ${result.stderr}`);
  const list = (label: string): Set<string> =>
    new Set((new RegExp(`^${label}:\\s*(.*)$`, "m").exec(result.stdout)?.[1] ?? "").split(/\s+/).filter(Boolean));
  const tasks = list("tasks");
  if (tasks.size === 0) throw new Error(`setup/bin/run --help lists no tasks:\n${result.stdout}`);
  return { tasks, examples: list("examples") };
}

function checkLink(facts: RepoFacts, doc: string, target: string, report: (m: string) => void): void {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    if (/^mailto:/i.test(target)) return;
    if (!/^https?:\/\//i.test(target)) return report(`link ${target}: only http(s) and relative links are expected`);
    if (!URL.canParse(target) || /\s/.test(target) || new URL(target).hostname === "") report(`link ${target}: not a well-formed URL`);
    return;
  }
  const hash = target.indexOf("#");
  const rawPath = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? undefined : target.slice(hash + 1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return report(`link ${target}: bad percent-encoding`);
  }
  const resolved = rawPath === "" ? doc : resolveFrom(decoded.startsWith("/") ? "" : posix.dirname(doc), decoded.replace(/^\/+/, ""));
  if (resolved === undefined) return report(`link ${target}: points outside the repository`);
  const isDir = facts.entries.has(`${resolved}/`) || resolved === "";
  if (!isDir && !facts.entries.has(resolved)) return report(`link ${target}: ${resolved} does not exist`);
  if (anchor === undefined) return;
  if (isDir) return report(`link ${target}: an anchor on a directory`);
  if (resolved.endsWith(".md")) {
    if (!anchorsOf(facts, resolved).has(decodeAnchor(anchor))) report(`link ${target}: no heading "#${anchor}" in ${resolved}`);
    return;
  }
  const lines = /^L(\d+)(?:-L(\d+))?$/.exec(anchor);
  const count = readFileSync(posix.join(facts.root, resolved), "utf8").split("\n").length;
  if (!lines || Number(lines[2] ?? lines[1]) > count) report(`link ${target}: anchor "#${anchor}" is not a line of ${resolved} (${count} lines)`);
}

function decodeAnchor(anchor: string): string {
  try {
    return decodeURIComponent(anchor).toLowerCase();
  } catch {
    return anchor;
  }
}

// Per RepoFacts, so facts loaded after a file changed never see the old headings or scripts.
const anchorCache = new WeakMap<RepoFacts, Map<string, Set<string>>>();
function anchorsOf(facts: RepoFacts, file: string): Set<string> {
  const cache = anchorCache.get(facts) ?? new Map<string, Set<string>>();
  anchorCache.set(facts, cache);
  let anchors = cache.get(file);
  if (!anchors) {
    const md = parseMarkdown(readFileSync(posix.join(facts.root, file), "utf8"));
    const slug = slugger();
    anchors = new Set([...md.headings.map((h) => slug(stripLinksAndTags(h.text))), ...md.htmlAnchors]);
    cache.set(file, anchors);
  }
  return anchors;
}

const PATH_TOKEN = /^(?:\.{1,2}\/)*[\w@.-][\w@.*-]*(?:\/[\w@.*-]+)*\/?$/;

function checkPathToken(facts: RepoFacts, doc: string, token: string, report: (m: string) => void): void {
  const text = token.trim();
  if (!text.includes("/") || !PATH_TOKEN.test(text)) return;
  const docDir = posix.dirname(doc) === "." ? "" : posix.dirname(doc);
  const relative = /^\.{1,2}\//.test(text);
  const first = text.replace(/^(\.\/)+/, "").split("/")[0] ?? "";
  const bases = relative ? [docDir] : [docDir, ""].filter((base) => isTopLevel(facts, base, first));
  if (bases.length === 0) return;
  const path = text.replace(/\/$/, "");
  const found = bases.some((base) => {
    const resolved = resolveFrom(base, path);
    if (resolved === undefined) return false;
    if (resolved.split("/").some((segment) => facts.ignoredDirs.has(segment))) return true;
    return path.includes("*") ? matchesGlob(facts, resolved) : facts.entries.has(resolved) || facts.entries.has(`${resolved}/`);
  });
  if (!found) report(`\`${text}\` names a repository path that does not exist (looked in ${bases.map((b) => b || "the repository root").join(", ")})`);
}

function isTopLevel(facts: RepoFacts, base: string, first: string): boolean {
  const prefix = base === "" ? "" : `${base}/`;
  return facts.entries.has(`${prefix}${first}/`) || facts.entries.has(`${prefix}${first}`) || facts.ignoredDirs.has(first);
}

function matchesGlob(facts: RepoFacts, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")}$`);
  return [...facts.entries].some((entry) => re.test(entry));
}

// "npm run X", "npm test", "npm start" and their "-- args"; "setup/bin/run <task>" and "example <name>".
const NPM = /\bnpm\s+(?:run(?:-script)?\s+([\w:.-]+)|(test|start|stop|restart)\b)(?:\s+--((?:\s+[^\s`|#;&]+)*))?/g;
const RUN = /\bsetup\/bin\/run\s+([\w:.<>-]+)(?:\s+([\w:.<>-]+))?/g;

function checkCommands(facts: RepoFacts, doc: string, text: string, cwd: string | undefined, report: (m: string) => void): void {
  for (const m of text.matchAll(NPM)) {
    const script = m[1] ?? m[2] ?? "";
    if (cwd !== undefined) {
      const scripts = scriptsOf(facts, cwd);
      if (!scripts.has(script)) report(`npm ${m[1] ? "run " : ""}${script}: no such script in ${posix.join(cwd, "package.json")}`);
    }
    for (const arg of (m[3] ?? "").trim().split(/\s+/).filter(Boolean)) {
      checkPathToken(facts, cwd === undefined || cwd === "." ? doc : posix.join(cwd, "README.md"), arg, report);
    }
  }
  for (const m of text.matchAll(RUN)) {
    const task = m[1] ?? "";
    if (task.startsWith("<")) continue;
    if (!facts.tasks.has(task)) report(`setup/bin/run ${task}: not a task (tasks: ${[...facts.tasks].join(" ")})`);
    else if (task === "example" && m[2] && !m[2].startsWith("<") && !facts.examples.has(m[2])) {
      report(`setup/bin/run example ${m[2]}: not an example (examples: ${[...facts.examples].join(" ")})`);
    }
  }
}

const scriptCache = new WeakMap<RepoFacts, Map<string, Set<string>>>();
function scriptsOf(facts: RepoFacts, dir: string): Set<string> {
  const file = posix.join(facts.root, dir, "package.json");
  const cache = scriptCache.get(facts) ?? new Map<string, Set<string>>();
  scriptCache.set(facts, cache);
  let scripts = cache.get(file);
  if (!scripts) {
    const parsed = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { scripts?: Record<string, string> }) : {};
    scripts = new Set(Object.keys(parsed.scripts ?? {}));
    cache.set(file, scripts);
  }
  return scripts;
}

function isShell(fence: Fence): boolean {
  return ["", "bash", "sh", "shell", "console", "zsh"].includes(fence.lang);
}

// A `cd <dir>` in a shell block makes later npm commands in it use <dir>/package.json. A cd into a
// directory that is not the repository's (the reader's own project, `cd ../my-service`) stops npm
// checks for the block; one that names ours (`cd examples/x`) must exist.
function checkShellFence(facts: RepoFacts, doc: string, fence: Fence, report: (line: number, m: string) => void): void {
  const docDir = posix.dirname(doc) === "." ? "" : posix.dirname(doc);
  let cwd: string | undefined = ".";
  fence.lines.forEach((text, i) => {
    const line = fence.line + 1 + i;
    for (const m of text.matchAll(/(?:^|[;&|]\s*)cd\s+([^\s;&|]+)/g)) {
      const target = m[1] ?? "";
      const existing = [docDir, ""].map((base) => resolveFrom(base, target)).find((p) => p !== undefined && (p === "" || facts.entries.has(`${p}/`)));
      const first = target.replace(/^(\.{1,2}\/)+/, "").split("/")[0] ?? "";
      if (existing !== undefined) cwd = existing === "" ? "." : existing;
      else if (first !== "" && [docDir, ""].some((base) => isTopLevel(facts, base, first))) report(line, `cd ${target}: no such directory in the repository`);
      else cwd = undefined;
    }
    checkCommands(facts, doc, text.replace(/#.*$/, ""), cwd, (m) => report(line, m));
  });
}

function resolveFrom(base: string, path: string): string | undefined {
  const joined = posix.normalize(posix.join(base === "" ? "." : base, path));
  if (joined === ".." || joined.startsWith("../")) return undefined;
  return joined === "." ? "" : joined.replace(/\/$/, "");
}

function stripCode(line: string): string {
  return line.replace(/`+[^`]*`+/g, " ");
}
