import type { IncomingMessage } from "node:http";
import * as Multipasta from "multipasta";
import { HttpError, openBody, type Encoding } from "./body.js";
import type { JsonObject, RawJsonField, RejectionInput, RunAttachment, RunUpsert } from "./types.js";
import { isUuid } from "./validate.js";
import { decodeRun, isJsonObject } from "./wire.js";

export interface Part {
  name: string;
  mimeType: string;
  /** The part's declared `charset`, if any (the SDK declares none: its JSON is UTF-8). */
  charset: string | undefined;
  value: Buffer;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function partBytes(part: Part): Buffer {
  return part.value;
}

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

/**
 * Parse a (possibly compressed) multipart/form-data request into its parts.
 * multipasta rather than busboy: on the SDK's requests (about 7 small parts
 * per run) it costs less than half the CPU, which is most of what the trace
 * server spends on a run besides SQLite (docs/performance.md).
 */
export async function readMultipart(req: IncomingMessage, limit: number): Promise<{ parts: Part[]; encoding: Encoding }> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType) || !/boundary=/i.test(contentType)) {
    throw new HttpError(400, `expected Content-Type multipart/form-data with a boundary, got ${JSON.stringify(contentType)}`);
  }
  const opened = openBody(req, limit);
  try {
    const parts = await new Promise<Part[]>((resolve, reject) => {
      const collected: Part[] = [];
      let settled = false;
      const fail = (e: unknown): void => {
        if (settled) return;
        settled = true;
        opened.stream.off("data", write);
        reject(e instanceof HttpError ? e : new HttpError(400, `malformed multipart body: ${(e as Error).message}`));
      };
      const parser = Multipasta.make({
        headers: { "content-type": contentType },
        // Every part is buffered whole: the body as a whole is already bounded by `limit`.
        isFile: () => false,
        maxFieldSize: limit,
        maxPartSize: limit,
        maxTotalSize: limit,
        onField: (info, value) => {
          collected.push({
            name: info.name,
            mimeType: info.contentType,
            charset: info.contentTypeParameters.charset,
            value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
          });
        },
        onFile: () => () => undefined,
        onError: (error) => fail(new HttpError(400, `malformed multipart body: ${describe(error)}`)),
        onDone: () => {
          if (settled) return;
          settled = true;
          resolve(collected);
        },
      });
      function write(chunk: Buffer): void {
        parser.write(chunk);
      }
      opened.stream.on("data", write);
      opened.stream.on("error", fail);
      opened.stream.on("end", () => {
        parser.end();
        // A body that ends cleanly after its closing boundary has resolved by now.
        fail(new HttpError(400, "malformed multipart body: the body ended before the closing boundary"));
      });
    });
    return { parts, encoding: opened.encoding };
  } finally {
    opened.release();
  }
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
    rejections.push({ route, op: null, run_id: runId, rule, message: `part ${JSON.stringify(part.name)}: ${message}`, payload: partText(part).slice(0, 512) });
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
      const list = attachments.get(id) ?? [];
      list.push({ name: rest.join("."), contentType: part.mimeType, data: partBytes(part) });
      attachments.set(id, list);
    } else if (kind === "feedback" && rest.length === 0) {
      try {
        const body = JSON.parse(partText(part)) as unknown;
        if (!isJsonObject(body)) throw new Error("not a JSON object");
        feedback.push({ ...body, id });
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
