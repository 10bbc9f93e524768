/**
 * The Drizzle schema and the SQL migrations describe the same tables, columns and indexes: the schema is
 * written once, in src/store/sqlite/schema.ts, and the migrations, which never change once shipped, must
 * build exactly it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { SQL } from "drizzle-orm";
import {
  getTableConfig,
  type SQLiteColumn,
  SQLiteSyncDialect,
  type SQLiteTable,
} from "drizzle-orm/sqlite-core";
import {
  metricCounts,
  metricRollup,
  migrationsTable,
  queues,
  schedules,
  STRICT_TABLES,
  taskDependencies,
  taskLogs,
  taskQueue,
  workers,
} from "../src/store/sqlite/schema.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";
import { join } from "node:path";
import Database from "libsql";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, withDb } from "./_helpers.ts";
import type { SqlTransaction } from "../src/store/store.ts";

const TABLES: SQLiteTable[] = [
  taskQueue,
  workers,
  taskLogs,
  schedules,
  queues,
  taskDependencies,
  metricCounts,
  metricRollup,
  migrationsTable,
];

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

// ---- The whole definition, column by column ----

const dialect = new SQLiteSyncDialect();

/** SQL text with its spacing made canonical, and one pair of parentheses around all of it removed. */
function canonical(text: string): string {
  const squashed = text.replace(/\s+/g, " ").replace(/\( /g, "(").replace(/ \)/g, ")").trim();
  return squashed.startsWith("(") && closingParen(squashed, 0) === squashed.length - 1
    ? canonical(squashed.slice(1, -1))
    : squashed;
}

/** Drizzle SQL as text; the schema's conditions are plain text, with nothing bound. */
function textOf(query: SQL): string {
  const { sql: text, params } = dialect.sqlToQuery(query);
  assert.deepEqual(params, [], `a condition in the schema binds values: ${text}`);
  return text;
}

