/**
 * The Drizzle schema and the SQL migrations describe the same tables, columns and indexes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getTableConfig, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { migrationsTable, taskLogs, taskQueue, workers } from "../src/store/sqlite/schema.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";
import { join } from "node:path";
import Database from "libsql";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, withDb } from "./_helpers.ts";

const TABLES: SQLiteTable[] = [taskQueue, workers, taskLogs, migrationsTable];

test("every table's columns match the Drizzle schema: names, types, NOT NULL, primary keys", async () => {
  await withDb(async (db) => {
    for (const table of TABLES) {
      const config = getTableConfig(table);
      const actual = await db.transaction(async (tx) =>
        (await tx.execute(`PRAGMA table_info(${config.name})`)).rows
      );
      const describe = (name: string, type: string, notNull: boolean, pk: boolean) =>
        `${name} ${type.toUpperCase()}${notNull ? " NOT NULL" : ""}${pk ? " PRIMARY KEY" : ""}`;
      assert.deepEqual(
        actual.map((c) =>
          describe(String(c.name), String(c.type), Number(c.notnull) === 1, Number(c.pk) === 1)
        ),
        config.columns.map((c) => describe(c.name, c.getSQLType(), c.notNull && !c.primary, c.primary)),
        config.name,
      );
    }
  });
});

test("every index in the Drizzle schema exists, with the same columns and uniqueness", async () => {
  await withDb(async (db) => {
    for (const table of TABLES) {
      const config = getTableConfig(table);
      const actual = await db.transaction(async (tx) => {
        const list = (await tx.execute(`PRAGMA index_list(${config.name})`)).rows.filter((i) =>
          i.origin === "c"
        );
        return Promise.all(list.map(async (index) => {
          const columns = (await tx.execute(`PRAGMA index_info(${index.name})`)).rows.map((c) => c.name);
          return `${index.name}${Number(index.unique) ? " UNIQUE" : ""} (${columns.join(", ")})`;
        }));
      });
      const expected = config.indexes.map((index) => {
        const columns = index.config.columns.map((c) => (c as { name: string }).name);
        return `${index.config.name}${index.config.unique ? " UNIQUE" : ""} (${columns.join(", ")})`;
      });
      assert.deepEqual(actual.sort(), expected.sort(), config.name);
    }
  });
});

test("migrations are numbered from 1 without gaps and recorded once applied", async () => {
  assert.deepEqual(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1));
  await withDb(async (db) => {
    await db.initializeSchema();
    const rows = await db.transaction(async (tx) =>
      (await tx.execute("SELECT version FROM prismq_migrations")).rows
    );
    assert.deepEqual(rows.map((r) => Number(r.version)), MIGRATIONS.map((m) => m.version));
  });
});

test("a database made before migration 2 gets the claim index with the due time, and keeps its tasks", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "old.db");
  try {
    // The schema as migration 1 alone left it, with a queued task and the fifo/lifo index a worker made.
    const old = new Database(path);
    old.exec(
      "CREATE TABLE prismq_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    );
    old.exec(MIGRATIONS[0].sql);
    old.exec("CREATE INDEX task_queue_queued_id ON task_queue (id) WHERE status = 'queued'");
    old.exec("INSERT INTO prismq_migrations VALUES (1, 'initial', 0)");
    old.exec("INSERT INTO task_queue (type, payload, run_after) VALUES ('a', '{}', 0)");
    old.close();

    const db = new QueueDatabase(path);
    try {
      await db.initializeSchema();
      const indexes = await db.transaction(async (tx) =>
        (await tx.execute(
          "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND name LIKE 'task_queue_queued%'",
        ))
          .rows
      );
      assert.deepEqual(indexes.map((row) => String(row.name)), ["task_queue_queued_priority"]);
      assert.match(String(indexes[0].sql), /\(priority, run_after, id\)/);
      const [task] = await new Queue(db).list();
      assert.equal(task?.type, "a");
    } finally {
      db.close();
    }
  } finally {
    remove();
  }
});
