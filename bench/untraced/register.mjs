// Preloaded into a service (`--import <this file>` after `--import tsx`, whose
// resolver answers TypeScript files' imports itself and would come first) for the overhead
// benchmark's "untraced" baseline: the service's own calls to langsmith's
// `traceable` become plain calls (hooks.mjs), so the baseline is the app
// without its tracing code, with the service sources unmodified.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
