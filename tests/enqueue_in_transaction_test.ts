/**
 * Enqueueing inside the application's own transaction: through PrismQ's `db.transaction()` handle and
 * through the application's Drizzle database on the same file (libSQL client, `libsql`, `node:sqlite`), the
 * task commits or rolls back with the application's row; a call that could never finish throws at once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { createClient } from "@libsql/client";
import Database from "libsql";
import { eq, sql } from "drizzle-orm";
import { drizzle as drizzleLibsql } from "drizzle-orm/libsql";
import { BetterSQLiteSession } from "drizzle-orm/better-sqlite3/session";
import { drizzle as drizzleProxy } from "drizzle-orm/sqlite-proxy";
import { BaseSQLiteDatabase, integer, SQLiteSyncDialect, sqliteTable, text } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import {
  defineHandler,
  DependencyError,
  PayloadTooLargeError,
  PayloadValidationError,
  Queue,
  QueueDatabase,
  type Task,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
} from "../mod.ts";
import { makeTempDir, rejectionOf, withDb, within } from "./_helpers.ts";

/** The error a promise rejects with, which must be an Error. */
async function errorOf(promise: Promise<unknown>): Promise<Error> {
  const error = await rejectionOf(promise);
  assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
  return error;
}

const users = sqliteTable("users", {
  id: integer("id").primaryKey(),
  email: text("email").notNull(),
});
const CREATE_USERS_SQL = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)";
const CREATE_USERS = sql.raw(CREATE_USERS_SQL);

/**
 * Drizzle's better-sqlite3 driver over a `libsql` connection, which has better-sqlite3's API: what
 * `drizzle(connection)` from "drizzle-orm/better-sqlite3" builds, without that module's import of the
 * better-sqlite3 package itself, which this project does not install.
 */
function drizzleSync(connection: Database.Database) {
  const dialect = new SQLiteSyncDialect();
  return new BaseSQLiteDatabase(
    "sync",
    dialect,
    new BetterSQLiteSession(connection as never, dialect, undefined),
    undefined,
  );
}

/**
 * A migrated queue database as {@link withDb} gives it, and the application's own connection to the same
 * file, opened by `open` once the queue's schema is in place and closed when `fn` settles.
 */
async function withAppConnection<C extends { close(): void }>(
  open: (path: string) => C,
  fn: (db: QueueDatabase, connection: C, path: string) => Promise<void>,
): Promise<void> {
  await withDb(async (db, path) => {
    const connection = open(path);
    try {
      await fn(db, connection, path);
    } finally {
      connection.close();
    }
  });
}

function registry(): TaskHandlerRegistry {
  const handlers = new TaskHandlerRegistry();
  handlers.registerHandler(defineHandler({
    type: "welcome",
    schema: v.object({ email: v.pipe(v.string(), v.email()) }),
    handle: () => {},
  }));
  return handlers;
}

test("an enqueue inside db.transaction() without { tx } throws at once, and later enqueues work", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    const enqueueing = db.transaction(async () => {
      await queue.enqueue("x", {});
    });
    // Before, this never settled: a deadline turns a hang into a failure (20 s: a hang, not slowness).
    const error = await errorOf(within(20_000, "the transaction", enqueueing));
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /inside db\.transaction\(\).*pass \{ tx \}/s);
    // A read inside the transaction would wait on it too.
    assert.ok(await errorOf(db.transaction(() => queue.stats())) instanceof TypeError);
    await queue.enqueue("later", {});
    assert.deepEqual((await queue.list()).map((task) => task.type), ["later"]);
  }, { busyTimeoutMs: 1000 });
});

test("with PrismQ's own transaction, the task commits with the row, and rolls back with it", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db, { registry: registry() });
    await db.transaction((tx) => tx.execute(CREATE_USERS_SQL));
    await db.transaction(async (tx) => {
      await tx.execute("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
      await queue.enqueue("welcome", { email: "ada@example.com" }, { tx });
    });
    const thrown = await errorOf(db.transaction(async (tx) => {
      await tx.execute("INSERT INTO users (email) VALUES (?)", ["bob@example.com"]);
      await queue.enqueueMany([{ type: "welcome", payload: { email: "bob@example.com" } }], { tx });
      throw new Error("the signup failed");
    }));
    assert.equal(thrown.message, "the signup failed");
    const rows = await db.transaction((tx) => tx.execute("SELECT email FROM users"));
    assert.deepEqual(rows.rows.map((row) => row.email), ["ada@example.com"]);
    assert.deepEqual((await queue.list()).map((task) => task.payload), [{ email: "ada@example.com" }]);
  });
});

