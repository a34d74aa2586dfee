import type { IncomingMessage } from "node:http";
import * as Multipasta from "multipasta";
import { HttpError, readBody, type Encoding } from "./body.js";
import { multipartBoundary } from "./content-type.js";
import { MAX_NAME_CHARS } from "./limits.js";
import type { JsonObject, RawJsonField, RejectionInput, RunAttachment, RunUpsert } from "./types.js";
import { isUuid } from "./validate.js";
import { decodeRun, isJsonObject, MAX_NESTING, tooDeepField } from "./wire.js";

export interface Part {
  name: string;
  mimeType: string;
  /** The part's declared `charset`, if any (the SDK declares none: its JSON is UTF-8). */
  charset: string | undefined;
  value: Buffer;
}

/**
 * Far more parts than an SDK batch has (100 operations of at most 7 parts),
 * few enough that a flood of tiny parts is refused before it costs seconds
 * of parsing and a stored rejection per part.
 */
export const MAX_PARTS = 10_000;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A part's text in its declared charset, else UTF-8; bytes that are not valid UTF-8 decode lossily rather than fail the request. */
export function partText(part: Part): string {
  const charset = part.charset?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    try {
      return new TextDecoder(charset).decode(part.value);
    } catch {
      // An unknown label: read it as UTF-8 below.
    }
  }
  try {
    return strictUtf8.decode(part.value);
  } catch {
    return part.value.toString("utf8");
  }
}

function describe(error: Multipasta.MultipartError): string {
  switch (error._tag) {
    case "InvalidBoundary":
      return "the Content-Type has no usable boundary";
    case "BadHeaders":
      return `a part has malformed headers (${error.error.reason})`;
    case "InvalidDisposition":
      return "a part's Content-Disposition has no name";
    case "ReachedLimit":
      return `the body exceeds the ${error.limit} limit`;
    case "EndNotReached":
      return "the body ended before the closing boundary";
  }
}

/** Delimiters in the body: an upper bound on its parts, counted before parsing any. */
function countDelimiters(body: Buffer, boundary: string, stopAfter: number): number {
  const delimiter = Buffer.from(`--${boundary}`, "latin1");
  let count = 0;
  for (let at = body.indexOf(delimiter); at !== -1 && count <= stopAfter; at = body.indexOf(delimiter, at + delimiter.length)) count++;
  return count;
}

/**
 * Parse a (possibly compressed) multipart/form-data request into its parts.
 *
 * multipasta rather than busboy: on the SDK's requests (about 7 small parts
 * per run) it costs about half the CPU, and parsing is a large share of what
 * the trace server spends on a run (docs/performance.md). Its rough edges
 * are contained here, each covered by a test in trace-server-ingest.test.ts:
 * the whole decoded body goes in as one chunk (split between the two dashes
 * of the closing delimiter, a valid body is misread), what it throws (a bad
 * `filename*` escape) is a 400, parts after the closing boundary are ignored
 * (it would emit them), and the part count is checked before parsing (it
 * reports the limit but parses on).
 */
export async function readMultipart(req: IncomingMessage, limit: number): Promise<{ parts: Part[]; encoding: Encoding }> {
  const contentType = req.headers["content-type"] ?? "";
  const parsed = multipartBoundary(contentType);
  if ("error" in parsed) {
    throw new HttpError(400, `expected Content-Type multipart/form-data with a boundary, got ${JSON.stringify(contentType.slice(0, 200))}: ${parsed.error}`);
  }
  const { boundary } = parsed;
  const { body, encoding } = await readBody(req, limit);
  // The closing delimiter is one more than the parts.
  if (countDelimiters(body, boundary, MAX_PARTS + 1) > MAX_PARTS + 1) {
    throw new HttpError(413, `multipart body has more than ${MAX_PARTS} parts`);
  }
  const parts: Part[] = [];
  let failure: Multipasta.MultipartError | undefined;
  let done = false;
  const parser = Multipasta.make({
    // The boundary parsed above, restated: the counter and the parser must read the same one.
    headers: { "content-type": `multipart/form-data; boundary="${boundary}"` },
    // Every part is buffered whole: the body as a whole is already bounded by `limit`.
    isFile: () => false,
    maxFieldSize: limit,
    maxParts: MAX_PARTS,
    onField: (info, value) => {
      if (done || failure) return;
      parts.push({
        name: info.name,
        mimeType: info.contentType,
        charset: info.contentTypeParameters.charset,
        value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      });
    },
    onFile: () => () => undefined,
    onError: (error) => {
      if (!done) failure ??= error;
    },
    onDone: () => {
      done = true;
    },
  });
  try {
    parser.write(body);
    parser.end();
  } catch (e) {
    throw new HttpError(400, `malformed multipart body: ${(e as Error).message}`);
  }
  if (failure) throw new HttpError(failure._tag === "ReachedLimit" && failure.limit === "MaxParts" ? 413 : 400, `malformed multipart body: ${describe(failure)}`);
  if (!done) throw new HttpError(400, "malformed multipart body: the body ended before the closing boundary");
  return { parts, encoding };
}

const RUN_FIELDS = new Set(["inputs", "outputs", "events", "extra", "error", "serialized"]);

export interface MultipartIngest {
  runs: RunUpsert[];
  rejections: RejectionInput[];
  feedback: JsonObject[];
}

/**
 * Turn the parts of a `/runs/multipart` request into run operations.
 * Part names: `post.<id>` / `patch.<id>` (the run without its big fields),
 * `post.<id>.<field>` for inputs, outputs, events, extra, error and
 * serialized, `attachment.<id>.<name>`, and `feedback.<id>`.
 */
