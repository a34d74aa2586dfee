// The trace doctor: `npm run doctor -- <trace id | viewer URL | LangSmith URL>` says what is wrong
// with a trace, why and how to fix it; `npm run doctor -- --project NAME [--since 1h]` prints a
// project's health figures. Reads through the langsmith SDK from wherever the configuration points
// (the local trace server, or LangSmith with LANGSMITH_API_KEY). Exit codes: 0 healthy, 1 problems
// found, 2 usage error, 3 could not read.
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import {
  diagnoseTrace,
  DoctorReadError,
  doctorClient,
  DoctorUsageError,
  formatDiagnosis,
  formatProjectHealth,
  parseSince,
  parseTarget,
  readDoctorInput,
  resolveTraceId,
  scanProject,
} from "../src/doctor/index.js";
import { listProjectNames } from "../src/doctor/source.js";

const USAGE = `usage: npm run doctor -- <trace id | trace viewer URL | LangSmith run or share URL> [options]
       npm run doctor -- --project NAME [--since 1h] [options]

  A trace: each problem found (orphans, split traces, runs never ended, rejected runs, project
  mismatches, clock skew, flat trees, duplicate runs from retries, oversized payloads), its likely
  cause and the fix. --project alone: the project's completeness and propagation, overall and per
  service, and its worst requests.

options:
  --json                 print JSON instead of text
  --project NAME         with a trace, the project it belongs in; alone, the project to scan
  --since DURATION       how far back to scan (30s, 15m, 1h, 2d); default 1h
  --limit N              scan at most N traces, the newest; default 200
  --skew-ms N            clock-skew tolerance between a parent and its child; default 50
  --stale-after DURATION an open run this old counts as never ended; default 60s
  --max-payload-kb N     inputs, outputs or events above this are oversized; default 1024
  --wait DURATION        how long to wait for a trace's runs to settle; default 3s

exit codes: 0 healthy, 1 problems found, 2 usage error, 3 could not read`;

class Exit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

function positiveNumber(name: string, text: string | undefined, parse: (t: string) => number | undefined = (t) => (/^\d+(\.\d+)?$/.test(t) ? Number(t) : undefined)): number | undefined {
  if (text === undefined) return undefined;
  const value = parse(text);
  if (value === undefined || !(value >= 0)) throw new DoctorUsageError(`${name} must be ${parse === parseSince ? "a duration like 30s, 15m or 1h" : "a number"}, got ${JSON.stringify(text)}`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: Record<string, { type: "string" | "boolean"; short?: string }>; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        project: { type: "string" },
        since: { type: "string" },
        limit: { type: "string" },
        "skew-ms": { type: "string" },
        "stale-after": { type: "string" },
        "max-payload-kb": { type: "string" },
        wait: { type: "string" },
      },
    });
  } catch (error) {
    throw new DoctorUsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const str = (k: string): string | undefined => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new DoctorUsageError(`one trace at a time, got ${positionals.length}: ${positionals.join(" ")}`);
  const project = str("project");
  if (positionals.length === 0 && project === undefined) throw new DoctorUsageError("give a trace id or URL, or --project NAME");
  if (positionals.length === 1 && (str("since") !== undefined || str("limit") !== undefined)) throw new DoctorUsageError("--since and --limit apply to a project scan (--project without a trace)");
  const maxPayloadKb = positiveNumber("--max-payload-kb", str("max-payload-kb"));
  const staleMs = positiveNumber("--stale-after", str("stale-after"), parseSince);
  const options = {
    skewMs: positiveNumber("--skew-ms", str("skew-ms")),
    staleMs,
    maxPayloadBytes: maxPayloadKb === undefined ? undefined : maxPayloadKb * 1024,
    waitMs: positiveNumber("--wait", str("wait"), parseSince),
  };
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const target = positionals[0] !== undefined ? parseTarget(positionals[0]) : undefined;
  const sinceMs = positiveNumber("--since", str("since") ?? "1h", parseSince) as number;
  const limit = positiveNumber("--limit", str("limit"));

  const cfg = loadConfig();
  const read = doctorClient({ apiUrl: cfg.langsmith.endpoint, apiKey: cfg.langsmith.apiKey });

  if (target === undefined) {
    const health = await scanProject({ ...read, ...defined, project: project as string, sinceMs, ...(limit !== undefined ? { limit } : {}) });
    console.log(values.json === true ? JSON.stringify(health, null, 2) : formatProjectHealth(health));
    return health.healthy ? 0 : 1;
  }

  if (target.origin !== undefined && new URL(read.apiUrl).origin !== target.origin && !target.origin.includes("smith.langchain.com")) {
    console.error(`note: the URL is on ${target.origin}, but the configuration reads from ${read.apiUrl}`);
  }
  const projectIds = [...(await listProjectNames(read.client, read.apiUrl)).keys()];
  const traceId = await resolveTraceId(target, read.client, projectIds).catch((error: unknown) => {
    throw new DoctorReadError(`could not read at ${read.apiUrl}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const input = await readDoctorInput(traceId, { ...read, ...defined });
  if (input.runs.length === 0 && (input.rejections ?? []).length === 0) {
    throw new Exit(3, `no runs of trace ${traceId} found at ${input.source} (in any of its ${projectIds.length} projects)${input.rejections === undefined ? "" : ", and no rejections"}`);
  }
  const diagnosis = { ...diagnoseTrace(input, { ...defined, ...(project !== undefined ? { expectProject: project } : {}) }), source: input.source };
  console.log(values.json === true ? JSON.stringify(diagnosis, null, 2) : formatDiagnosis(diagnosis));
  return diagnosis.healthy ? 0 : 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof DoctorUsageError) {
    console.error(`doctor: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (error instanceof Exit) {
    console.error(`doctor: ${error.message}`);
    process.exitCode = error.code;
  } else {
    // Anything else also means the trace could not be read and judged; 1 would claim it was.
    console.error(`doctor: could not read: ${error instanceof DoctorReadError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 3;
  }
}
