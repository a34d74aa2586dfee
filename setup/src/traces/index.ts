export type { TraceRun } from "./types.js";
export { buildTraceTree, connectedTo, toMs, type TraceNode, type TraceTree } from "./tree.js";
export { readTrace, runFromV2, type ReadTraceOptions } from "./read.js";
export { renderTraceText, renderTraceHtml, displayTrace, knownViewerUrl, traceUrl, type RenderHtmlOptions } from "./render.js";
export { verifyTrace, assertTrace, formatReport, type TraceExpectations, type TraceReport, type ServiceHop } from "./verify.js";
