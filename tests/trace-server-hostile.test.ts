// Single hostile requests against the trace server (issue 16): each gets a 4xx that names what
// is wrong, or completes, while a probe request sent meanwhile is still answered promptly; valid
// runs sent beside bad ones are kept.
import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";
import type { TraceServerHandle } from "../setup/src/trace-server/index.js";
import { LOCAL_KEY, postMultipart, rootRun, runParts, serverFor } from "./fixtures/trace-server/helpers.js";

/** A raw HTTP request, so headers fetch would refuse or rewrite (Host) go out as given. */
function raw(server: TraceServerHandle, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, method, path, headers: { "x-api-key": LOCAL_KEY, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
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