test("a task given with { tx } is validated as any enqueue, before anything is written", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db, { registry: registry(), maxPayloadBytes: 100 });
    await db.transaction(async (tx) => {
      const unknown = await errorOf(queue.enqueue("nope", {}, { tx }));
      assert.ok(unknown instanceof TaskHandlerNotRegisteredError);
      assert.match(unknown.message, /Registered types: \['welcome'\]/);
      assert.ok(
        await errorOf(queue.enqueue("welcome", { email: "x" }, { tx })) instanceof PayloadValidationError,
      );
      const big = { email: `${"a".repeat(200)}@example.com` };
      assert.ok(await errorOf(queue.enqueue("welcome", big, { tx })) instanceof PayloadTooLargeError);
      const misplaced = await errorOf(queue.enqueueMany([{ type: "welcome", tx } as never]));
      assert.match(misplaced.message, /pass it as enqueueMany\(items, \{ tx \}\)/);
    });
    assert.deepEqual(await queue.list(), []);
  });
});

test("idempotency keys, the detailed and the ids forms work through { tx }", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    const first = await queue.enqueue("a", { n: 1 }, { idempotencyKey: "k" });
    await db.transaction(async (tx) => {
      const detailed = await queue.enqueueManyDetailed([
        { type: "a", payload: { n: 2 }, idempotencyKey: "k" },
        { type: "b", payload: { n: 3 }, idempotencyKey: "new" },
        { type: "b", payload: { n: 4 }, idempotencyKey: "new" },
        { type: "c", payload: { n: 5 } },
      ], { tx });
      assert.deepEqual(detailed.map((result) => result.created), [false, true, false, true]);
      assert.equal(detailed[0].task.id, first.id);
      assert.deepEqual(detailed[0].task.payload, { n: 1 }, "the task that holds the key, as stored");
      assert.equal(detailed[2].task.id, detailed[1].task.id);
      assert.deepEqual(detailed[2].task.payload, { n: 3 });
      const ids = await queue.enqueueManyIds([{ type: "d" }, { type: "d" }], { tx });
      assert.deepEqual(ids.map((result) => result.created), [true, true]);
      assert.equal(ids[1].id, ids[0].id + 1);
    });
    assert.equal((await queue.list()).length, 5);
  });
});

