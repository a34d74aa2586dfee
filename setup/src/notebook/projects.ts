/**
 * Where traces were stored, for cells that check a project choice (a service's own project, a
 * benchmark kept out of the default project). Reads through the SDK's Client, so it works the same
 * against LangSmith.
 *
 *   await countTraces("notebook-01-perf", { rootName: "GET /ping", since });   // 350
 *   await projectNamesOf(runs);   // Map session_id -> project name
 */
import { Client, type Run } from "langsmith";

export interface CountTracesOptions {
  /** Only traces whose root run has this name. */
  rootName?: string;
  /** Only traces that started at or after this time. Default: the read API's own window (a day). */
  since?: Date;
  client?: Client;
}

/** The number of traces (root runs) in a project; 0 when the project does not exist. */
export async function countTraces(projectName: string, options: CountTracesOptions = {}): Promise<number> {
  const client = options.client ?? new Client();
  let projectId: string | undefined;
  for await (const project of client.listProjects({ name: projectName })) projectId = project.id;
  if (projectId === undefined) return 0;
  const pages = client.runs.query({
    project_ids: [projectId],
    is_root: true,
    ...(options.rootName !== undefined ? { filter: `eq(name, ${JSON.stringify(options.rootName)})` } : {}),
    ...(options.since !== undefined ? { min_start_time: options.since.toISOString() } : {}),
    selects: ["ID"],
  });
  let count = 0;
  for await (const run of pages) if (run.id !== undefined) count++;
  return count;
}

/** The names of the projects the runs are stored in, by project id (`session_id`). */
export async function projectNamesOf(runs: readonly Run[], client: Client = new Client()): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const id of new Set(runs.map((r) => r.session_id).filter((id): id is string => typeof id === "string"))) {
    names.set(id, (await client.readProject({ projectId: id })).name ?? id);
  }
  return names;
}
