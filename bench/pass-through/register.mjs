// Preloaded into a service (`--import <this file>` after `--import tsx`, whose
// resolver answers TypeScript files' imports itself and would come first) for the overhead
// benchmark's edge pass-through configurations: the multi-service app always
// gives its sampler a tail (errors are kept), and has no switch for the kit's
// pass-through sampler (`createSampler({ rate })`, no `tail`). hooks.mjs
// provides that sampler to the unmodified services.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