/** Where the parenthesis opened at `open` closes, skipping quoted text. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in ${text}`);
}

/** The column definitions and table constraints of a CREATE TABLE statement, each as its text. */
function tableItems(create: string): string[] {
  const open = create.indexOf("(");
  const close = closingParen(create, open);
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = open + 1;
  for (let i = open + 1; i < close; i++) {
    const c = create[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      items.push(create.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(create.slice(start, close).trim());
  return items;
}

/** The conditions of the CHECK constraints in one item of a CREATE TABLE. */
function checksIn(item: string): string[] {
  return [...item.matchAll(/\bCHECK\s*\(/gi)].map((match) => {
    const open = match.index! + match[0].length - 1;
    return canonical(item.slice(open + 1, closingParen(item, open)));
  });
}

interface TableShape {
  columns: string[];
  tableChecks: string[];
  strict: boolean;
  indexConditions: string[];
}

/** A table as its Drizzle definition describes it, in the words {@link migratedShape} uses. */
function drizzleShape(table: SQLiteTable): TableShape {
  const config = getTableConfig(table);
  const columnNames = new Set(config.columns.map((column) => column.name));
  const checksOf = (name: string) =>
    config.checks.filter((check) => check.name === name).map((check) => canonical(textOf(check.value)));
  const reference = (column: SQLiteColumn) => {
    const key = config.foreignKeys.find((fk) => fk.reference().columns.some((c) => c.name === column.name));
    if (!key) return [];
    const { foreignTable, foreignColumns } = key.reference();
    return [
      `REFERENCES ${getTableConfig(foreignTable).name} (${foreignColumns.map((c) => c.name).join(", ")})`,
      `ON UPDATE ${(key.onUpdate ?? "no action").toUpperCase()}`,
      `ON DELETE ${(key.onDelete ?? "no action").toUpperCase()}`,
    ];
  };
  const defaultOf = (value: unknown) =>
    typeof value === "string"
      ? `'${value.replaceAll("'", "''")}'`
      : typeof value === "number"
      ? String(value)
      : textOf(value as SQL);
  return {
    columns: config.columns.map((column) =>
      [
        column.name,
        column.getSQLType().toUpperCase(),
        ...(column.notNull && !column.primary ? ["NOT NULL"] : []),
        ...(column.primary ? ["PRIMARY KEY"] : []),
        ...((column as { autoIncrement?: boolean }).autoIncrement ? ["AUTOINCREMENT"] : []),
        ...(column.default !== undefined ? [`DEFAULT ${canonical(defaultOf(column.default))}`] : []),
        ...reference(column),
        ...checksOf(column.name).map((check) => `CHECK (${check})`),
      ].join(" ")
    ),
    tableChecks: config.checks.filter((check) => !columnNames.has(check.name))
      .map((check) => canonical(textOf(check.value))).sort(),
    strict: STRICT_TABLES.includes(table),
    indexConditions: config.indexes.map((index) =>
      `${index.config.name} WHERE ${index.config.where ? canonical(textOf(index.config.where)) : "-"}`
    ).sort(),
  };
}

/** A table as a migrated database has it: PRAGMAs, and the CREATE statements it keeps. */
async function migratedShape(tx: SqlTransaction, name: string): Promise<TableShape> {
  const rows = async (query: string) => (await tx.execute(query)).rows;
  const [{ sql: create }] = await rows(
    `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '${name}'`,
  );
  const items = tableItems(String(create));
  const itemOf = (column: string) =>
    items.find((item) => item.split(/\s+/)[0]!.replace(/"/g, "") === column)!;
  const keys = await rows(`PRAGMA foreign_key_list(${name})`);
  const [listed] = await rows(`PRAGMA table_list(${name})`);
  const indexes = (await rows(`PRAGMA index_list(${name})`)).filter((index) => index.origin === "c");
  return {
    columns: (await rows(`PRAGMA table_xinfo(${name})`)).map((column) => {
      const item = itemOf(String(column.name));
      const key = keys.find((fk) => fk.from === column.name);
      return [
        String(column.name),
        String(column.type).toUpperCase(),
        ...(Number(column.notnull) === 1 ? ["NOT NULL"] : []),
        ...(Number(column.pk) === 1 ? ["PRIMARY KEY"] : []),
        ...(/\bAUTOINCREMENT\b/i.test(item) ? ["AUTOINCREMENT"] : []),
        ...(column.dflt_value === null ? [] : [`DEFAULT ${canonical(String(column.dflt_value))}`]),
        ...(key
          ? [
            `REFERENCES ${key.table} (${key.to})`,
            `ON UPDATE ${key.on_update}`,
            `ON DELETE ${key.on_delete}`,
          ]
          : []),
        ...checksIn(item).map((check) => `CHECK (${check})`),
      ].join(" ");
    }),
    tableChecks: items.filter((item) => /^(CHECK|CONSTRAINT)\b/i.test(item)).flatMap(checksIn).sort(),
    strict: Number(listed?.strict) === 1,
    indexConditions: await Promise.all(indexes.map(async (index) => {
      const [{ sql: text }] = await rows(`SELECT sql FROM sqlite_schema WHERE name = '${index.name}'`);
      const where = /\bWHERE\b([\s\S]*)$/i.exec(String(text))?.[1];
      return `${index.name} WHERE ${where === undefined ? "-" : canonical(where)}`;
    })).then((list) => list.sort()),
  };
}

test("the migrated database is the Drizzle schema, column by column: defaults, references, CHECKs, STRICT, index conditions", async () => {
  await withDb(async (db) => {
    for (const table of TABLES) {
      const name = getTableConfig(table).name;
      const migrated = await db.transaction((tx) => migratedShape(tx, name));
      assert.deepEqual(migrated, drizzleShape(table), name);
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
      assert.deepEqual(indexes.map((row) => String(row.name)).sort(), [
        "task_queue_queued_priority",
        "task_queue_queued_queue",
      ]);
      // With the queue last since migration 8; and one led by the queue since migration 12.
      const sqlOf = (name: string) => String(indexes.find((row) => row.name === name)!.sql);
      assert.match(sqlOf("task_queue_queued_priority"), /\(priority, run_after, id, queue\)/);
      assert.match(sqlOf("task_queue_queued_queue"), /\(queue, priority, run_after, id\)/);
      const [task] = await new Queue(db).list();
      assert.equal(task?.type, "a");
      assert.equal(task?.queue, "default", "a task made before named queues is in the default queue");
    } finally {
      await db.close();
    }
  } finally {
    remove();
  }
});

test("migration 10 (dependencies) rebuilds the tasks table keeping every task, log line and log id", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "before_dependencies.db");
  try {
    // The schema as migrations 1 to 8 left it: a task, three log lines of which the last was deleted.
    const old = new Database(path);
    old.exec(
      "CREATE TABLE prismq_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    );
    for (const migration of MIGRATIONS.filter((m) => m.version <= 8)) {
      old.exec(migration.sql);
      old.prepare("INSERT INTO prismq_migrations VALUES (?, ?, 0)").run(migration.version, migration.name);
    }
    old.exec(
      "INSERT INTO task_queue (type, payload, run_after, queue, result) VALUES ('a', '{\"n\":1}', 0, 'q', '7')",
    );
    old.exec(
      "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 1, 'info', 'one'), (1, 2, 'warn', 'two')",
    );
    old.exec("INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 3, 'info', 'three')");
    old.exec("DELETE FROM task_logs WHERE message = 'three'");
    old.close();

    const db = new QueueDatabase(path);
    try {
      await db.initializeSchema();
      const queue = new Queue(db);
      const [task] = await queue.list();
      assert.deepEqual([task?.type, task?.payload, task?.queue, task?.result], ["a", { n: 1 }, "q", 7]);
      assert.deepEqual((await queue.logs(1)).map((log) => [log.id, log.message]), [[1, "one"], [2, "two"]]);
      // A log line deleted before keeps its id from being given again.
      const next = await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 4, 'info', 'four')");
        return (await tx.execute("SELECT max(id) AS id FROM task_logs")).rows[0]!.id;
      });
      assert.equal(Number(next), 4);
      const waiting = await queue.enqueue("b", {}, { dependsOn: [1] });
      assert.equal(waiting.status, "waiting", "the new status is allowed");
    } finally {
      await db.close();
    }
  } finally {
    remove();
  }
});
