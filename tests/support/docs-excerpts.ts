// Keeps TypeScript excerpts in markdown true to the code. Each ```ts block is one of:
//   - a quote: its first line is `// from <repository path>`; every line that is not an elision
//     (`// ...`) must appear in that file, consecutive lines consecutively and runs in order.
//     Another `// from <path>` line inside the block starts a quote of a second file. Comments at
//     the end of a line, blank lines and comment-only lines are the doc's own and are not compared.
//   - compiled (the default): typechecked against the current sources with the root tsconfig.json,
//     as a module in docs/ (or in the directory `<!-- excerpt: compile in <dir> -->` above the block
//     names, so "./x.js" imports resolve there). Further lines of that comment are a prelude compiled
//     before the block: the declarations the excerpt takes for granted (`declare const app: Express;`).
//   - `<!-- excerpt: partial <reason> -->` above the block: neither; the test counts these.
//
//   const excerpts = extractExcerpts("docs/common-patterns.md", text);
//   const problems = [...checkQuotes(root, excerpts), ...typecheckExcerpts(root, excerpts)];
//
// All compiled excerpts share one TypeScript program; their files exist only in memory, at paths
// inside the repository so that workspace packages and "./x.js" resolve as they would on disk.
import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import ts from "typescript";
import type { Problem } from "./docs-check.js";
import { parseMarkdown } from "./markdown.js";

export type Excerpt =
  | { kind: "quote"; doc: string; line: number; segments: QuoteSegment[] }
  | { kind: "compile"; doc: string; line: number; dir: string; prelude: string; preludeLine: number; code: string }
  | { kind: "partial"; doc: string; line: number; reason: string }
  | { kind: "invalid"; doc: string; line: number; reason: string };

export interface QuoteSegment {
  source: string;
  /** Doc line and text of every line after the `// from` marker. */
  lines: { line: number; text: string }[];
}

const TS_LANGS = new Set(["ts", "typescript", "mts", "cts"]);
// `// from <path>`, optionally followed by words about where in the file: `// from x.ts (postJson)`.
const FROM = /^\s*\/\/\s*from\s+(\S+)(?:\s.*)?$/;

/** The TypeScript blocks of one markdown file, classified by their markers. */
export function extractExcerpts(doc: string, text: string): Excerpt[] {
  return parseMarkdown(text)
    .fences.filter((fence) => TS_LANGS.has(fence.lang))
    .map((fence): Excerpt => {
      const [head = "", ...prelude] = fence.comment?.text.split("\n") ?? [];
      const directive = /^\s*excerpt:\s*(\S+)(.*)$/.exec(head);
      const firstCode = fence.lines.find((l) => l.trim() !== "") ?? "";
      const base = { doc, line: fence.line };
      if (fence.comment && !directive && /excerpt/.test(fence.comment.text)) {
        return { ...base, kind: "invalid", reason: `unreadable excerpt comment: <!--${fence.comment.text}-->` };
      }
      if (directive?.[1] === "partial") {
        const reason = (directive[2] ?? "").trim();
        return reason ? { ...base, kind: "partial", reason } : { ...base, kind: "invalid", reason: "a partial excerpt must say why" };
      }
      if (FROM.test(firstCode)) {
        if (directive) return { ...base, kind: "invalid", reason: `a quote (// from) with an excerpt: ${directive[1]} comment` };
        return { ...base, kind: "quote", segments: quoteSegments(fence.line, fence.lines) };
      }
      if (directive && directive[1] !== "compile") return { ...base, kind: "invalid", reason: `unknown excerpt directive "${directive[1]}"` };
      const where = /^\s*in\s+(\S+)\s*$/.exec(directive?.[2] ?? "");
      if (directive && (directive[2] ?? "").trim() !== "" && !where) {
        return { ...base, kind: "invalid", reason: `expected "excerpt: compile in <dir>", got "excerpt: compile${directive[2]}"` };
      }
      return {
        ...base,
        kind: "compile",
        dir: where?.[1]?.replace(/\/$/, "") ?? "docs",
        prelude: directive ? prelude.join("\n") : "",
        preludeLine: (fence.comment?.line ?? 0) + 1,
        code: fence.lines.join("\n"),
      };
    });
}

function quoteSegments(fenceLine: number, lines: string[]): QuoteSegment[] {
  const segments: QuoteSegment[] = [];
  lines.forEach((text, i) => {
    const from = FROM.exec(text);
    if (from?.[1]) segments.push({ source: from[1], lines: [] });
    else segments.at(-1)?.lines.push({ line: fenceLine + 1 + i, text });
  });
  return segments;
}

