// The tracing kit, in one place: every service of this example imports the
// middleware and its helpers from here, so moving to the copyable kit
// (@tracing-patterns/kit) changes the import line below and nothing else.
//
//   import { langsmithTracing, tracedFetch, currentRun } from "./tracing.js";
export {
  currentRun,
  getRequestRun,
  injectTraceHeaders,
  langsmithTracing,
  tracedFetch,
} from "@tracing-patterns/example-express-middleware";
export { installShutdown } from "./shutdown.js";
