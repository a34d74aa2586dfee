// startApp / waitForHttp with real sockets.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import express from "express";
import { startApp, waitForHttp } from "@tracing-patterns/setup";

async function portIsFree(port: number): Promise<boolean> {
  const probe = http.createServer();
  return new Promise((resolve) => {
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

test("startApp serves an express app on an ephemeral loopback port; close frees the port", async () => {
  const app = express();
  app.get("/hello", (_req, res) => {
    res.json({ hello: "world" });
  });
  const running = await startApp(app);
  assert.notEqual(running.port, 0);
  assert.equal(running.url, `http://127.0.0.1:${running.port}`);
  const body = (await (await fetch(`${running.url}/hello`)).json()) as { hello: string };
  assert.deepEqual(body, { hello: "world" });
  await running.close();
  await running.close();
  assert.equal(await portIsFree(running.port), true);
});

test("close does not wait for idle keep-alive connections", async () => {
  const running = await startApp((_req, res) => {
    res.end("ok");
  });
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http.get(`${running.url}/`, { agent }, (res) => {
      res.resume();
      res.on("end", resolve);
    }).on("error", reject);
  });
  // The agent now holds an open keep-alive socket; server.close alone would wait for it to time out.
  assert.equal(Object.values(agent.freeSockets).flat().length, 1);
  await running.close();
  assert.equal(await portIsFree(running.port), true);
  agent.destroy();
});

test("with healthPath, startApp resolves only after the app reports healthy", async () => {
  let healthChecks = 0;
  const running = await startApp(
    (req, res) => {
      if (req.url === "/health") {
        healthChecks++;
        // Healthy from the third check on: startApp must keep polling, not give up or pass early.
        res.statusCode = healthChecks >= 3 ? 200 : 503;
      }
      res.end();
    },
    { healthPath: "/health" },
  );
  assert.ok(healthChecks >= 3);
  await running.close();
});

test("an app that never becomes healthy fails with an error naming the URL, and is closed", async () => {
  let port = 0;
  await assert.rejects(
    startApp(
      (req, res) => {
        port = req.socket.localPort ?? 0;
        res.statusCode = 500;
        res.end();
      },
      { healthPath: "/health", timeoutMs: 300 },
    ),
    (error: Error) => /Timed out after 300 ms waiting for http:\/\/127\.0\.0\.1:\d+\/health \(last result: HTTP 500\)/.test(error.message),
  );
  assert.equal(await portIsFree(port), true);
});

test("a port already in use is reported clearly", async () => {
  const first = await startApp((_req, res) => res.end());
  try {
    await assert.rejects(startApp((_req, res) => res.end(), { port: first.port }), new RegExp(`127\\.0\\.0\\.1:${first.port} is already in use`));
  } finally {
    await first.close();
  }
});

test("waitForHttp reports connection failures with the URL once the deadline passes", async () => {
  const running = await startApp((_req, res) => res.end());
  const { port } = running;
  await running.close();
  await assert.rejects(waitForHttp(`http://127.0.0.1:${port}/x`, { timeoutMs: 200 }), /waiting for http:\/\/127\.0\.0\.1:\d+\/x \(last result: ECONNREFUSED\)/);
});