test("a Drizzle app on the libSQL client writes its row and its task in one transaction; a worker in another process runs only the committed task", async () => {
  await withAppConnection((path) => createClient({ url: `file:${path}` }), async (db, client, path) => {
    const queue = new Queue(db, { registry: registry() });
    const app = drizzleLibsql(client);
    await app.run(CREATE_USERS);
    await app.transaction(async (tx) => {
      await tx.insert(users).values({ email: "ada@example.com" });
      await queue.enqueue("welcome", { email: "ada@example.com" }, { tx });
    });
    const thrown = await errorOf(app.transaction(async (tx) => {
      await tx.insert(users).values({ email: "bob@example.com" });
      await queue.enqueue("welcome", { email: "bob@example.com" }, { tx });
      throw new Error("the signup failed");
    }));
    assert.equal(thrown.message, "the signup failed");
    assert.deepEqual((await app.select().from(users)).map((row) => row.email), ["ada@example.com"]);
    const queued = await queue.list();
    assert.deepEqual(queued.map((task) => task.payload), [{ email: "ada@example.com" }]);

    const log = join(dirname(path), "ran.log");
    const worker = spawn(
      process.execPath,
      [
        "run",
        "-A",
        new URL("./fixtures/drain_worker.ts", import.meta.url).pathname,
        path,
        log,
        "w1",
        "2",
        "welcome",
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    worker.stdout!.once("data", () => worker.stdin!.end("go\n"));
    assert.equal(await new Promise((resolve) => worker.on("exit", resolve)), 0);
    assert.deepEqual(readFileSync(log, "utf8").trim().split("\n").map(Number), [queued[0].id]);
    assert.equal((await queue.get(queued[0].id))?.status, "completed");
  });
});

test("a Drizzle app on the synchronous libsql driver enqueues with enqueueSync inside its transaction", async () => {
  await withAppConnection((path) => new Database(path), async (db, connection) => {
    const queue = new Queue(db, { registry: registry() });
    const app = drizzleSync(connection);
    app.run(CREATE_USERS);
    app.transaction((tx) => {
      tx.insert(users).values({ email: "ada@example.com" }).run();
      queue.enqueueSync("welcome", { email: "ada@example.com" }, { tx });
    });
    assert.throws(
      () =>
        app.transaction((tx) => {
          tx.insert(users).values({ email: "bob@example.com" }).run();
          queue.enqueueSync("welcome", { email: "not an address" }, { tx });
        }),
      PayloadValidationError,
    );
    assert.deepEqual(app.select().from(users).all().map((row) => row.email), ["ada@example.com"]);
    assert.deepEqual((await queue.list()).map((task) => task.payload), [{ email: "ada@example.com" }]);
    // An awaited enqueue would land after a synchronous transaction commits: refused, pointing to enqueueSync.
    let refused!: Promise<unknown>;
    app.transaction((tx) => {
      refused = queue.enqueue("welcome", { email: "cy@example.com" }, { tx });
    });
    assert.match((await errorOf(refused)).message, /Use queue\.enqueueSync/);
    assert.equal((await queue.list()).length, 1);
  });
});

test("a Drizzle app over node:sqlite (through the sqlite-proxy driver) enqueues in its transaction", async (t) => {
  let sqlite: typeof import("node:sqlite");
  try {
    sqlite = await import("node:sqlite");
  } catch {
    return t.skip("this runtime has no node:sqlite (Node 22.5 and newer, Deno and Bun have it)");
  }
  await withAppConnection((path) => new sqlite.DatabaseSync(path), async (db, connection) => {
    const queue = new Queue(db);
    // The proxy's contract: rows as arrays of values.
    const app = drizzleProxy((text, params, method) => {
      const statement = connection.prepare(text);
      if (method === "run") return Promise.resolve({ rows: (statement.run(...params as never[]), []) });
      const rows = statement.all(...params as never[]).map((row) => Object.values(row as object));
      return Promise.resolve({ rows: method === "get" ? rows[0] : rows });
    });
    await app.run(CREATE_USERS);
    connection.exec("BEGIN IMMEDIATE");
    await app.insert(users).values({ email: "ada@example.com" });
    await queue.enqueue("welcome", { email: "ada@example.com" }, { tx: app });
    connection.exec("ROLLBACK");
    assert.deepEqual(await queue.list(), [], "rolled back with the application's row");
    connection.exec("BEGIN IMMEDIATE");
    await app.insert(users).values({ email: "bob@example.com" });
    const task = await queue.enqueue("welcome", { email: "bob@example.com" }, { tx: app });
    connection.exec("COMMIT");
    assert.equal((await queue.get(task.id))?.status, "queued");
    assert.deepEqual((await app.select().from(users).where(eq(users.email, "bob@example.com"))).length, 1);
  });
});

test("a tx that is not a transaction on the queue's database is refused, naming what to pass", async () => {
  const { dir, remove } = makeTempDir();
  const db = new QueueDatabase(join(dir, "queue.db"));
  const other = createClient({ url: `file:${join(dir, "other.db")}` });
  const memory = new QueueDatabase(":memory:");
  const elsewhere = new QueueDatabase(join(dir, "elsewhere.db"));
  try {
    await db.initializeSchema();
    await memory.initializeSchema();
    await elsewhere.initializeSchema();
    const queue = new Queue(db);
    const wrongFile = await errorOf(queue.enqueue("a", {}, { tx: drizzleLibsql(other) }));
    assert.match(wrongFile.message, /writes to '.*other\.db', not to the queue's database/);
    const inMemory = await errorOf(new Queue(memory).enqueue("a", {}, { tx: drizzleLibsql(other) }));
    assert.match(inMemory.message, /in-memory queue cannot share a transaction/);
    const foreign = await errorOf(queue.enqueue("a", {}, { tx: {} as never }));
    assert.match(foreign.message, /tx must be the handle PrismQ's db\.transaction\(\) gives/);
    await elsewhere.transaction(async (tx) => {
      const mixed = await errorOf(queue.enqueue("a", {}, { tx }));
      assert.match(mixed.message, /belongs to another database's transaction/);
    });
    assert.throws(
      () => queue.enqueueSync("a", {}, { tx: drizzleLibsql(other) }),
      /enqueueSync needs a synchronous/,
    );
    assert.deepEqual(await queue.list(), []);
  } finally {
    other.close();
    await memory.close();
    await elsewhere.close();
    await db.close();
    remove();
  }
});

test("enqueueSync with dependsOn inside a synchronous Drizzle transaction: waits, or refuses a missing one and rolls back", async () => {
  await withAppConnection((path) => new Database(path), async (db, connection) => {
    const queue = new Queue(db, { registry: registry() });
    const first = await queue.enqueue("welcome", { email: "ada@example.com" });
    const app = drizzleSync(connection);
    app.run(CREATE_USERS);
    let waiting!: Task;
    app.transaction((tx) => {
      tx.insert(users).values({ email: "bob@example.com" }).run();
      waiting = queue.enqueueSync("welcome", { email: "bob@example.com" }, { tx, dependsOn: [first.id] });
    });
    assert.equal(waiting.status, "waiting");
    assert.equal((await queue.get(waiting.id))?.status, "waiting");
    assert.throws(
      () =>
        app.transaction((tx) => {
          tx.insert(users).values({ email: "cy@example.com" }).run();
          queue.enqueueSync("welcome", { email: "cy@example.com" }, { tx, dependsOn: [424242] });
        }),
      DependencyError,
    );
    assert.deepEqual(app.select().from(users).all().map((row) => row.email), ["bob@example.com"]);
    assert.equal((await queue.list()).length, 2);
  });
});
