// The tracing kit, in one place: every service of this example imports the
// middleware, its helpers and the shutdown from here. Copied into your project,
// the one import line below points at your copy of examples/kit.
//
//   import { langsmithTracing, tracedFetch, currentRun } from "./tracing.js";
export {
  currentRun,
  getRequestRun,
  injectTraceHeaders,
  langsmithTracing,
  installShutdown,
  jsonErrors,
  tracedFetch,
} from "@tracing-patterns/kit";
