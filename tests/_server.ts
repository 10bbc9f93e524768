/**
 * A real HTTP server for tests: the API's handler (`createHttpHandler`) on a real database (a SQLite file,
 * or a PostgreSQL database of its own), listening on 127.0.0.1 on a free port, as `prismq serve` listens.
 *
 * @module
 */
import * as v from "valibot";
import { defineHandler, type HttpServerOptions, Queue, QueueDatabase, TaskHandlerRegistry } from "../mod.ts";
import { createHttpHandler } from "../src/server/app.ts";
import { listenHttp } from "../src/cli/http_listen.ts";
import type { ProcessDatabase } from "./_databases.ts";
import { makeTempDir } from "./_helpers.ts";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const READ_TOKEN = "read-token-0123456789abcdef";

/** The types the test server knows: `email`, whose payload must be `{ to: an email }`, and `work`. */
export function testRegistry(): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler(defineHandler({
    type: "email",
    schema: v.object({ to: v.pipe(v.string(), v.email()) }),
    handle: () => {},
  }));
  registry.registerHandler("work", () => {});
  return registry;
}

export interface TestServer {
  url: string;
  db: QueueDatabase;
  /** A queue on the same database, for arranging and checking what the API did. */
  queue: Queue;
  /** `fetch` on the server, with the admin token unless `headers` say otherwise. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

/** A server on a new database of `kind`, with both test tokens unless `options` say otherwise. */
export async function withServer<T>(
  kind: ProcessDatabase,
  fn: (server: TestServer) => Promise<T>,
  options: HttpServerOptions = {},
): Promise<T> {
  const { dir, remove } = makeTempDir("prismq-server-");
  const { location, drop } = await kind.create(dir);
  const db = new QueueDatabase(location);
  try {
    await db.initializeSchema();
    const handler = createHttpHandler(db, {
      registry: testRegistry(),
      adminTokens: [ADMIN_TOKEN],
      readTokens: [READ_TOKEN],
      // Under the body limit: the queue's payload limit is what refuses a large payload.
      maxPayloadBytes: 500_000,
      ...options,
    });
    const listener = await listenHttp(handler, "127.0.0.1", 0);
    const url = `http://127.0.0.1:${listener.port}`;
    try {
      return await fn({
        url,
        db,
        queue: new Queue(db),
        api(path, init = {}) {
          const headers = new Headers(init.headers);
          if (!headers.has("authorization")) headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
          let body = init.body;
          if (init.json !== undefined) {
            body = JSON.stringify(init.json);
            if (!headers.has("content-type")) headers.set("content-type", "application/json");
          }
          return fetch(url + path, { ...init, headers, body });
        },
      });
    } finally {
      await listener.close();
    }
  } finally {
    await db.close();
    await drop();
    remove();
  }
}

/** The JSON body of `response`, after checking its status. */
export async function json<T = Record<string, unknown>>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  if (response.status !== status) {
    throw new Error(`expected ${status}, got ${response.status}: ${text}`);
  }
  return JSON.parse(text) as T;
}
