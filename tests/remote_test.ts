/**
 * The queue on a libSQL server, through `@libsql/client` over HTTP. The server is the stand-in in
 * tests/fixtures/libsql_http_server.ts (sqld cannot run here), on a real libSQL file.
 *
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DatabaseError,
  type EnqueueItem,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { startLibsqlServer } from "./fixtures/libsql_http_server.ts";
import { makeTempDir } from "./_helpers.ts";

describe("a queue on a libSQL server", () => {
  let folder: { dir: string; remove: () => void };
  let server: Awaited<ReturnType<typeof startLibsqlServer>>;

  before(async () => {
    folder = makeTempDir("prismq-remote-");
    server = await startLibsqlServer(join(folder.dir, "server.db"));
  });

  after(async () => {
    await server?.close();
    folder?.remove();
  });

  /** A fresh handle on the server, closed after `fn`. */
  async function withServer(fn: (db: QueueDatabase) => Promise<void>): Promise<void> {
    const db = new QueueDatabase(server.url);
    try {
      await db.initializeSchema();
      await fn(db);
    } finally {
      await db.close();
    }
  }

  test("enqueue, enqueueMany (alike, keyed and mixed) and get agree with what the server stored", async () => {
    await withServer(async (db) => {
      const queue = new Queue(db);
      const one = await queue.enqueue("a", { n: 1 }, { priority: 3 });
      const alike = await queue.enqueueMany(
        ["x", 'quote " and é', [1, 2], null].map((payload) => ({ type: "b", payload })),
      );
      const keyed = await queue.enqueueMany([
        { type: "c", payload: { i: 1 }, idempotencyKey: "remote-1" },
        { type: "c", payload: { i: 2 } },
        { type: "c", payload: { i: 3 }, idempotencyKey: "remote-1" },
      ]);
      assert.deepEqual(alike.map((task) => task.payload), ["x", 'quote " and é', [1, 2], null]);
      assert.equal(keyed[2].id, keyed[0].id, "one task per idempotency key");
      for (const task of [one, ...alike, ...keyed]) assert.deepEqual(await queue.get(task.id), task);
      const ids = [one, ...alike].map((task) => task.id);
      assert.deepEqual(ids, ids.map((_, i) => ids[0] + i), "ids follow one another");
    });
  });

  test("a worker drains the server's queue, each task exactly once", async () => {
    await withServer(async (db) => {
      const queue = new Queue(db);
      const items: EnqueueItem[] = Array.from({ length: 300 }, (_, i) => ({ type: "count", payload: { i } }));
      await queue.enqueueMany(items);
      const seen: number[] = [];
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("count", (task) => void seen.push((task.payload as { i: number }).i));
      const worker = new WorkerEngine({
        db,
        workerId: "remote",
        handlerRegistry: registry,
        concurrency: 8,
        types: ["count"],
      });
      const summary = await worker.runLoop({ untilEmpty: true });
      assert.equal(summary.completed, 300);
      assert.deepEqual(seen.sort((a, b) => a - b), items.map((_, i) => i));
      const stats = await queue.stats();
      assert.equal(stats.counts.running, 0);
      assert.equal(stats.byType.count.completed, 300);
    });
  });

  test("a transaction commits whole, or not at all", async () => {
    await withServer(async (db) => {
      await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?)", ["tx", "{}"]);
        await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?)", ["tx", "{}"]);
      });
      await assert.rejects(() =>
        db.transaction(async (tx) => {
          await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?)", ["tx", "{}"]);
          throw new Error("changed my mind");
        }), /changed my mind/);
      const count = await db.transaction((tx) =>
        tx.execute("SELECT count(*) AS n FROM task_queue WHERE type = 'tx'")
      );
      assert.equal(Number(count.rows[0].n), 2);
    });
  });

  test("a bad argument is the client's own error, not an unreachable server", async () => {
    await withServer(async (db) => {
      const error = await db.transaction((tx) => tx.execute("SELECT ?", [NaN])).catch((e: unknown) => e);
      assert.ok(error instanceof Error);
      assert.ok(!(error instanceof DatabaseError), `got ${error}`);
      assert.doesNotMatch(error.message, /Cannot reach/);
    });
  });

  test("a closed handle refuses statements; a bad URL fails at the first statement, saying why", async () => {
    const db = new QueueDatabase(server.url);
    await db.close();
    await assert.rejects(() => new Queue(db).stats(), /closed/);
    const bad = new QueueDatabase(`${server.url}?colour=red`);
    try {
      await assert.rejects(() => bad.initializeSchema(), (error: Error) => {
        assert.ok(error instanceof DatabaseError);
        // The URL without its query, which may hold a token; the parameter named.
        assert.match(error.message, /The database URL 'http:\/\/127\.0\.0\.1:\d+' is invalid: .*"colour"/);
        return true;
      });
    } finally {
      await bad.close();
    }
  });
});