export function partsToOperations(parts: readonly Part[], route: string): MultipartIngest {
  type Pending = { op: "post" | "patch"; id: string; main?: string; fields: Map<string, string> };
  const ops = new Map<string, Pending>();
  const attachments = new Map<string, RunAttachment[]>();
  const rejections: RejectionInput[] = [];
  const feedback: JsonObject[] = [];
  const reject = (part: Part, message: string, runId: string | null, rule: RejectionInput["rule"] = "unknown_part"): void => {
    rejections.push({ route, op: null, run_id: runId, rule, message: `part ${JSON.stringify(part.name.length > 200 ? `${part.name.slice(0, 200)}...` : part.name)}: ${message}`, payload: partText(part).slice(0, 512) });
  };
  for (const part of parts) {
    const [kind, rawId, ...rest] = part.name.split(".");
    const id = rawId?.toLowerCase() ?? "";
    if (!isUuid(id)) {
      reject(part, "expected <post|patch|attachment|feedback>.<uuid>[.<field>]", null);
      continue;
    }
    if (kind === "post" || kind === "patch") {
      const key = `${kind}.${id}`;
      let pending = ops.get(key);
      if (!pending) {
        pending = { op: kind, id, fields: new Map() };
        ops.set(key, pending);
      }
      const text = partText(part);
      if (rest.length === 0) {
        pending.main = text;
      } else if (rest.length === 1 && RUN_FIELDS.has(rest[0] as string)) {
        pending.fields.set(rest[0] as string, text);
      } else {
        reject(part, `unknown run field ${JSON.stringify(rest.join("."))}; expected one of ${[...RUN_FIELDS].join(", ")}`, id);
      }
    } else if (kind === "attachment" && rest.length > 0) {
      if (rest.join(".").length > MAX_NAME_CHARS) {
        reject(part, `attachment name is ${rest.join(".").length} characters, over the limit of ${MAX_NAME_CHARS}`, id, "over_limit");
        continue;
      }
      const list = attachments.get(id) ?? [];
      list.push({ name: rest.join("."), contentType: part.mimeType, data: part.value });
      attachments.set(id, list);
    } else if (kind === "feedback" && rest.length === 0) {
      try {
        const body = JSON.parse(partText(part)) as unknown;
        if (!isJsonObject(body)) throw new Error("not a JSON object");
        const deep = tooDeepField(body);
        if (deep !== undefined) reject(part, `feedback field ${deep} nests objects/arrays deeper than ${MAX_NESTING} levels`, null, "invalid_field");
        else if (typeof body.key === "string" && body.key.length > MAX_NAME_CHARS) reject(part, `feedback key is ${body.key.length} characters, over the limit of ${MAX_NAME_CHARS}`, null, "over_limit");
        else feedback.push({ ...body, id });
      } catch (e) {
        reject(part, `feedback is not a JSON object: ${(e as Error).message}`, null, "invalid_json");
      }
    } else {
      reject(part, "expected <post|patch|attachment|feedback>.<uuid>[.<field>]", id);
    }
  }

  const runs: RunUpsert[] = [];
  for (const pending of ops.values()) {
    const fail = (message: string, rule: RejectionInput["rule"], payload: unknown): void => {
      rejections.push({ route, op: pending.op, run_id: pending.id, trace_id: null, rule, message: `run ${pending.id} (${pending.op}): ${message}`, payload });
    };
    if (pending.main === undefined) {
      fail(`part ${pending.op}.${pending.id} is missing; only ${[...pending.fields.keys()].map((f) => `${pending.op}.${pending.id}.${f}`).join(", ")} arrived`, "missing_field", null);
      continue;
    }
    let body: unknown;
    try {
      body = JSON.parse(pending.main);
    } catch (e) {
      fail(`part ${pending.op}.${pending.id} is not valid JSON: ${(e as Error).message}`, "invalid_json", pending.main);
      continue;
    }
    if (!isJsonObject(body)) {
      fail(`part ${pending.op}.${pending.id} must be a JSON object`, "invalid_field", body);
      continue;
    }
    let broken = false;
    const raw: Partial<Record<RawJsonField, string>> = {};
    for (const [field, text] of pending.fields) {
      try {
        body[field] = JSON.parse(text) as unknown;
        if (field !== "error") raw[field as RawJsonField] = text;
      } catch (e) {
        fail(`part ${pending.op}.${pending.id}.${field} is not valid JSON: ${(e as Error).message}`, "invalid_json", text);
        broken = true;
        break;
      }
    }
    if (broken) continue;
    const decoded = decodeRun(pending.op, body, pending.id, raw);
    if (!decoded.ok) {
      const f = decoded.failure;
      rejections.push({ route, op: f.op, run_id: f.run_id, trace_id: f.trace_id, rule: f.rule, message: `run ${pending.id} (${pending.op}): ${f.message}`, payload: f.payload });
      continue;
    }
    runs.push(...decoded.runs);
  }

  for (const [runId, list] of attachments) {
    // Attachments ride on the run's create if the request has one, else on its update.
    const target = runs.find((r) => r.id === runId && r.op === "post") ?? runs.find((r) => r.id === runId);
    if (target) {
      target.attachments = [...(target.attachments ?? []), ...list];
    } else {
      for (const a of list) {
        rejections.push({ route, op: null, run_id: runId, rule: "unknown_part", message: `part "attachment.${runId}.${a.name}": no post.${runId} or patch.${runId} in the same request`, payload: null });
      }
    }
  }
  return { runs, rejections, feedback };
}
