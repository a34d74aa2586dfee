export const placeholder = 1;
export * from "./model-server/index.js";
export * from "./config.js";
export * from "./service.js";
export * from "./http.js";
export * from "./traces/index.js";
export * from "./trace-server/index.js";
export * from "./stack.js";
export * from "./viewer/index.js";
