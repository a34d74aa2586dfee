// What the example's process tests share: no developer LangSmith settings in
// this process, and the environment that points a child at the test's trace server.

/**
 * Removes the developer's LANGSMITH_* / LANGCHAIN_* settings from this process:
 * LANGSMITH_RUNS_ENDPOINTS alone would copy every test run to another server.
 */
export function isolateFromLangSmithEnv(): void {
  for (const key of Object.keys(process.env)) if (key.startsWith("LANGSMITH_") || key.startsWith("LANGCHAIN_")) delete process.env[key];
}

export function tracingEnv(url: string, project: string): Record<string, string> {
  return {
    LANGSMITH_TRACING: "true",
    LANGSMITH_ENDPOINT: url,
    LANGSMITH_API_KEY: "local",
    LANGSMITH_PROJECT: project,
  };
}
