/**
 * `QueueDatabase.transaction` on a file: all of it is committed or none of it, even when SQLite itself ends
 * the transaction early or refuses the COMMIT, and the connection is clean for the next write either way.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import Database from "libsql";
import { Queue } from "../mod.ts";
import { rejectionOf, withDb } from "./_helpers.ts";

test("a transaction SQLite rolled back early refuses the rest and commits nothing", async () => {
  await withDb(async (db) => {
    await db.transaction((tx) =>
      tx.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    );
    await db.transaction((tx) => tx.execute("INSERT INTO account (name) VALUES ('ada')"));
    const error = await rejectionOf(db.transaction(async (tx) => {
      await tx.execute("INSERT INTO task_queue (type) VALUES ('welcome')");
      // The conflict makes SQLite roll back the whole transaction, the first insert with it.
      await assert.rejects(tx.execute("INSERT OR ROLLBACK INTO account (name) VALUES ('ada')"), /UNIQUE/);
      await tx.execute("INSERT INTO task_queue (type) VALUES ('audit')");
    }));
    assert.match((error as Error).message, /transaction has ended/);
    assert.deepEqual(await new Queue(db).list(), [], "neither insert was committed");
    await new Queue(db).enqueue("after", {});
    assert.deepEqual((await new Queue(db).list()).map((t) => t.type), ["after"]);
  });
});

test("a refused COMMIT rolls the transaction back, and later writes commit and release the lock", async () => {
  await withDb(async (db, path) => {
    await db.transaction(async (tx) => {
      await tx.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
      await tx.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, " +
          "parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
      );
    });
    // A deferred foreign key is checked at COMMIT, which therefore fails.
    const error = await rejectionOf(
      db.transaction((tx) => tx.execute("INSERT INTO child (parent_id) VALUES (42)")),
    );
    assert.match((error as Error).message, /FOREIGN KEY/);
    const task = await new Queue(db).enqueue("after", {});
    const other = new Database(path);
    try {
      const row = other.prepare("SELECT count(*) AS n FROM task_queue WHERE id = ?").get(task.id) as {
        n: number;
      };
      assert.equal(row.n, 1, "another connection sees the later write: it was committed");
      other.exec("BEGIN IMMEDIATE"); // and the write lock is free
      other.exec("ROLLBACK");
      const children = other.prepare("SELECT count(*) AS n FROM child").get() as { n: number };
      assert.equal(children.n, 0, "the refused transaction left nothing");
    } finally {
      other.close();
    }
  });
});
