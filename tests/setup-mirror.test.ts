// MIRROR_TO_LOCAL end to end: one local trace server stands in for LangSmith (it requires an API
// key), a second one is the local mirror. The unmodified SDK must write every run to both, with the
// same ids, so one trace id works in both places, and the LangSmith key must reach neither as data.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "langsmith";
import { traceable } from "langsmith/traceable";
import { applyConfig, loadConfig, readTrace, startTraceServer, verifyTrace, type TraceServerHandle } from "@tracing-patterns/setup";

const CLOUD_KEY = "lsv2_pt_stand-in-cloud-key-0123456789";
let cloud: TraceServerHandle;
let mirror: TraceServerHandle;
const cloudLog: string[] = [];

before(async () => {
  cloud = await startTraceServer({ port: 0, apiKey: CLOUD_KEY, log: (line) => cloudLog.push(line) });
  mirror = await startTraceServer({ port: 0 });
  const cfg = loadConfig({
    env: Object.assign(process.env, {
      LANGSMITH_API_KEY: CLOUD_KEY,
      LANGSMITH_ENDPOINT: cloud.url,
      MIRROR_TO_LOCAL: "true",
      TRACE_SERVER_URL: mirror.url,
      LANGSMITH_SERVICE: "mirrored-service",
    }),
    envFile: false,
  });
  assert.equal(cfg.mode, "cloud");
  applyConfig(cfg);
});

after(() => Promise.all([cloud.close(), mirror.close()]));

test("with MIRROR_TO_LOCAL every run lands in LangSmith and in the local trace server with the same ids", async () => {
  const client = new Client();
  let traceId = "";
  await traceable(
    async () => {
      await traceable(async () => "leaf", { name: "child_step", client })();
    },
    {
      name: "mirrored_root",
      client,
      on_start: (runTree) => {
        traceId = runTree?.trace_id ?? "";
      },
    },
  )();
  const inCloud = await readTrace(traceId, { client, expectRuns: 2 });
  const inMirror = await readTrace(traceId, { client: new Client({ apiUrl: mirror.url, apiKey: "local" }), expectRuns: 2 });
  assert.deepEqual(inCloud.map((r) => r.id).sort(), inMirror.map((r) => r.id).sort());
  assert.equal(verifyTrace(inCloud, { services: ["mirrored-service"], minRuns: 2 }).ok, true);
  assert.equal(verifyTrace(inMirror, { services: ["mirrored-service"], minRuns: 2 }).ok, true);

  // LangSmith's replica entry carries no key, and the stand-in accepted every write: the SDK
  // authenticated it with the client's own key.
  assert.ok(!process.env.LANGSMITH_RUNS_ENDPOINTS?.includes(CLOUD_KEY));
  assert.deepEqual(cloudLog.filter((line) => / 40[13] /.test(line)), []);
  // The SDK still copies LANGSMITH_RUNS_ENDPOINTS into each run's metadata, in both places: without the key.
  for (const run of [...inCloud, ...inMirror]) {
    const metadata = run.extra?.["metadata"] as Record<string, unknown> | undefined;
    assert.equal(typeof metadata?.["LANGSMITH_RUNS_ENDPOINTS"], "string", "copied, so a key in it would leak");
    assert.ok(!JSON.stringify(run).includes(CLOUD_KEY), `run ${run.name} contains the LangSmith key`);
  }
});
