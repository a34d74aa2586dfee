// Each example's package.json declares exactly what its copyable files import,
// so copying the files plus those dependencies is enough: every package a
// copyable file imports is a dependency (or, for the kit, a peer), every
// dependency is imported by a copyable file, and the harness files and tests
// (eslint.config.js's EXAMPLE_HARNESS) import nothing undeclared.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import ts from "typescript";

const root = process.env.TRACING_PATTERNS_ROOT ?? process.cwd();
const { EXAMPLE_HARNESS } = (await import(pathToFileURL(join(root, "eslint.config.js")).href)) as { EXAMPLE_HARNESS: string[] };

/** "examples/*\/tests/**" as a RegExp over repository-relative paths. */
function globToRegExp(glob: string): RegExp {
  const source = glob
    .split("**")
    .map((part) => part.split("*").map((text) => text.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*"))
    .join(".*");
  return new RegExp(`^${source}$`);
}
const harness = EXAMPLE_HARNESS.map(globToRegExp);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === "node_modules" || entry.name === "dist") return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The npm packages a file imports (static, type-only and dynamic imports alike). */
function importedPackages(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return importedFiles
    .map((f) => f.fileName)
    .filter((name) => !name.startsWith(".") && !isBuiltin(name))
    .map((name) => name.split("/").slice(0, name.startsWith("@") ? 2 : 1).join("/"));
}

interface PackageJson {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const examples = readdirSync(join(root, "examples")).filter((name) => existsSync(join(root, "examples", name, "package.json")));

test("the examples found include the kit and the three examples", () => {
  for (const name of ["kit", "express-middleware", "multi-service-app", "async-streaming"]) assert.ok(examples.includes(name), name);
});

for (const name of examples) {
  test(`examples/${name}: package.json declares exactly what its copyable files import`, () => {
    const dir = join(root, "examples", name);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
    const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    const dev = new Set(Object.keys(pkg.devDependencies ?? {}));
    const copyable = new Map<string, string>();
    const undeclaredInHarness: string[] = [];
    for (const file of tsFiles(dir)) {
      const path = relative(root, file).split("\\").join("/");
      const isHarness = harness.some((pattern) => pattern.test(path));
      for (const pkgName of importedPackages(file)) {
        if (!isHarness) copyable.set(pkgName, copyable.get(pkgName) ?? path);
        else if (!declared.has(pkgName) && !dev.has(pkgName)) undeclaredInHarness.push(`${path} imports ${pkgName}`);
      }
    }
    const undeclared = [...copyable].filter(([pkgName]) => !declared.has(pkgName)).map(([pkgName, path]) => `${path} imports ${pkgName}`);
    assert.deepEqual(undeclared, [], "imported by copyable files, but not in dependencies");
    const unused = [...declared].filter((pkgName) => !copyable.has(pkgName));
    assert.deepEqual(unused, [], "in dependencies, but no copyable file imports it (a harness-only package belongs in devDependencies)");
    assert.deepEqual(undeclaredInHarness, [], "imported by harness files or tests, but declared nowhere");
  });
}
