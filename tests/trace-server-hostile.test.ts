// Single hostile requests against the trace server (issue 16): each gets a 4xx that names what
// is wrong, or completes, while a probe request sent meanwhile is still answered promptly; valid
// runs sent beside bad ones are kept.
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect } from "node:net";
import { test } from "node:test";
import zlib from "node:zlib";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { probeWhile, PROMPT_MS } from "./fixtures/probe.js";
import { encodeMultipart, LOCAL_KEY, postMultipart, rootRun, runParts, serverFor } from "./fixtures/trace-server/helpers.js";

/** A raw HTTP request, so headers fetch would refuse or rewrite (Host) go out as given. */
function raw(server: TraceServerHandle, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<{ status: number; text: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, method, path, headers: { "x-api-key": LOCAL_KEY, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), ...(res.headers.location ? { location: res.headers.location } : {}) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("item 10: a Host with userinfo does not pass the loopback check, and attachment links use the server's own address", async (t) => {
  const server = await serverFor(t);
  for (const host of [`127.0.0.1:${server.port}@evil.example`, `localhost:${server.port}@evil.example`, "127.0.0.1:1984/evil.example", "[::1]:1@evil.example"]) {
    const info = await raw(server, "GET", "/info", { host });
    assert.equal(info.status, 403, `${host}: ${info.text}`);
  }
  for (const host of [`127.0.0.1:${server.port}`, `LOCALHOST:${server.port}`, "[::1]", "localhost"]) {
    assert.equal((await raw(server, "GET", "/info", { host })).status, 200, host);
  }

  // A server that answers any Host (listening on all interfaces) must still not reflect it.
  const open = await serverFor(t, { allowedHosts: "any" });
  const root = rootRun("with-attachment");
  const posted = await postMultipart(open, [...runParts("post", root), { name: `attachment.${root.id}.note.txt`, body: "hello", contentType: "text/plain" }]);
  assert.equal(posted.status, 202, JSON.stringify(posted.json));
  for (const path of [`/runs/${root.id}`, `/api/traces/${root.id}`]) {
    const res = await raw(open, "GET", path, { host: `127.0.0.1:${open.port}@evil.example` });
    assert.equal(res.status, 200, res.text);
    const urls = [...res.text.matchAll(/"presigned_url":"([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(urls, [`${open.url}/api/attachments/${root.id}/note.txt`], path);
  }
});

test("item 6: out-of-range offsets, too many ids, malformed percent-escapes and a '//' path get a 4xx naming the problem, never a 500", async (t) => {
  const server = await serverFor(t);
  for (const path of ["/api/traces?offset=1e21", "/sessions?offset=1e21", "/feedback?offset=1e21", `/api/traces?offset=${2n ** 63n}`, "/api/rejections?after=1e400", "/sessions?limit=0x10"]) {
    const res = await raw(server, "GET", path, {});
    assert.equal(res.status, 422, `${path}: ${res.text}`);
    assert.match(res.text, /must be a non-negative integer of at most 9007199254740991/, path);
  }
  assert.equal((await raw(server, "GET", "/api/traces?offset=9007199254740991", {})).status, 200);

  const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`);
  const json = { "content-type": "application/json" };
  const tooMany = await raw(server, "POST", "/runs/query", json, JSON.stringify({ id: ids(40_000) }));
  assert.equal(tooMany.status, 422, tooMany.text);
  assert.match(tooMany.text, /id lists 40000 ids, over the limit of 10000 per query/);
  // At the limit, in every list at once: more SQL parameters than SQLite takes in one statement, if each id were one.
  const atLimit = await raw(server, "POST", "/runs/query", json, JSON.stringify({ id: ids(10_000), session: ids(10_000), reference_example: ids(10_000) }));
  assert.equal(atLimit.status, 200, atLimit.text.slice(0, 300));
  const v2 = await raw(server, "POST", "/api/v2/runs/query", json, JSON.stringify({ project_ids: ids(40_000) }));
  assert.equal(v2.status, 422, v2.text.slice(0, 300));
  assert.match(v2.text, /project_ids lists 40000 ids, over the limit of 10000 per query/);
  const v2AtLimit = await raw(server, "POST", "/api/v2/runs/query", json, JSON.stringify({ project_ids: ids(10_000), ids: ids(10_000), reference_examples: ids(10_000) }));
  assert.equal(v2AtLimit.status, 200, v2AtLimit.text.slice(0, 300));

  const id = ids(1)[0] as string;
  for (const path of ["/runs/%E0%A4%A", "/api/traces/%E0%A4%A", `/api/attachments/${id}/%E0%A4%A`, "/sessions/%E0%A4%A", `/api/v2/runs/%E0%A4%A?project_id=${id}`, "/traces/%E0%A4%A", "/traces/%E0%A4%A/state"]) {
    const res = await raw(server, "GET", path, {});
    assert.equal(res.status, 400, `${path}: ${res.text}`);
    assert.match(res.text, /Failed to decode param/, path);
  }
  const patched = await raw(server, "PATCH", "/runs/%E0%A4%A", json, "{}");
  assert.equal(patched.status, 400, patched.text);

  // The viewer takes ?key= once and redirects to the same page without it.
  for (const path of ["//?key=x&project=p", "/?key=x&project=p"]) {
    const res = await raw(server, "GET", path, {});
    assert.equal(res.status, 303, `${path}: ${res.text}`);
    assert.equal(res.location, "/?project=p", path);
  }
});

test("item 4: the part limit uses the boundary the parser uses, however the Content-Type is dressed", async (t) => {
  const server = await serverFor(t);
  // 400,000 empty parts in 19 MB, 600 KB as zstd, behind a second parameter that also ends in "boundary=".
  const part = '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n';
  const flood = zlib.zstdCompressSync(Buffer.from(`${part.repeat(400_000)}--B--\r\n`));
  const hostile = raw(server, "POST", "/runs/multipart", { "content-type": "multipart/form-data; boundary=B; x-boundary=Z", "content-encoding": "zstd" }, flood);
  const { result, worstProbeMs } = await probeWhile(`${server.url}/info`, hostile);
  assert.equal(result.status, 413, result.text);
  assert.match(result.text, /multipart body has more than 10000 parts/);
  assert.ok(worstProbeMs < PROMPT_MS, `a probe waited ${worstProbeMs.toFixed(0)} ms`);

  // The same dressing on a valid body: one boundary, read the same by both.
  const root = rootRun("dressed");
  const { body, contentType } = await encodeMultipart(runParts("post", root));
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1] ?? "";
  for (const dressed of [`multipart/form-data; x-boundary=Z; boundary=${boundary}`, `Multipart/Form-Data ; BOUNDARY="${boundary}" ; charset=utf-8`]) {
    const ok = await raw(server, "POST", "/runs/multipart", { "content-type": dressed }, body);
    assert.equal(ok.status, 202, `${dressed}: ${ok.text}`);
  }
  assert.equal(server.store.getRun(root.id)?.name, "dressed");
  for (const [dressed, reason] of [
    [`multipart/form-data; boundary=${boundary}; boundary=Z`, /the parameter boundary appears twice/],
    [`multipart/form-data; boundary=${"b".repeat(71)}`, /not 1-70 of the characters RFC 2046 allows/],
    [`multipart/form-data; boundary ${boundary}`, /malformed parameters/],
    [`multipart/mixed; boundary=${boundary}`, /not multipart\/form-data/],
  ] as const) {
    const refused = await raw(server, "POST", "/runs/multipart", { "content-type": dressed }, body);
    assert.equal(refused.status, 400, dressed);
    assert.match(refused.text, reason, dressed);
  }
});

test("item 5: one operation nested 6,000 deep is refused alone; the valid run beside it is stored", async (t) => {
  const server = await serverFor(t);
  const deepArray = `${"[".repeat(6000)}${"]".repeat(6000)}`;
  const json = { "content-type": "application/json" };
  for (const [op, route] of [["post", "/runs/batch"], ["patch", "/runs/batch"], ["post", "/runs/multipart"]] as const) {
    const good = rootRun(`kept-${op}-${route}`);
    let res: { status: number; text: string };
    if (route === "/runs/batch") {
      res = await raw(server, "POST", route, json, `{"${op}":[${JSON.stringify(good)},${deepArray}]}`);
    } else {
      const badId = rootRun("bad").id;
      const { body, contentType } = await encodeMultipart([...runParts("post", good), { name: `post.${badId}`, body: deepArray }]);
      res = await raw(server, "POST", route, { "content-type": contentType }, body);
    }
    assert.equal(res.status, 422, `${op} ${route}: ${res.text.slice(0, 300)}`);
    const answer = JSON.parse(res.text) as { accepted: number; rejected: Array<{ rule: string; message: string }> };
    assert.equal(answer.accepted, 1);
    assert.deepEqual(answer.rejected.map((r) => r.rule), ["invalid_field"]);
    assert.match(answer.rejected[0]?.message ?? "", /must be a JSON object/);
    assert.equal(server.store.getRun(good.id)?.name, good.name, `${op} ${route}`);
  }
  const single = await raw(server, "POST", "/runs", json, deepArray);
  assert.equal(single.status, 422, single.text.slice(0, 300));
  const rejections = await fetch(`${server.url}/api/rejections`);
  assert.equal(rejections.status, 200);
  assert.match(await rejections.text(), /nested deeper than 256 levels/);
});

test("item 7: a run that is its own parent or its trace's root with a parent, mutual parents, longer cycles and cross-trace parents are refused", async (t) => {
  const server = await serverFor(t);
  const json = { "content-type": "application/json" };
  let clock = Date.parse("2025-06-01T00:00:00.000Z");
  const seg = (id: string): string => `${new Date((clock += 1)).toISOString().replace(/[-:]/g, "").replace(/\.(\d{3})Z$/, "$1000Z")}${id}`;
  const ids = Array.from({ length: 8 }, () => crypto.randomUUID());
  const [T, A, B, P, Q, R, X, T2] = ids as [string, string, string, string, string, string, string, string];
  const run = (id: string, trace: string, parent: string | undefined, chain: string[]): Record<string, unknown> => ({
    id, trace_id: trace, ...(parent ? { parent_run_id: parent } : {}), dotted_order: chain.map(seg).join("."), name: id.slice(0, 8), run_type: "chain", start_time: "2025-06-01T00:00:00Z", inputs: {},
  });
  const send = async (...runs: Array<Record<string, unknown>>): Promise<{ status: number; rules: string[]; accepted: number }> => {
    const res = await raw(server, "POST", "/runs/batch", json, JSON.stringify({ post: runs }));
    const body = JSON.parse(res.text) as { accepted: number; rejected: Array<{ rule: string }> };
    return { status: res.status, rules: body.rejected.map((r) => r.rule), accepted: body.accepted };
  };
  assert.equal((await send(run(T, T, undefined, [T]), run(T2, T2, undefined, [T2]))).status, 202);

  // Its own parent, and the trace root (id = trace_id) with a parent.
  assert.deepEqual((await send(run(X, X, X, [X, X]))).rules, ["cycle"]);
  assert.deepEqual((await send(run(X, X, T, [X, T, X]))).rules, ["cycle"]);
  // Two runs each other's parent: in one request, and in two.
  assert.deepEqual(await send(run(A, T, B, [T, B, A]), run(B, T, A, [T, A, B])), { status: 422, rules: ["parent_dotted_order"], accepted: 1 });
  assert.deepEqual((await send(run(B, T, A, [T, A, B]))).rules, ["parent_dotted_order"]);
  // A parent in another trace.
  assert.deepEqual((await send(run(Q, T, T2, [T, T2, Q]))).rules, ["parent_trace"]);
  // X -> P -> Q -> R -> X, each run consistent with the parent it names when that parent is stored:
  // only the check of children stored before their parent catches it.
  assert.equal((await send(run(P, T, Q, [T, Q, P]), run(R, T, X, [T, X, R]))).status, 202);
  assert.deepEqual((await send(run(X, T, P, [T, Q, P, X]))).rules, ["parent_dotted_order"]);
  assert.deepEqual((await send(run(Q, T, R, [T, X, R, Q]))).rules, ["parent_dotted_order"]);

  // Whatever got stored is a forest: following parents from any run ends at a root, never loops.
  for (const id of ids) {
    const seen = new Set<string>();
    for (let at = server.store.getRun(id); at?.parent_run_id; at = server.store.getRun(at.parent_run_id)) {
      assert.ok(!seen.has(at.id), `a cycle through ${at.id}`);
      seen.add(at.id);
    }
  }
  // SDK-shaped children still go in, before or after their parent.
  const [C, D] = [crypto.randomUUID(), crypto.randomUUID()];
  assert.deepEqual(await send(run(D, T, C, [T, B, A, C, D]), run(C, T, A, [T, B, A, C])), { status: 202, rules: [], accepted: 2 });
});

/**
 * Sends a request head and the first `sent` bytes of a body that declares `declared`, waits for the
 * answer, then sends the rest and a `GET /info` on the same connection: what a client still
 * writing its body when the server refuses it sees. Resolves with the first answer and the second
 * one's head (undefined when the server closed the connection).
 */
function refusedMidBody(server: TraceServerHandle, head: string, declared: number, sent: number): Promise<{ first: string; second: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, "127.0.0.1");
    let data = "";
    let first: string | undefined;
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1");
      if (first === undefined) {
        const end = data.indexOf("\r\n\r\n");
        const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? "0");
        if (end < 0 || data.length < end + 4 + length) return;
        first = data.slice(0, end + 4 + length);
        data = data.slice(end + 4 + length);
        // The server has answered; the client, as one streaming its upload would, sends the rest.
        socket.write(Buffer.alloc(declared - sent, 97));
        socket.write(`GET /info HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nx-api-key: ${LOCAL_KEY}\r\n\r\n`);
      } else if (/\r\n\r\n[\s\S]*\}$/.test(data)) {
        resolve({ first, second: data.slice(0, data.indexOf("\r\n\r\n")) });
        socket.destroy();
      }
    });
    socket.on("error", () => resolve({ first: first ?? "", second: undefined }));
    socket.on("close", () => resolve({ first: first ?? "", second: undefined }));
    socket.on("timeout", () => reject(new Error("no answer")));
    socket.setTimeout(15_000);
    socket.write(`${head}Host: 127.0.0.1:${server.port}\r\nContent-Length: ${declared}\r\n\r\n`);
    socket.write(Buffer.alloc(sent, 97));
  });
}

test("a request refused while its body is still arriving: the rest is drained, so the client reads the answer and the connection carries its next request (found by the hostile-input campaign)", async (t) => {
  const server = await serverFor(t, { apiKey: "s3cret", maxBodyBytes: 4 * 1024 * 1024 });
  const cases: Array<[string, string, RegExp]> = [
    // Refused before a byte of the body is read: a wrong key, a content type the route does not take.
    ["POST /runs/multipart HTTP/1.1\r\nx-api-key: wrong\r\ncontent-type: multipart/form-data; boundary=B\r\n", "401", /invalid API key/],
    [`POST /otel/v1/traces HTTP/1.1\r\nx-api-key: s3cret\r\ncontent-type: text/plain\r\n`, "415", /application\/x-protobuf or application\/json/],
    // Refused after its first bytes: labelled gzip, but not gzip.
    [`POST /runs/batch HTTP/1.1\r\nx-api-key: s3cret\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n`, "400", /could not read the gzip request body/],
    [`POST /otel/v1/traces HTTP/1.1\r\nx-api-key: s3cret\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n`, "400", /could not read the gzip request body/],
  ];
  for (const [head, status, message] of cases) {
    const { first, second } = await refusedMidBody(server, head, 1024 * 1024, 64 * 1024);
    const what = head.split("\r\n")[0];
    assert.match(first, new RegExp(`^HTTP/1.1 ${status} `), `${what}: ${first}`);
    assert.match(first, message, what);
    assert.doesNotMatch(first, /connection: close/i, what);
    assert.match(second ?? "(closed)", /^HTTP\/1.1 200 /, `${what}: the next request on the connection`);
  }
  // Over the limit it is not read to its end: 413, and that connection closes.
  const over = await refusedMidBody(server, "POST /runs/batch HTTP/1.1\r\nx-api-key: s3cret\r\ncontent-type: application/json\r\n", 5 * 1024 * 1024, 64 * 1024);
  assert.match(over.first, /^HTTP\/1.1 413 /);
  assert.match(over.first, /connection: close/i);
  assert.equal(over.second, undefined);
});
