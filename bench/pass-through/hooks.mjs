// Module resolution hook (registered by register.mjs): `@tracing-patterns/kit`
// imported by the multi-service app's sampling.ts resolves to kit.mjs, the kit
// with a createSampler that leaves out `tail`. Everything else, the kit's own
// files included, gets the kit itself.
const SHIM = new URL("./kit.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === "@tracing-patterns/kit" && (context.parentURL ?? "").endsWith("/examples/multi-service-app/services/sampling.ts")) {
    return { url: SHIM, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
