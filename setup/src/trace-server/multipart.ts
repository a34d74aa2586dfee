import type { IncomingMessage } from "node:http";
import busboy from "busboy";
import { HttpError, openBody, type Encoding } from "./body.js";
import type { JsonObject, RawJsonField, RejectionInput, RunAttachment, RunUpsert } from "./types.js";
import { isUuid } from "./validate.js";
import { decodeRun, isJsonObject } from "./wire.js";

export interface Part {
  name: string;
  mimeType: string;
  /** A string for busboy fields, bytes for parts busboy treats as files. */
  value: string | Buffer;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Busboy hands non-file parts over as strings. With `defCharset: "latin1"`
 * a part that declares no charset (every part the SDK sends) arrives
 * byte-for-byte, so binary attachments survive; a part that declares its own
 * charset arrives already decoded. Code points above 0xFF, or bytes that are
 * not valid UTF-8, tell the second case apart.
 */
const ABOVE_LATIN1 = /[\u0100-\uffff]/;
const NON_ASCII = /[\u0080-\uffff]/;

export function partBytes(part: Part): Buffer {
  const { value } = part;
  if (typeof value !== "string") return value;
  return Buffer.from(value, ABOVE_LATIN1.test(value) ? "utf8" : "latin1");
}

export function partText(part: Part): string {
  // ASCII reads the same in every charset busboy could have used: no copy needed.
  if (typeof part.value === "string" && !NON_ASCII.test(part.value)) return part.value;
  const bytes = partBytes(part);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return typeof part.value === "string" ? part.value : bytes.toString("utf8");
  }
}

/** Parse a (possibly compressed) multipart/form-data request into its parts. */
export async function readMultipart(req: IncomingMessage, limit: number): Promise<{ parts: Part[]; encoding: Encoding }> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType) || !/boundary=/i.test(contentType)) {
    throw new HttpError(400, `expected Content-Type multipart/form-data with a boundary, got ${JSON.stringify(contentType)}`);
  }
  const opened = openBody(req, limit);
  try {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, defCharset: "latin1", limits: { fieldSize: limit, fileSize: limit } });
    } catch (e) {
      throw new HttpError(400, `malformed multipart request: ${(e as Error).message}`);
    }
    const parts = await new Promise<Part[]>((resolve, reject) => {
      const collected: Part[] = [];
      const fail = (e: unknown): void => {
        reject(e instanceof HttpError ? e : new HttpError(400, `malformed multipart body: ${(e as Error).message}`));
      };
      parser.on("field", (name, value, info) => {
        collected.push({ name, mimeType: info.mimeType, value });
      });
      parser.on("file", (name, stream, info) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => collected.push({ name, mimeType: info.mimeType, value: Buffer.concat(chunks) }));
        stream.on("error", fail);
      });
      parser.on("error", fail);
      parser.on("close", () => resolve(collected));
      opened.stream.on("error", fail);
      opened.stream.pipe(parser);
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
