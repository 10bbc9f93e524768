/**
 * Hostile requests against a real server on 127.0.0.1 over a SQLite file and a PostgreSQL database: each
 * gets its status and code, never echoes a token, and changes nothing in the database (checked after each).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import type { Queue } from "../mod.ts";
import { API_ROUTES } from "../src/server/app.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { ADMIN_TOKEN, READ_TOKEN, withServer } from "./_server.ts";

const MAX_BODY = 4096;
const WRONG_TOKEN = "wrong-token-0123456789abcdef";

/** Everything the API could change, as one value to compare. */
async function snapshot(queue: Queue): Promise<string> {
  const [tasks, queues, stats] = await Promise.all([
    queue.list({ limit: 1000 }),
    queue.listQueues(),
    queue.stats(),
  ]);
  return JSON.stringify({
    tasks,
    queues: queues.map(({ oldestWaitMs: _, ...q }) => q),
    counts: stats.counts,
  });
}

interface Hostile {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: BodyInit;
  status: number;
  code: string;
}

const json = { "content-type": "application/json" };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const reader = { authorization: `Bearer ${READ_TOKEN}` };
const task = JSON.stringify({ type: "work", payload: {} });

function hostileRequests(id: number): Hostile[] {
  const readOnlyActions: Hostile[] = API_ROUTES.filter((route) => route.access === "admin").map((route) => ({
    name: `a read-only token doing ${route.method} ${route.path}`,
    method: route.method,
    path: route.path.replace("{id}", String(id)).replace("{name}", "default"),
    headers: { ...reader, ...(route.body ? json : {}) },
    body: route.body ? task : undefined,
    status: 403,
    code: "READ_ONLY_TOKEN",
  }));
  return [
    { name: "no token, reading", method: "GET", path: "/api/stats", status: 401, code: "UNAUTHORIZED" },
    {
      name: "no token, enqueueing",
      method: "POST",
      path: "/api/tasks",
      headers: json,
      body: task,
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "no token, cancelling",
      method: "POST",
      path: `/api/tasks/${id}/cancel`,
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "a wrong token",
      method: "POST",
      path: "/api/tasks",
      headers: { authorization: `Bearer ${WRONG_TOKEN}`, ...json },
      body: task,
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "the admin token with one character more",
      method: "DELETE",
      path: `/api/tasks/${id}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}x` },
      status: 401,
      code: "UNAUTHORIZED",
    },
    {
      name: "a token as Basic credentials",
      method: "GET",
      path: "/api/tasks",
      headers: { authorization: `Basic ${btoa(`u:${ADMIN_TOKEN}`)}` },
      status: 401,
      code: "UNAUTHORIZED",
    },
    ...readOnlyActions,
    {
      name: "an oversize body, declared",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, ...json },
      body: JSON.stringify({ type: "work", payload: { x: "y".repeat(MAX_BODY) } }),
      status: 413,
      code: "BODY_TOO_LARGE",
    },
    {
      name: "an oversize body, streamed without a length",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, ...json },
      body: streamOf(JSON.stringify({ type: "work", payload: { x: "y".repeat(MAX_BODY) } })),
      status: 413,
      code: "BODY_TOO_LARGE",
    },
    {
      name: "malformed JSON",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, ...json },
      body: '{"type": "work",',
      status: 400,
      code: "INVALID_JSON",
    },
    {
      name: "a body that is not UTF-8",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, ...json },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
      status: 400,
      code: "INVALID_JSON",
    },
    {
      name: "a text/plain body (a form a page could post)",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, "content-type": "text/plain" },
      body: task,
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    },
    {
      name: "a form body",
      method: "POST",
      path: "/api/purge",
      headers: { ...admin, "content-type": "application/x-www-form-urlencoded" },
      body: "statuses=cancelled&olderThanMs=0",
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
    },
    {
      name: "an enqueue without a body",
      method: "POST",
      path: "/api/tasks",
      headers: admin,
      status: 400,
      code: "INVALID_ARGUMENT",
    },
    {
      name: "a cross-site Origin",
      method: "POST",
      path: `/api/tasks/${id}/cancel`,
      headers: { ...admin, origin: "https://evil.example" },
      status: 403,
      code: "CROSS_SITE",
    },
    {
      name: "a cross-site Origin with a body",
      method: "POST",
      path: "/api/tasks",
      headers: { ...admin, ...json, origin: "http://127.0.0.1:1" },
      body: task,
      status: 403,
      code: "CROSS_SITE",
    },
    {
      name: "an Origin of another host on this server's port",
      method: "POST",
      path: "/api/queues/default/pause",
      headers: { ...admin, origin: "https://evil.example:PORT" },
      status: 403,
      code: "CROSS_SITE",
    },
    {
      name: "Sec-Fetch-Site: cross-site",
      method: "DELETE",
      path: `/api/tasks/${id}`,
      headers: { ...admin, "sec-fetch-site": "cross-site" },
      status: 403,
      code: "CROSS_SITE",
    },
    {
      name: "an Origin of null (a sandboxed page)",
      method: "POST",
      path: "/api/queues/default/pause",
      headers: { ...admin, origin: "null" },
      status: 403,
      code: "CROSS_SITE",
    },
    {
      name: "an unknown route",
      method: "GET",
      path: "/api/nothing",
      headers: admin,
      status: 404,
      code: "ROUTE_NOT_FOUND",
    },
    {
      name: "an unknown route outside the API",
      method: "GET",
      path: "/etc/passwd",
      headers: admin,
      status: 404,
      code: "ROUTE_NOT_FOUND",
    },
    {
      name: "a method a route does not take",
      method: "PATCH",
      path: `/api/tasks/${id}`,
      headers: { ...admin, ...json },
      body: task,
      status: 405,
      code: "METHOD_NOT_ALLOWED",
    },
    {
      name: "a bad id",
      method: "POST",
      path: "/api/tasks/1e3/cancel",
      headers: admin,
      status: 400,
      code: "INVALID_ARGUMENT",
    },
    {
      name: "a bad id, deleting",
      method: "DELETE",
      path: "/api/tasks/-1",
      headers: admin,
      status: 400,
      code: "INVALID_ARGUMENT",
    },
    {
      name: "a bad filter",
      method: "GET",
      path: "/api/tasks?status=everything",
      headers: admin,
      status: 400,
      code: "INVALID_ARGUMENT",
    },
    {
      name: "a bad payload filter",
      method: "GET",
      path: "/api/tasks?payload.__proto__.x=1&payload.a%27)--=1",
      headers: admin,
      status: 400,
      code: "INVALID_ARGUMENT",
    },
    {
      name: "a bulk retry of queued tasks",
      method: "POST",
      path: "/api/tasks/retry",
      headers: { ...admin, ...json },
      body: '{"status": "queued"}',
      status: 400,
      code: "INVALID_ARGUMENT",
    },
  ];
}

