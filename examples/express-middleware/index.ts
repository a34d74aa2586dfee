// The package entry @tracing-patterns/example-express-middleware: a re-export of
// the copyable kit, kept only for notebook 06 and its notebooks/services, which
// import this name. Notebooks 01-04 import @tracing-patterns/kit. Once nothing
// imports this name, delete this file, tsconfig.build.json and package.json's
// main/types/exports.
export * from "@tracing-patterns/kit";
