/**
 * Enqueue: the INSERTs of new tasks on the queue's own connection. One task is one prepared INSERT; many
 * go in as one JSON parameter read with `json_each`, in chunks, in one transaction; tasks that differ only
 * in their payloads (the usual bulk enqueue) bind the shared columns once. Every column list comes from
 * {@link INSERT_KEYS}.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import { DatabaseError } from "../../../errors.ts";
import type { Task } from "../../../task.ts";
import type { InsertedTask, NewTask } from "../../store.ts";
import {
  INSERT_KEYS,
  insertColumns,
  insertFields,
  insertRow,
  TASK_JSON,
  type TaskJsonRow,
  toTask,
} from "../columns.ts";
import type { Connection } from "../connection.ts";
import type { SqlStatement, SqlValue } from "../driver.ts";
import { all, batch, compile, p, PreparedSql } from "../sql.ts";

/** Rows per INSERT statement, to keep one statement's memory modest. */
const INSERT_CHUNK = 5000;

/** The columns of a task without an idempotency key, which then stays null. */
const UNKEYED = INSERT_KEYS.filter((key) => key !== "idempotencyKey");
/** What tasks inserted by {@link INSERT_UNIFORM} share: everything but their payloads. */
const SHARED = UNKEYED.filter((key) => key !== "payload");

/** The one-task insert, as fixed text so that the driver's prepared statement is reused. */
const INSERT_ONE = compile(sql`
  INSERT INTO task_queue (${insertColumns(INSERT_KEYS)})
  VALUES (${sql.raw(Array(INSERT_KEYS.length + 2).fill("?").join(", "))})
  ON CONFLICT DO NOTHING`).sql;

const INSERT_UNKEYED = new PreparedSql(sql`
  INSERT INTO task_queue (${insertColumns(UNKEYED)})
  SELECT ${insertFields(UNKEYED)}, ${p("now")}, ${p("now")}
  FROM json_each(${p("rows")})`);

/**
 * {@link INSERT_UNKEYED} for tasks that differ only in their payloads, the usual bulk enqueue: the other
 * columns are bound once, and SQLite reads one string per row instead of seven fields of an array.
 */
const INSERT_UNIFORM = new PreparedSql(sql`
  INSERT INTO task_queue (${insertColumns(UNKEYED)})
  SELECT ${sql.join(UNKEYED.map((key) => key === "payload" ? sql`value` : p(key)), sql`, `)},
    ${p("now")}, ${p("now")}
  FROM json_each(${p("payloads")})`);

/**
 * Inserts `rows` (JSON, an array of {@link insertRow}s) skipping those whose idempotency key is taken, and
 * returns `returning` of the rows inserted. No conflict target: the idempotency key is the only unique
 * column an insert can collide on. (`WHERE true` tells SQLite's parser that ON CONFLICT belongs to the
 * INSERT.)
 */
export function keyedInsert(rows: string, now: number, returning: SQL): SQL {
  return sql`
    INSERT INTO task_queue (${insertColumns(INSERT_KEYS)})
    SELECT ${insertFields(INSERT_KEYS)}, ${now}, ${now}
    FROM json_each(${rows}) WHERE true
    ON CONFLICT DO NOTHING
    RETURNING ${returning}`;
}

/**
 * Whether the tasks differ in nothing but their payloads (none has an idempotency key). Written out column
 * by column: comparing by key, over {@link SHARED}, costs twelve times as much (85 ns a task against 7,
 * 4 % of a bulk enqueue). tests/columns_test.ts fails when a column of {@link SHARED} is missing here.
 */
function uniform(tasks: readonly NewTask[]): boolean {
  const first = tasks[0]!;
  return tasks.every((task) =>
    task.type === first.type && task.priority === first.priority && task.maxAttempts === first.maxAttempts &&
    task.runAfter === first.runAfter && task.timeoutMs === first.timeoutMs &&
    task.retryPolicy === first.retryPolicy && task.queue === first.queue
  );
}

/** The statement that inserts `chunk`, tasks without idempotency keys. */
function insertUnkeyed(chunk: readonly NewTask[], now: number): SqlStatement {
  if (!uniform(chunk)) return INSERT_UNKEYED.bind({ now, rows: JSON.stringify(chunk.map(insertRow)) });
  const first = chunk[0]!;
  return INSERT_UNIFORM.bind({
    ...Object.fromEntries(SHARED.map((key) => [key, first[key]])),
    now,
    // Each payload is JSON text already, so this is an array of strings, which json_each gives back as is.
    payloads: JSON.stringify(chunk.map((task) => task.payload)),
  });
}

function chunksOf(tasks: readonly NewTask[]): NewTask[][] {
  const chunks = [];
  for (let i = 0; i < tasks.length; i += INSERT_CHUNK) chunks.push(tasks.slice(i, i + INSERT_CHUNK));
  return chunks;
}

