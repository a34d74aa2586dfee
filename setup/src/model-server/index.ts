export { startModelServer, type Fault, type ModelServerHandle, type ModelServerOptions, type ModelServerStats } from "./server.js";
export { FAULT_HEADER, DIRECTIVE_SEPARATOR } from "./faults.js";
export { REPLY_PREFIX } from "./responder.js";
