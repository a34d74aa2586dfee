export { mountViewer, CONTENT_SECURITY_POLICY } from "./app.js";
export { tracePath } from "./pages.js";
export {
  assignServiceColors,
  layoutTrace,
  preferredServiceColor,
  runTypeBadge,
  SERVICE_PALETTE,
  UNKNOWN_SERVICE_COLOR,
  type RunTypeBadge,
  type TraceLayout,
  type WaterfallRow,
} from "./render-core.js";
