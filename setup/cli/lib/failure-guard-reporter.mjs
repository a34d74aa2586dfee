// node:test reporter that fails the run when any test OR suite failed.
// Node 22's runner exits 0 when a describe() body throws while building the
// suite (the suite is listed under "failing tests" but not counted in "fail"),
// so a broken test file could otherwise pass CI.
export default async function* failureGuard(source) {
  let failed = 0;
  for await (const event of source) {
    if (event.type === "test:fail") failed++;
  }
  if (failed > 0) process.exitCode = 1;
  yield "";
}
