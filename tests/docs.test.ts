// Docs that cannot rot: every relative link and anchor, every repository path in inline code, every
// `npm run X` and `setup/bin/run <task>` in README.md, docs/*.md and examples/*/README.md exists, and
// every TypeScript excerpt in docs/common-patterns.md compiles against the current sources or still
// matches the file it quotes. The first half proves the checker finds each kind of rot in small
// synthetic repositories; the second runs it on the real docs. Rules: tests/support/docs-check.ts and
// tests/support/docs-excerpts.ts. Run: npm test -- tests/docs.test.ts
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { checkDoc, docFiles, formatProblems, loadRepoFacts, type Problem } from "./support/docs-check.js";
import { checkQuotes, extractExcerpts, typecheckExcerpts } from "./support/docs-excerpts.js";
import { parseMarkdown, slugger } from "./support/markdown.js";

const root = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();

/** A throwaway repository: path -> content. */
function fakeRepo(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "docs-check-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/** "file:line: message" lines, for comparing whole problem lists. */
function lines(problems: readonly Problem[]): string[] {
  return problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
}

describe("the docs checker finds rot in synthetic markdown", () => {
  const repo = fakeRepo({
    ".gitignore": "node_modules/\ndist/\n",
    "package.json": JSON.stringify({ scripts: { test: "x", "example:demo": "x" } }),
    "setup/bin/run": "#!/usr/bin/env bash\n[ \"$1\" = --help ] && printf 'usage: setup/bin/run <task>\\ntasks:    build example test\\nexamples: demo\\n'\n",
    "setup/src/flush.ts": "export const flushed = true;\n",
    "docs/guide.md": "# Guide\n\n## Setup (`config.ts`)\n\n## Setup (`config.ts`)\n\n## 9. Fan-out / fan-in\n",
    "examples/demo/package.json": JSON.stringify({ scripts: { start: "x" } }),
    "examples/demo/server.ts": "export {};\n",
    "examples/demo/tests/one.test.ts": "export {};\n",
  });
  after(() => rmSync(repo, { recursive: true, force: true }));

  function problemsOf(doc: string, markdown: string): string[] {
    writeFileSync(join(repo, doc), markdown);
    return lines(checkDoc(loadRepoFacts(repo), doc));
  }

  test("GitHub's heading slugs: punctuation dropped, spaces to hyphens, repeats numbered", () => {
    const slug = slugger();
    assert.deepEqual(
      ["Setup (`config.ts`)", "Setup (`config.ts`)", "Setup (`config.ts`)", "9. Fan-out / fan-in", "Plain `node:http` and Hono", "Service naming (`LANGSMITH_SERVICE`)"].map(slug),
      ["setup-configts", "setup-configts-1", "setup-configts-2", "9-fan-out--fan-in", "plain-nodehttp-and-hono", "service-naming-langsmith_service"],
    );
  });

  test("a link to a missing file, a missing heading, a missing line, outside the repository, and a malformed URL", () => {
    const found = problemsOf(
      "README.md",
      [
        "[ok](docs/guide.md#setup-configts-1) [ok](docs/guide.md#9-fan-out--fan-in) [ok](setup/src/flush.ts#L1) [ok](examples/demo)",
        "[gone](docs/gone.md) [anchor](docs/guide.md#setup-configts-2) [line](setup/src/flush.ts#L9)",
        "[up](../elsewhere.md) [self](#no-such-heading) [web](https://[::1) ![img](docs/images/x.png)",
        "`[not a link](nowhere.md)` [fine](https://example.com/a?b=c#d) <https://example.com>",
      ].join("\n"),
    );
    assert.deepEqual(found, [
      "README.md:2: link docs/gone.md: docs/gone.md does not exist",
      'README.md:2: link docs/guide.md#setup-configts-2: no heading "#setup-configts-2" in docs/guide.md',
      'README.md:2: link setup/src/flush.ts#L9: anchor "#L9" is not a line of setup/src/flush.ts (2 lines)',
      "README.md:3: link ../elsewhere.md: points outside the repository",
      'README.md:3: link #no-such-heading: no heading "#no-such-heading" in README.md',
      "README.md:3: link https://[::1: not a well-formed URL",
      "README.md:3: link docs/images/x.png: docs/images/x.png does not exist",
    ]);
  });

  test("a missing repository path in inline code; other people's paths and build output are not checked", () => {
    const found = problemsOf(
      "examples/demo/README.md",
      [
        "Ours: `setup/src/flush.ts`, `examples/demo/server.ts`, `tests/one.test.ts`, `examples/demo/tests/*.test.ts`, `examples/demo/`.",
        "Rotten: `setup/src/flushing.ts`, `tests/two.test.ts`, `examples/demo/tests/*.spec.ts`, `./client.ts`.",
        "Not ours: `src/server.ts`, `langsmith/traceable`, `lib/client.js`, `/api/v2/runs`, `20/20`, `setup/dist/index.js`, `node_modules/x/y.js`.",
      ].join("\n"),
    );
    assert.deepEqual(found, [
      "examples/demo/README.md:2: `setup/src/flushing.ts` names a repository path that does not exist (looked in the repository root)",
      "examples/demo/README.md:2: `tests/two.test.ts` names a repository path that does not exist (looked in examples/demo)",
      "examples/demo/README.md:2: `examples/demo/tests/*.spec.ts` names a repository path that does not exist (looked in the repository root)",
      "examples/demo/README.md:2: `./client.ts` names a repository path that does not exist (looked in examples/demo)",
    ]);
  });

  test("an unknown npm script, an example's own script after cd, and unknown setup/bin/run tasks", () => {
    const found = problemsOf(
      "examples/demo/README.md",
      [
        "Run `npm test`, `npm run example:demo -- --once` or `npm run example:demmo`; `npm start` is not a root script.",
        "`npm test -- examples/demo/tests/*.test.ts` and `npm test -- examples/demo/tests/nope.test.ts`.",
        "`bash setup/bin/run <task>`, `setup/bin/run build`, `setup/bin/run biuld`, `setup/bin/run example demo`, `setup/bin/run example dmeo`.",
        "",
        "```bash",
        "npm run example:demo   # npm run not-checked-in-a-comment",
        "cd examples/demo && npm start",
        "npm run build",
        "cd ../../examples/nope",
        "cd ../../../my-service && npm run anything-the-reader-has",
        "```",
      ].join("\n"),
    );
    assert.deepEqual(found, [
      "examples/demo/README.md:1: npm run example:demmo: no such script in package.json",
      "examples/demo/README.md:1: npm start: no such script in package.json",
      "examples/demo/README.md:2: `examples/demo/tests/nope.test.ts` names a repository path that does not exist (looked in the repository root)",
      "examples/demo/README.md:3: setup/bin/run biuld: not a task (tasks: build example test)",
      "examples/demo/README.md:3: setup/bin/run example dmeo: not an example (examples: demo)",
      "examples/demo/README.md:8: npm run build: no such script in examples/demo/package.json",
      "examples/demo/README.md:9: cd ../../examples/nope: no such directory in the repository",
    ]);
  });

  test("a quote that no longer matches its source, and a quote of a file that is gone", () => {
    writeFileSync(join(repo, "examples/demo/server.ts"), ["const app = makeApp();", "// a comment the doc leaves out", "app.use(tracing({ trust: \"edge\" }));", "", "app.listen(3000);", "app.close();"].join("\n"));
    const markdown = [
      "```ts",
      "// from examples/demo/server.ts",
      "const app = makeApp();",
      "app.use(tracing({ trust: \"edge\" }));   // the doc's own comment",
      "// ...",
      "app.close();",
      "```",
      "",
      "```ts",
      "// from examples/demo/server.ts (the order matters)",
      "app.close();",
      "// ...",
      "app.listen(3000);",
      "```",
      "",
      "```ts",
      "// from examples/demo/server.ts",
      "const app = makeApp();",
      "app.listen(3000);",
      "// from examples/demo/gone.ts",
      "gone();",
      "```",
    ].join("\n");
    const excerpts = extractExcerpts("docs/quotes.md", markdown);
    assert.deepEqual(excerpts.map((e) => e.kind), ["quote", "quote", "quote"]);
    assert.deepEqual(lines(checkQuotes(repo, excerpts)), [
      "docs/quotes.md:13: quoted line not in examples/demo/server.ts after its line 6: app.listen(3000);",
      "docs/quotes.md:18: quoted lines 18-19 are not consecutive lines of examples/demo/server.ts (mark a gap with // ...)",
      "docs/quotes.md:16: quoted file examples/demo/gone.ts does not exist",
    ]);
  });

  test("excerpt markers: partial needs a reason, unknown directives and quotes with directives are errors", () => {
    const markdown = [
      "<!-- excerpt: partial the middle of a function -->",
      "```ts",
      "return x;",
      "```",
      "<!-- excerpt: partial -->",
      "```ts",
      "x",
      "```",
      "<!-- excerpt: skip -->",
      "```typescript",
      "x",
      "```",
      "<!-- excerpt: compile -->",
      "```ts",
      "// from examples/demo/server.ts",
      "```",
      "<!-- excerpts compile -->",
      "```ts",
      "x",
      "```",
      "```ts",
      "// from examples/demo/server.ts",
      "// ...",
      "```",
    ].join("\n");
    const excerpts = extractExcerpts("docs/markers.md", markdown);
    assert.deepEqual(excerpts.map((e) => e.kind), ["partial", "invalid", "invalid", "invalid", "invalid", "quote"]);
    assert.deepEqual(lines(checkQuotes(repo, excerpts)), [
      "docs/markers.md:6: a partial excerpt must say why",
      'docs/markers.md:10: unknown excerpt directive "skip"',
      "docs/markers.md:14: a quote (// from) with an excerpt: compile comment",
      "docs/markers.md:18: unreadable excerpt comment: <!-- excerpts compile -->",
      "docs/markers.md:21: the quote of examples/demo/server.ts has no code line to compare",
    ]);
  });

  test("a non-compiling excerpt fails at its own line; preludes, workspace packages and `compile in <dir>` resolve", () => {
    const markdown = [
      "```ts",
      'import { readTrace } from "@tracing-patterns/setup";',
      'const runs = await readTrace("t", { expectRuns: 1 });',
      "const n: number = runs.length;",
      "```",
      "",
      "```ts",
      'import { readTrace } from "@tracing-patterns/setup";',
      "",
      'const runs: string = await readTrace("t");',
      "```",
      "",
      "<!-- excerpt: compile in examples/kit",
      'import { langsmithTracing } from "./index.js";',
      "declare const app: { use(handler: unknown): void };",
      "-->",
      "```ts",
      'app.use(langsmithTracing({ trust: "edge" }));',
      'app.use(langsmithTracing({ trust: "internet" }));',
      "```",
      "",
      "<!-- excerpt: compile",
      "declare const x: NoSuchType;",
      "-->",
      "```ts",
      "x;",
      "```",
      "<!-- excerpt: compile in examples/no-such-example -->",
      "```ts",
      "export const fine = 1;",
      "```",
    ].join("\n");
    const found = lines(typecheckExcerpts(root, extractExcerpts("docs/synthetic.md", markdown)));
    assert.equal(found.length, 4, found.join("\n"));
    assert.equal(found[0], "docs/synthetic.md:29: excerpt compiled in examples/no-such-example, which does not exist");
    found.shift();
    assert.match(found[0] ?? "", /^docs\/synthetic\.md:10: excerpt does not compile: TS2322 .*not assignable to type 'string'/);
    assert.match(found[1] ?? "", /^docs\/synthetic\.md:19: excerpt does not compile: TS2322 .*"internet"/);
    assert.match(found[2] ?? "", /^docs\/synthetic\.md:23: prelude of the excerpt does not compile: TS\d+ Cannot find name 'NoSuchType'/);
  });
});

describe("today's docs", () => {
  const facts = loadRepoFacts(root);

  test("links, anchors, repository paths, npm scripts and setup/bin/run tasks in README.md, docs/*.md, examples/*/README.md", () => {
    const docs = docFiles(facts);
    for (const required of ["README.md", "docs/common-patterns.md", "examples/express-middleware/README.md"]) assert.ok(docs.includes(required), `${required} not found`);
    const problems = docs.flatMap((doc) => checkDoc(facts, doc));
    assert.deepEqual(problems, [], `docs rotted:\n${formatProblems(problems)}`);
  });

  test("every TypeScript excerpt in docs/common-patterns.md compiles against the sources or matches the file it quotes", () => {
    const doc = "docs/common-patterns.md";
    const text = readFileSync(join(root, doc), "utf8");
    const untyped = parseMarkdown(text).fences.filter((f) => /^(js|javascript|jsx|tsx)$/.test(f.lang));
    assert.deepEqual(untyped.map((f) => f.line), [], "code blocks in a language the excerpt check skips; write them as ```ts");
    const excerpts = extractExcerpts(doc, text);
    const checked = excerpts.filter((e) => e.kind === "compile" || e.kind === "quote");
    const partial = excerpts.filter((e) => e.kind === "partial");
    assert.ok(checked.length >= 10, `only ${checked.length} excerpts checked`);
    // Unchecked excerpts are allowed, but only a few, each with its reason in the doc.
    assert.ok(partial.length <= 2, `${partial.length} partial excerpts: ${partial.map((e) => e.line).join(", ")}`);
    const problems = [...checkQuotes(root, excerpts), ...typecheckExcerpts(root, excerpts)];
    assert.deepEqual(problems, [], `excerpts rotted:\n${formatProblems(problems)}`);
  });
});