/** Problems of quotes whose source file is gone or no longer holds the quoted lines; and of invalid markers. */
export function checkQuotes(root: string, excerpts: readonly Excerpt[]): Problem[] {
  const problems: Problem[] = [];
  for (const excerpt of excerpts) {
    if (excerpt.kind === "invalid") problems.push({ file: excerpt.doc, line: excerpt.line, message: excerpt.reason });
    if (excerpt.kind !== "quote") continue;
    for (const segment of excerpt.segments) {
      const file = posix.join(root, segment.source);
      if (!existsSync(file)) {
        problems.push({ file: excerpt.doc, line: excerpt.line, message: `quoted file ${segment.source} does not exist` });
        continue;
      }
      if (!segment.lines.some((l) => codeOf(l.text) !== "" && !isElision(l.text))) {
        problems.push({ file: excerpt.doc, line: excerpt.line, message: `the quote of ${segment.source} has no code line to compare` });
        continue;
      }
      const mismatch = findMismatch(segment.lines, segment.source, readFileSync(file, "utf8").split("\n"));
      if (mismatch) problems.push({ file: excerpt.doc, ...mismatch });
    }
  }
  return problems;
}

// Runs of quoted lines (split at elisions) must each match consecutive code lines of the source, in
// order; earliest match first, which is optimal for an ordered sequence of runs.
function findMismatch(quoted: { line: number; text: string }[], source: string, sourceLines: string[]): { line: number; message: string } | undefined {
  const code = sourceLines.map((text, i) => ({ line: i + 1, key: codeOf(text) })).filter((l) => l.key !== "");
  const runs: { line: number; text: string; key: string }[][] = [[]];
  for (const q of quoted) {
    if (isElision(q.text)) runs.push([]);
    else if (codeOf(q.text) !== "") runs.at(-1)?.push({ ...q, key: codeOf(q.text) });
  }
  let from = 0;
  for (const run of runs.filter((r) => r.length > 0)) {
    let start = from;
    while (start + run.length <= code.length && !run.every((q, k) => code[start + k]?.key === q.key)) start++;
    if (start + run.length > code.length) {
      const missing = run.find((q) => !code.slice(from).some((c) => c.key === q.key));
      if (missing) return { line: missing.line, message: `quoted line not in ${source}${from > 0 ? ` after its line ${code[from - 1]?.line}` : ""}: ${missing.text.trim()}` };
      const first = run[0]?.line ?? 0;
      return { line: first, message: `quoted lines ${first}-${run.at(-1)?.line} are not consecutive lines of ${source} (mark a gap with // ...)` };
    }
    from = start + run.length;
  }
  return undefined;
}

// `// ...`, `...` or `/* ... */` alone on a line: the quote leaves lines of the source out here.
function isElision(line: string): boolean {
  return /^\s*(?:\/\/\s*)?(?:\.\.\.|…)\s*$/.test(line) || /^\s*\/\*\s*(?:\.\.\.|…)\s*\*\/\s*$/.test(line);
}

// The code of a line: without a trailing // comment (outside strings), whitespace collapsed.
function codeOf(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === "/" && line[i + 1] === "/") return line.slice(0, i).trim().replace(/\s+/g, " ");
  }
  return line.trim().replace(/\s+/g, " ");
}

/** Typechecks every compiled excerpt in one program; a problem per diagnostic, at the excerpt's own line. */
export function typecheckExcerpts(root: string, excerpts: readonly Excerpt[]): Problem[] {
  const compiled = excerpts.filter((e) => e.kind === "compile");
  if (compiled.length === 0) return [];
  const config = ts.getParsedCommandLineOfConfigFile(posix.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  if (!config) throw new Error(`cannot read ${root}/tsconfig.json`);
  const options: ts.CompilerOptions = { ...config.options, noEmit: true };
  const problems: Problem[] = [];
  const files = new Map<string, { excerpt: (typeof compiled)[number]; text: string; preludeLines: number }>();
  compiled.forEach((excerpt, i) => {
    if (!existsSync(posix.join(root, excerpt.dir))) {
      problems.push({ file: excerpt.doc, line: excerpt.line, message: `excerpt compiled in ${excerpt.dir}, which does not exist` });
      return;
    }
    const name = posix.join(root, excerpt.dir, `__excerpt_${i}_${posix.basename(excerpt.doc, ".md")}_${excerpt.line}.ts`);
    const prelude = excerpt.prelude === "" ? "" : `${excerpt.prelude}\n`;
    files.set(name, { excerpt, text: `${prelude}${excerpt.code}\nexport {};\n`, preludeLines: prelude === "" ? 0 : prelude.split("\n").length - 1 });
  });
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name)?.text ?? readFile.call(host, name);
  host.getSourceFile = (name, language, onError, create) => {
    const file = files.get(name);
    return file ? ts.createSourceFile(name, file.text, language, true) : getSourceFile.call(host, name, language, onError, create);
  };
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host });
  for (const d of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
    problems.push({ file: "tsconfig.json", line: 0, message: ts.flattenDiagnosticMessageText(d.messageText, "\n") });
  }
  for (const [name, { excerpt, preludeLines }] of files) {
    const source = program.getSourceFile(name);
    if (!source) throw new Error(`excerpt file ${name} missing from the program`);
    for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      const at = source.getLineAndCharacterOfPosition(d.start ?? 0).line;
      const inPrelude = at < preludeLines;
      problems.push({
        file: excerpt.doc,
        line: inPrelude ? excerpt.preludeLine + at : excerpt.line + 1 + at - preludeLines,
        message: `${inPrelude ? "prelude of the excerpt" : "excerpt"} does not compile: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`,
      });
    }
  }
  return problems;
}
