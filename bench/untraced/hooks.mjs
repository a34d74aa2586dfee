// Module resolution hook (registered by register.mjs): `langsmith/traceable`
// imported by application code (not by node_modules, not by the copyable kit)
// resolves to traceable.mjs, whose `traceable(fn)` is `fn` called directly.
// Libraries and the kit keep the real SDK, so LangChain, the kit's middleware
// and tracedFetch behave as they do with LANGSMITH_TRACING=false.
const STUB = new URL("./traceable.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? "";
  if (specifier === "langsmith/traceable" && parent !== STUB && parent.startsWith("file:") && !parent.includes("/node_modules/") && !parent.includes("/examples/kit/")) {
    return { url: STUB, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