function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.subarray(i, i + 1000));
      controller.close();
    },
  });
}

for (const database of PROCESS_DATABASES) {
  describe(`hostile requests on ${database.name}`, { skip: database.skip }, () => {
    it("each gets its status and code, echoes no token, and changes nothing", async () => {
      const errors: unknown[] = [];
      await withServer(database, async ({ url, queue }) => {
        await queue.enqueue("work", { n: 1 });
        const finished = await queue.enqueue("work", { n: 2 });
        await queue.cancel(finished.id);
        await queue.enqueue("work", { n: 3 }); // newer: the cancelled task could be deleted
        const before = await snapshot(queue);
        const cases = hostileRequests(finished.id);
        for (const hostile of cases) {
          const port = new URL(url).port;
          const headers = Object.fromEntries(
            Object.entries(hostile.headers ?? {}).map(([name, value]) => [name, value.replace("PORT", port)]),
          );
          const response = await fetch(url + hostile.path, {
            method: hostile.method,
            headers,
            body: hostile.body,
            // @ts-ignore: a streamed body needs it; the DOM types lack it.
            duplex: "half",
          });
          const text = await response.text();
          assert.equal(response.status, hostile.status, `${hostile.name}: ${text}`);
          const body = JSON.parse(text) as { error: { code: string; message: string } };
          assert.equal(body.error.code, hostile.code, hostile.name);
          assert.ok(body.error.message.length > 10, hostile.name);
          for (const token of [ADMIN_TOKEN, READ_TOKEN, WRONG_TOKEN]) {
            assert.ok(
              !text.includes(token) && ![...response.headers.values()].some((v) => v.includes(token)),
              `${hostile.name} echoes no token`,
            );
          }
          assert.equal(response.headers.get("x-content-type-options"), "nosniff");
          if (hostile.status === 401) assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
          assert.equal(await snapshot(queue), before, `${hostile.name} changed nothing`);
        }
        assert.ok(cases.length >= 35, `${cases.length} hostile requests`);
      }, { maxBodyBytes: MAX_BODY, onError: (error) => errors.push(error) });
      assert.deepEqual(errors, [], "no request made the server fail");
    });

    it("the tokens that may: the admin token acts, a read-only one reads, the document needs none; same-origin actions pass", async () => {
      await withServer(database, async ({ url, queue }) => {
        assert.equal((await fetch(`${url}/api/openapi.json`)).status, 200);
        assert.equal((await fetch(`${url}/api/stats`, { headers: reader })).status, 200);
        const created = await fetch(`${url}/api/tasks`, {
          method: "POST",
          headers: { ...admin, ...json, origin: url, "sec-fetch-site": "same-origin" },
          body: task,
        });
        assert.equal(created.status, 201, await created.text());
        // Behind a proxy that ends TLS: the page is https, the request forwarded to the server http.
        const proxied = await fetch(`${url}/api/tasks`, {
          method: "POST",
          headers: { ...admin, ...json, origin: url.replace("http:", "https:") },
          body: task,
        });
        assert.equal(proxied.status, 201);
        await proxied.body?.cancel();
        assert.equal((await queue.list()).length, 2);
      });
    });

    it("without tokens, a request naming a host other than a loopback one (DNS rebinding) is refused, and changes nothing", async () => {
      await withServer(database, async ({ url, queue }) => {
        const victim = await queue.enqueue("work", { secret: "s3cr3t" }, { delayMs: 3_600_000 });
        const port = new URL(url).port;
        const send = (method: string, path: string, host: string) =>
          rawRequest(url, method, path, {
            host: `${host}:${port}`,
            origin: `http://${host}:${port}`,
            "sec-fetch-site": "same-origin",
          });
        for (
          const [method, path] of [["GET", "/api/tasks"], ["POST", `/api/tasks/${victim.id}/cancel`], [
            "GET",
            "/metrics",
          ]]
        ) {
          const refused = await send(method!, path!, "evil.example");
          assert.equal(refused.status, 403, `${method} ${path}: ${refused.body}`);
          assert.equal(JSON.parse(refused.body).error.code, "HOST_NOT_LOOPBACK");
          assert.ok(!refused.body.includes("s3cr3t"));
        }
        assert.equal((await queue.get(victim.id))?.status, "queued");
        for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
          assert.equal((await send("GET", "/api/stats", host)).status, 200, host);
        }
      }, { adminTokens: [], readTokens: [] });
    });

    it("without tokens every request may act (the CLI allows it on loopback only), yet cross-site actions are refused", async () => {
      await withServer(database, async ({ url, queue }) => {
        const created = await fetch(`${url}/api/tasks`, { method: "POST", headers: json, body: task });
        assert.equal(created.status, 201);
        const crossSite = await fetch(`${url}/api/tasks`, {
          method: "POST",
          headers: { ...json, origin: "https://evil.example" },
          body: task,
        });
        assert.equal(crossSite.status, 403);
        await crossSite.body?.cancel();
        assert.equal((await queue.list()).length, 1);
      }, { adminTokens: [], readTokens: [] });
    });
  });
}

/** A request with headers fetch will not let a caller set (Host), through node:http. */
function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const request = httpRequest({ hostname, port, method, path, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end();
  });
}
