// The package entry notebooks import (@tracing-patterns/example-express-middleware).
// The middleware now lives in the copyable kit; this re-export keeps the
// notebooks' imports working until they import @tracing-patterns/kit directly.
export * from "@tracing-patterns/kit";
