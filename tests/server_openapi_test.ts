/**
 * The OpenAPI document at /api/openapi.json matches the server: every route the Hono app registered is in
 * it with its method, and every route in it answers (neither 404 nor 405) on a real server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { QueueDatabase } from "../mod.ts";
import { createServerApp } from "../src/server/app.ts";
import { FILE_DATABASE } from "./_databases.ts";
import { json, withServer } from "./_server.ts";
import { makeTempDir } from "./_helpers.ts";

const METHODS = ["get", "post", "put", "delete", "patch"];

/** The document's operations as `METHOD /path`, with `{id}` in OpenAPI's form. */
function documented(document: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.keys(operations).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`)
  ).sort();
}

test("every route the app registers is in the OpenAPI document, with the same method", async () => {
  const { dir, remove } = makeTempDir();
  const db = new QueueDatabase(`${dir}/queue.db`);
  try {
    await db.initializeSchema();
    // With a dashboard, so that its routes are among those registered: they are not the API's.
    const { app } = createServerApp(db, { dashboard: () => undefined });
    const response = await app.fetch(new Request("http://127.0.0.1/api/openapi.json"));
    const document = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      response,
    );
    assert.equal(document.openapi, "3.1.0");
    const registered = app.routes
      .filter((route) =>
        route.method !== "ALL" && (route.path.startsWith("/api/") || route.path === "/metrics")
      )
      .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`);
    const inDocument = documented(document);
    for (const route of registered) {
      assert.ok(inDocument.includes(route), `${route} is registered but not documented`);
    }
    assert.deepEqual([...new Set(registered)].sort(), inDocument, "and nothing else is documented");
    const other = app.routes.filter((r) =>
      r.method !== "ALL" && !r.path.startsWith("/api/") && r.path !== "/metrics"
    ).map((r) => r.path);
    assert.deepEqual(other.sort(), ["/", "/assets/*"], "outside /api/ and /metrics: the dashboard only");
  } finally {
    await db.close();
    remove();
  }
});

test("every documented route answers on a real server: neither 404 nor 405", async () => {
  await withServer(FILE_DATABASE, async ({ api, queue }) => {
    const done = await queue.enqueue("work", {});
    await queue.cancel(done.id);
    await queue.enqueue("work", {}); // newer, so that the first may be deleted
    const document = await json<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(
      await api("/api/openapi.json", { headers: { authorization: "" } }),
    );
    const bodies: Record<string, unknown> = {
      "POST /api/tasks": { type: "work" },
      "POST /api/tasks/batch": { tasks: [{ type: "work" }] },
      "POST /api/tasks/retry": { status: "cancelled" },
      "POST /api/purge": { statuses: ["completed"], olderThanMs: 0 },
      "PUT /api/queues/{name}": { concurrency: 2 },
    };
    let count = 0;
    // Deletes last: the task they remove is the one the other routes use.
    const operations = documented(document as never).sort((a, b) =>
      Number(a.startsWith("DELETE")) - Number(b.startsWith("DELETE"))
    );
    for (const operation of operations) {
      const [method, path] = operation.split(" ") as [string, string];
      const url = path.replace("{id}", String(done.id)).replace("{name}", "mail");
      const hasBody = document.paths[path]![method.toLowerCase()]!.requestBody !== undefined;
      assert.equal(
        hasBody,
        operation in bodies,
        `${operation}: a body is documented exactly where one is taken`,
      );
      const response = await api(url, { method, json: bodies[operation] });
      await response.body?.cancel();
      assert.ok(response.status < 400 || response.status === 409, `${operation} answered ${response.status}`);
      count++;
    }
    assert.ok(count >= 17, `${count} operations`);
  });
});
