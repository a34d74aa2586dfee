import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Files in examples/ that run or test an example rather than being copied (tests/example-dependencies.test.ts uses it too). */
export const EXAMPLE_HARNESS = ["examples/*/start.ts", "examples/*/launch.ts", "examples/*/harness/**", "examples/*/tests/**"];

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", ".tools/**", ".jupyter/**", ".data/**", "test-artifacts/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: "readonly", process: "readonly", URL: "readonly", fetch: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", Buffer: "readonly", AbortController: "readonly", TextEncoder: "readonly", TextDecoder: "readonly", Response: "readonly", Request: "readonly", Headers: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  // Layering: example code is what people copy, so it imports npm packages, its own files and the
  // copyable kit, never the teaching harness. Launchers, harness files and tests may use it.
  {
    files: ["examples/**/*.ts"],
    ignores: EXAMPLE_HARNESS,
    rules: {
      "no-restricted-imports": [
        "error",
        { paths: [{ name: "@tracing-patterns/setup", message: "Copyable example code must not need the harness: use @tracing-patterns/kit or npm packages (start.ts, launch.ts, harness/ and tests/ may)." }] },
      ],
    },
  },
  // The kit stands alone: nothing from the examples or setup.
  {
    files: ["examples/kit/**/*.ts"],
    ignores: ["examples/kit/tests/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["@tracing-patterns/*", "../*"], message: "The kit imports npm packages, node built-ins and its own files only." }] },
      ],
    },
  },
);
