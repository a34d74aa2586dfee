// Preloaded into a service (NODE_OPTIONS=--import=<this file>) for the overhead
// benchmark's "untraced" baseline: the service's own calls to langsmith's
// `traceable` become plain calls (hooks.mjs), so the baseline is the app
// without its tracing code, with the service sources unmodified.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
