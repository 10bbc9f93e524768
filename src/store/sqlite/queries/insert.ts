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
import type { InsertedTask, NewTask } from "../../store.ts";
import {
  type CreatedRow,
  creatorsOf,
  hasKey,
  holderGone,
  type KeyHolder,
  outcomesOf,
  uniqueKeysOf,
} from "../../inserted.ts";
import {
  INSERT_KEYS,
  insertColumns,
  insertFields,
  type InsertKey,
  insertRow,
  TASK_JSON,
  toTask,
} from "../columns.ts";
import type { Connection } from "../connection.ts";
import type { SqlStatement, SqlValue } from "../driver.ts";
import { all, batch, compile, p, PreparedSql } from "../sql.ts";

/** Rows per INSERT statement, to keep one statement's memory modest. */
const INSERT_CHUNK = 5000;

/** The columns of a task without keys (idempotency or `unique`), which then stay null. */
const KEY_COLUMNS: readonly string[] = ["idempotencyKey", "uniqueKey"];
const UNKEYED = INSERT_KEYS.filter((key) => !KEY_COLUMNS.includes(key));
/** What tasks inserted by {@link INSERT_UNIFORM} share: everything but their payloads. */
const SHARED = UNKEYED.filter((key) => key !== "payload");

/** The one-task insert of `keys`, as fixed text so that the driver's prepared statement is reused. */
function insertOneOf(keys: readonly InsertKey[]): string {
  return compile(sql`
    INSERT INTO task_queue (${insertColumns(keys)})
    VALUES (${sql.raw(Array(keys.length + 2).fill("?").join(", "))})
    ON CONFLICT DO NOTHING`).sql;
}

/**
 * The columns of a task without a `unique` key, the usual one: its insert binds two values fewer, which
 * the single enqueue, a few tens of microseconds, notices.
 */
const WITHOUT_UNIQUE = INSERT_KEYS.filter((key) => key !== "uniqueKey" && key !== "uniqueForMs");
const INSERT_ONE = insertOneOf(INSERT_KEYS);
const INSERT_ONE_WITHOUT_UNIQUE = insertOneOf(WITHOUT_UNIQUE);

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
 * Inserts `rows` (JSON, an array of {@link insertRow}s) skipping those whose idempotency key is taken or
 * whose `unique` key is held, and returns `returning` of the rows inserted. No conflict target: the two keys
 * are the only unique columns an insert can collide on. (`WHERE true` tells SQLite's parser that ON CONFLICT
 * belongs to the INSERT.)
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
    task.retryPolicy === first.retryPolicy && task.queue === first.queue &&
    task.uniqueForMs === first.uniqueForMs
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

/** What a keyed insert returns of each row it created. */
export const CREATED_ROW = sql`id, idempotency_key AS "idempotencyKey", unique_key AS "uniqueKey"`;

/**
 * Releases the `unique` keys among `keys` whose windows are over at `now`: their holders leave the unique
 * index, so that the insert that follows in the same transaction may take them. Each write holds SQLite's
 * one write lock, so no other insert comes between the two. It returns the ids it released, for the
 * drivers that run an application's statements only as queries with rows.
 */
export function releaseExpired(keys: readonly string[], now: number): SQL {
  return sql`
    UPDATE task_queue SET unique_released_at = ${now}
    WHERE unique_key IN (SELECT value FROM json_each(${JSON.stringify(keys)})) AND unique_key IS NOT NULL
      AND unique_released_at IS NULL AND unique_for_ms IS NOT NULL AND created_at + unique_for_ms <= ${now}
    RETURNING id`;
}

/**
 * The tasks that hold these idempotency keys and these `unique` keys now, each with the kind of key it
 * holds, as {@link TASK_JSON} and `matched`. The second condition is the unique index's own, spelled alike
 * so that the planner reads the index.
 */
export function holdersOf(idempotencyKeys: readonly string[], uniqueKeys: readonly string[]): SQL {
  return sql`
    SELECT ${TASK_JSON}, 'idempotencyKey' AS matched FROM task_queue
    WHERE idempotency_key IN (SELECT value FROM json_each(${JSON.stringify(idempotencyKeys)}))
    UNION ALL
    SELECT ${TASK_JSON}, 'unique' AS matched FROM task_queue
    WHERE unique_key IN (SELECT value FROM json_each(${JSON.stringify(uniqueKeys)}))
      AND unique_key IS NOT NULL AND unique_released_at IS NULL
      AND (unique_for_ms IS NOT NULL OR status = 'waiting' OR status = 'queued' OR status = 'running')`;
}

/** Rows of {@link holdersOf} as key holders. */
export function keyHolders(rows: readonly { task: string; matched: string }[]): KeyHolder[] {
  return rows.map((row) => ({ task: toTask(row), matched: row.matched as KeyHolder["matched"] }));
}