/** Inserts `tasks`, all or none; a task whose idempotency key is taken gets the task that holds it. */
export async function insertMany(
  conn: Connection,
  tasks: readonly NewTask[],
  now: number,
): Promise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  if (tasks.length === 1) return [await insertOne(conn, tasks[0]!, now)];
  const keys = [...new Set(tasks.flatMap((task) => task.idempotencyKey ?? []))];
  if (keys.length === 0) return await insertManyUnkeyed(conn, tasks, now);
  const inserts = chunksOf(tasks).map((chunk) =>
    keyedInsert(JSON.stringify(chunk.map(insertRow)), now, sql`id, idempotency_key AS "idempotencyKey"`)
  );
  const keyed = [
    sql`
      SELECT ${TASK_JSON} FROM task_queue
      WHERE idempotency_key IN (SELECT value FROM json_each(${JSON.stringify(keys)}))`,
  ];
  // One transaction: every task goes in, or none does.
  const results = await batch(conn, [...inserts, ...keyed]);
  const inserted = (results.slice(0, inserts.length) as { id: number; idempotencyKey: string | null }[][])
    .flat();
  const byKey = new Map<string, Task>();
  for (const row of (keyed.length ? results[results.length - 1] : []) as TaskJsonRow[]) {
    const task = toTask(row);
    byKey.set(task.idempotencyKey!, task);
  }
  const createdKeys = new Set(inserted.flatMap((row) => row.idempotencyKey ?? []));
  // SQLite returns inserted rows in no promised order, but ids grow in insertion order.
  const unkeyedIds = inserted.filter((row) => row.idempotencyKey === null).map((row) => Number(row.id))
    .sort((a, b) => a - b);
  let nextUnkeyed = 0;
  return tasks.map((task) => {
    if (task.idempotencyKey === null) return { id: unkeyedIds[nextUnkeyed++]!, created: true };
    const stored = byKey.get(task.idempotencyKey)!;
    // Only the first of several tasks with one key in this call created it.
    return createdKeys.delete(task.idempotencyKey)
      ? { id: stored.id, created: true }
      : { id: stored.id, created: false, existing: stored };
  });
}

/**
 * Tasks without idempotency keys: nothing can conflict, so every row goes in and the ids need not be
 * read back. SQLite numbers a row one past the largest id (there is no AUTOINCREMENT), so the rows of
 * one INSERT, which holds the write lock, get consecutive ids ending at the last inserted one.
 */
async function insertManyUnkeyed(
  conn: Connection,
  tasks: readonly NewTask[],
  now: number,
): Promise<InsertedTask[]> {
  const chunks = chunksOf(tasks);
  const results = await conn.batch(chunks.map((chunk) => insertUnkeyed(chunk, now)));
  const inserted: InsertedTask[] = [];
  chunks.forEach((chunk, i) => {
    const first = results[i]!.lastInsertRowid! - chunk.length + 1;
    for (let j = 0; j < chunk.length; j++) inserted.push({ id: first + j, created: true });
  });
  return inserted;
}

/**
 * One task in one statement: the common enqueue, kept to a single prepared INSERT, which runs at once and
 * answers without a promise when the database is free. The new row's id is SQLite's last insert rowid,
 * cheaper than `RETURNING`; an insert that changed nothing met a taken idempotency key.
 */
export function insertOne(
  conn: Connection,
  task: NewTask,
  now: number,
): InsertedTask | Promise<InsertedTask> {
  const statement = { sql: INSERT_ONE, args: oneRow(task, now) };
  let result;
  try {
    result = conn.executeIfFree(statement);
  } catch (error) {
    return Promise.reject(error);
  }
  if (result === undefined) return insertOneLater(conn, statement, task, false);
  if (result.rowsAffected === 1) return { id: result.lastInsertRowid!, created: true };
  return insertOneLater(conn, statement, task, true);
}

/** {@link insertOne} when the database was busy (`tried` false), or the key was taken (true). */
async function insertOneLater(
  conn: Connection,
  statement: SqlStatement,
  task: NewTask,
  tried: boolean,
): Promise<InsertedTask> {
  for (;;) {
    if (!tried) {
      const { rowsAffected, lastInsertRowid } = await conn.execute(statement);
      if (rowsAffected === 1) return { id: lastInsertRowid!, created: true };
    }
    tried = false;
    if (task.idempotencyKey === null) {
      // Nothing but a key can make this insert do nothing, unless something outside PrismQ (a trigger)
      // discards it: say so rather than try forever.
      throw new DatabaseError(
        "A task was not inserted, and no idempotency key explains why: something in the database (a trigger?) " +
          "discarded the row.",
      );
    }
    // The key is taken: the task holding it is the answer (unless it was purged meanwhile: try again).
    const [existing] = await all<TaskJsonRow>(
      conn,
      sql`SELECT ${TASK_JSON} FROM task_queue WHERE idempotency_key = ${task.idempotencyKey}`,
    );
    if (existing) {
      const stored = toTask(existing);
      return { id: stored.id, created: false, existing: stored };
    }
  }
}

/** {@link insertRow} and the two times, in one array. */
function oneRow(task: NewTask, now: number): SqlValue[] {
  const row = insertRow(task);
  row.push(now, now);
  return row;
}
