import zlib from "node:zlib";
import { uuid7 } from "langsmith";
import type { CapturedRequest } from "./sink.js";

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const RUN_PART_RE = /name="(post|patch)\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/gi;

export type Encoding = "zstd" | "gzip" | "identity";

/**
 * A captured multipart body, decompressed, with the place of every UUID in
 * it. Run ids, trace ids, parent ids and the ids inside dotted orders all
 * refer to runs of the captured traces; swapping each for a fresh id (the
 * same one everywhere it occurs) makes a replay create new runs rather than
 * update the captured ones. UUIDs are fixed-length, so the parts' declared
 * lengths stay right.
 */
interface Template {
  contentType: string;
  encoding: Encoding;
  body: Buffer;
  /** Byte offset of each UUID occurrence, with the index of the id it names. */
  slots: Array<{ offset: number; id: number }>;
  /** Indices of the runs this body creates or updates. */
  runIds: number[];
}

export interface CaptureSet {
  templates: Template[];
  /** Distinct ids across the capture; a replay round maps each to a new one. */
  idCount: number;
  /** Distinct runs one replay round creates. */
  runsPerRound: number;
  /** Runs whose create and update travel in the same request (the server could merge them before writing). */
  postAndPatchTogether: number;
  encodings: Encoding[];
  compressedBytes: number;
  uncompressedBytes: number;
}

export function decompress(body: Buffer, encoding: string | undefined): Buffer {
  if (encoding === "zstd") return zlib.zstdDecompressSync(body);
  if (encoding === "gzip") return zlib.gunzipSync(body);
  if (encoding === undefined || encoding === "identity") return body;
  throw new Error(`captured a body with Content-Encoding ${encoding}, which the replay does not re-encode`);
}

/** Compress as the SDK does: zstd level 1 (its default), gzip at zlib's default level. */
function compress(body: Buffer, encoding: Encoding): Buffer {
  if (encoding === "zstd") return zlib.zstdCompressSync(body, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } });
  if (encoding === "gzip") return zlib.gzipSync(body);
  return body;
}

export function buildCaptureSet(captured: readonly CapturedRequest[]): CaptureSet {
  const ids = new Map<string, number>();
  const idOf = (uuid: string): number => {
    const key = uuid.toLowerCase();
    let n = ids.get(key);
    if (n === undefined) {
      n = ids.size;
      ids.set(key, n);
    }
    return n;
  };
  const templates: Template[] = [];
  const runs = new Set<number>();
  let postAndPatchTogether = 0;
  let compressedBytes = 0;
  let uncompressedBytes = 0;
  for (const req of captured) {
    if (req.path !== "/runs/multipart") continue;
    const encoding = (req.contentEncoding ?? "identity") as Encoding;
    const body = decompress(req.body, req.contentEncoding);
    // latin1 maps bytes to chars one to one, so string offsets are byte offsets.
    const text = body.toString("latin1");
    const slots = [...text.matchAll(UUID_RE)].map((m) => ({ offset: m.index, id: idOf(m[0]) }));
    const ops = [...text.matchAll(RUN_PART_RE)].map((m) => ({ op: m[1] as string, id: idOf(m[2] as string) }));
    const runIds = [...new Set(ops.map((o) => o.id))];
    const posted = new Set(ops.filter((o) => o.op === "post").map((o) => o.id));
    postAndPatchTogether += new Set(ops.filter((o) => o.op === "patch" && posted.has(o.id)).map((o) => o.id)).size;
    for (const r of runIds) runs.add(r);
    templates.push({ contentType: req.contentType, encoding, body, slots, runIds });
    compressedBytes += req.body.length;
    uncompressedBytes += body.length;
  }
  if (templates.length === 0) throw new Error("the SDK sent no /runs/multipart requests; nothing to replay");
  return {
    templates,
    idCount: ids.size,
    runsPerRound: runs.size,
    postAndPatchTogether,
    encodings: [...new Set(templates.map((t) => t.encoding))],
    compressedBytes,
    uncompressedBytes,
  };
}

/** One request ready to send. */
export interface ReplayRequest {
  contentType: string;
  contentEncoding: Encoding;
  body: Buffer;
  /** Ids of the runs it writes, to count the distinct runs of a partial replay. */
  runIds: string[];
}

/** The capture once more, every id replaced by a fresh time-ordered (v7) UUID, as the SDK makes them. */
export function replayRound(set: CaptureSet): ReplayRequest[] {
  const fresh = Array.from({ length: set.idCount }, () => uuid7());
  return set.templates.map((t) => {
    const body = Buffer.from(t.body);
    for (const slot of t.slots) body.write(fresh[slot.id] as string, slot.offset, "latin1");
    return { contentType: t.contentType, contentEncoding: t.encoding, body: compress(body, t.encoding), runIds: t.runIds.map((i) => fresh[i] as string) };
  });
}