/**
 * Inserts `tasks`, all or none; a task whose idempotency key is taken, or whose `unique` key is held, gets
 * the task that holds it.
 */
export async function insertMany(
  conn: Connection,
  tasks: readonly NewTask[],
  now: number,
): Promise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  if (tasks.length === 1) return [await insertOne(conn, tasks[0]!, now)];
  if (!tasks.some(hasKey)) return await insertManyUnkeyed(conn, tasks, now);
  const uniqueKeys = uniqueKeysOf(tasks);
  const release = uniqueKeys.length === 0 ? [] : [releaseExpired(uniqueKeys, now)];
  const inserts = chunksOf(tasks).map((chunk) =>
    keyedInsert(JSON.stringify(chunk.map(insertRow)), now, CREATED_ROW)
  );
  const idempotencyKeys = [...new Set(tasks.flatMap((task) => task.idempotencyKey ?? []))];
  // One transaction, under the write lock throughout: every task goes in, or none does, and the holders read
  // at its end are the ones the inserts met.
  const results = await batch(conn, [...release, ...inserts, holdersOf(idempotencyKeys, uniqueKeys)]);
  const created = (results.slice(release.length, -1) as unknown as CreatedRow[][]).flat()
    .map((row) => ({ ...row, id: Number(row.id) }));
  const creators = creatorsOf(tasks, created);
  const holders = keyHolders(results[results.length - 1] as { task: string; matched: string }[]);
  // Under the write lock, a holder cannot go away between the inserts and the read.
  return outcomesOf(tasks, creators, holders).map((outcome, i) => {
    if (!outcome) throw holderGone(tasks[i]!);
    return outcome;
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
  const statement = task.uniqueKey === null && task.uniqueForMs === null
    ? { sql: INSERT_ONE_WITHOUT_UNIQUE, args: rowWithoutUnique(task, now) }
    : { sql: INSERT_ONE, args: oneRow(task, now) };
  let result;
  try {
    result = conn.executeIfFree(statement);
  } catch (error) {
    return Promise.reject(error);
  }
  if (result === undefined) return insertOneLater(conn, statement, task, now, false);
  if (result.rowsAffected === 1) return { id: result.lastInsertRowid!, created: true };
  return insertOneLater(conn, statement, task, now, true);
}

/** {@link insertOne} when the database was busy (`tried` false), or a key was taken (true). */
async function insertOneLater(
  conn: Connection,
  statement: SqlStatement,
  task: NewTask,
  now: number,
  tried: boolean,
): Promise<InsertedTask> {
  let rounds = 0;
  for (;;) {
    if (!tried) {
      const { rowsAffected, lastInsertRowid } = await conn.execute(statement);
      if (rowsAffected === 1) return { id: lastInsertRowid!, created: true };
    }
    tried = false;
    if (!hasKey(task)) {
      // Nothing but a key can make this insert do nothing, unless something outside PrismQ (a trigger)
      // discards it: say so rather than try forever.
      throw new DatabaseError(
        "A task was not inserted, and no idempotency or unique key explains why: something in the database " +
          "(a trigger?) discarded the row.",
      );
    }
    // A key is taken: the task holding it is the answer, unless it is a window key whose window is over
    // (release it, then insert again), or the holder finished or was purged meanwhile (insert again).
    const rows = await all<{ task: string; matched: string }>(
      conn,
      holdersOf(
        task.idempotencyKey === null ? [] : [task.idempotencyKey],
        task.uniqueKey === null ? [] : [task.uniqueKey],
      ),
    );
    const [outcome] = outcomesOf([task], [undefined], keyHolders(rows));
    if (outcome && !windowOver(outcome, now)) return outcome;
    if (outcome) await all(conn, releaseExpired([task.uniqueKey!], now));
    if (++rounds === 3) throw holderGone(task);
  }
}

/** Whether an insert met a `unique` key whose window is over at `now`: its holder can be released. */
export function windowOver(outcome: InsertedTask, now: number): boolean {
  const holder = outcome.existing;
  return outcome.matchedKey === "unique" && holder !== undefined && holder.uniqueForMs !== null &&
    holder.createdAt + holder.uniqueForMs <= now;
}

/** {@link insertRow} and the two times, in one array. */
function oneRow(task: NewTask, now: number): SqlValue[] {
  const row = insertRow(task);
  row.push(now, now);
  return row;
}

/** {@link oneRow} of a task without a `unique` key: the values of {@link WITHOUT_UNIQUE}, then the times. */
function rowWithoutUnique(task: NewTask, now: number): SqlValue[] {
  const row: SqlValue[] = new Array(WITHOUT_UNIQUE.length + 2);
  for (let i = 0; i < WITHOUT_UNIQUE.length; i++) row[i] = task[WITHOUT_UNIQUE[i]!];
  row[WITHOUT_UNIQUE.length] = now;
  row[WITHOUT_UNIQUE.length + 1] = now;
  return row;
}
