export const placeholder = 1;
export * from "./model-server/index.js";
