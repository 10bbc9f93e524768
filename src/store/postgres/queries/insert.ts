/**
 * Enqueue: the INSERTs of new tasks. One task is one prepared INSERT; many go in as one statement that reads
 * their payloads as one JSON array and their other columns bound once (or as one array per column when they
 * differ), in the order given, so that ids grow in that order. A task whose idempotency key is taken is
 * skipped (`ON CONFLICT DO NOTHING`) and gets the task that holds the key.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { Task } from "../../../task.ts";
import type { InsertedTask, NewTask } from "../../store.ts";
import {
  INSERT_COLUMNS,
  INSERT_KEYS,
  INSERT_TYPES,
  type InsertKey,
  JSON_INSERT_KEYS,
  nameOf,
  TASK_JSON,
  type TaskJsonRow,
} from "../columns.ts";
import type { SqlRunner } from "../app_transaction.ts";
import { array } from "../sql.ts";

/**
 * A value of an inserted column, as SQL: JSON (the payload, a retry policy) goes in as text and is stored
 * as JSON (bound as `json`, the driver would encode the text again).
 */
function insertedValue(key: InsertKey, value: SQL): SQL {
  return JSON_INSERT_KEYS.includes(key)
    ? sql`(${value}::text)::json`
    : sql`${value}::${sql.raw(INSERT_TYPES[key])}`;
}

/**
 * One task: its values bound one by one (the text is one of two, so the driver prepares each once). Only a
 * keyed task may conflict: the others skip the speculative insertion `ON CONFLICT` costs.
 */
function insertOneStatement(task: NewTask, now: number): SQL {
  return sql`
    INSERT INTO task_queue (${INSERT_COLUMNS})
    VALUES (${sql.join(INSERT_KEYS.map((key) => insertedValue(key, sql`${task[key]}`)), sql`, `)},
      ${now}::bigint, ${now}::bigint)
    ${task.idempotencyKey === null ? sql`` : sql`ON CONFLICT DO NOTHING`}
    RETURNING id::text AS id`;
}

/** The inserted columns but the payload, which always goes in as one JSON array. */
const OTHER_KEYS = INSERT_KEYS.filter((key) => key !== "payload");

/** Whether every task has the same value in each column but the payload: the usual bulk load. */
function uniform(tasks: readonly NewTask[]): boolean {
  const first = tasks[0]!;
  return tasks.every((task) => OTHER_KEYS.every((key) => task[key] === first[key]));
}

/**
 * Many tasks in one statement. The payloads go in as one JSON array (the payloads' own text joined, so
 * that neither side escapes or parses them one by one, as a text[] would need), read in order with
 * `json_array_elements`; each element is kept verbatim, as the `json` type keeps text. The other columns
 * are bound once when every task has the same values, else one array per column, read alongside with
 * `unnest` in `ROWS FROM`. Rows go in in the order given (`ORDER BY ord`), so that ids grow in that order.
 * Only keyed tasks may conflict (the key is the only unique column an insert sets): without keys, the
 * statement skips `ON CONFLICT`'s speculative insertion, and returns ids alone.
 */
function insertManyStatement(tasks: readonly NewTask[], now: number, keyed: boolean): SQL {
  const payloads = `[${tasks.map((task) => task.payload).join(",")}]`;
  const elements = sql`json_array_elements(${payloads}::text::json)`;
  let source: SQL;
  let values: SQL;
  if (uniform(tasks)) {
    const first = tasks[0]!;
    source = sql`${elements} WITH ORDINALITY AS r(payload, ord)`;
    values = sql.join(
      INSERT_KEYS.map((key) => key === "payload" ? sql`r.payload` : insertedValue(key, sql`${first[key]}`)),
      sql`, `,
    );
  } else {
    const arrays = OTHER_KEYS.map((key) =>
      sql`unnest(${array(tasks.map((task) => task[key]))}::${sql.raw(INSERT_TYPES[key])}[])`
    );
    const names = sql.raw(["payload", ...OTHER_KEYS.map((key) => nameOf(key))].join(", "));
    source = sql`ROWS FROM (${sql.join([elements, ...arrays], sql`, `)}) WITH ORDINALITY AS r(${names}, ord)`;
    values = sql.raw(
      INSERT_KEYS.map((key) =>
        key !== "payload" && JSON_INSERT_KEYS.includes(key) ? `r.${nameOf(key)}::json` : `r.${nameOf(key)}`
      ).join(", "),
    );
  }
  return sql`
    INSERT INTO task_queue (${INSERT_COLUMNS})
    SELECT ${values}, ${now}::bigint, ${now}::bigint
    FROM ${source}
    ORDER BY r.ord
    ${keyed ? sql`ON CONFLICT DO NOTHING` : sql``}
    RETURNING id::text AS id${keyed ? sql`, idempotency_key AS "idempotencyKey"` : sql``}`;
}

/** The tasks that hold these idempotency keys. */
export function holdersOf(keys: readonly string[]): SQL {
  return sql`SELECT ${TASK_JSON} FROM task_queue WHERE idempotency_key = ANY(${array(keys)}::text[])`;
}

/**
 * Inserts `tasks` through `run`, in one statement (all or none), then looks up the holders of keys it did
 * not take. Outside a transaction, a holder may be purged between the two statements: then it tries again.
 */
export async function insertMany(
  run: SqlRunner,
  tasks: readonly NewTask[],
  now: number,
): Promise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  if (tasks.length === 1) return [await insertOne(run, tasks[0]!, now)];
  const keyed = tasks.some((task) => task.idempotencyKey !== null);
  const created = await run(insertManyStatement(tasks, now, keyed)) as {
    id: string;
    idempotencyKey?: string | null;
  }[];
  // Ids grow in the order given; RETURNING promises no order.
  const unkeyed = ascending(
    (keyed ? created.filter((row) => row.idempotencyKey === null) : created).map((row) => Number(row.id)),
  );
  if (!keyed) return unkeyed.map((id) => ({ id, created: true }));
  const createdIds = new Map(
    created.flatMap((row) => row.idempotencyKey === null ? [] : [[row.idempotencyKey, Number(row.id)]]),
  );
  // Only the first of several tasks with one key in this call created it.
  const creators = new Map<NewTask, number>();
  for (const task of tasks) {
    const id = task.idempotencyKey === null ? undefined : createdIds.get(task.idempotencyKey);
    if (id !== undefined) {
      creators.set(task, id);
      createdIds.delete(task.idempotencyKey!);
    }
  }
  const lookups = [
    ...new Set(
      tasks.flatMap((task) =>
        task.idempotencyKey !== null && !creators.has(task) ? [task.idempotencyKey] : []
      ),
    ),
  ];
  const byKey = new Map<string, Task>();
  if (lookups.length > 0) {
    for (const row of await run(holdersOf(lookups))) {
      const task = JSON.parse((row as TaskJsonRow).task) as Task;
      byKey.set(task.idempotencyKey!, task);
    }
  }
  let nextUnkeyed = 0;
  return tasks.map((task): InsertedTask => {
    if (task.idempotencyKey === null) return { id: unkeyed[nextUnkeyed++]!, created: true };
    const id = creators.get(task);
    if (id !== undefined) return { id, created: true };
    const holder = byKey.get(task.idempotencyKey);
    if (!holder) {
      throw new Error(
        `The task holding idempotency key ${JSON.stringify(task.idempotencyKey)} was deleted while this ` +
          `enqueue ran. Enqueue it again.`,
      );
    }
    return { id: holder.id, created: false, existing: holder };
  });
}

/** `ids` sorted, ascending; usually they are already. */
function ascending(ids: number[]): number[] {
  for (let i = 1; i < ids.length; i++) if (ids[i]! < ids[i - 1]!) return ids.sort((a, b) => a - b);
  return ids;
}

/** One task in one statement: the common enqueue, kept to a single prepared INSERT. */
export async function insertOne(run: SqlRunner, task: NewTask, now: number): Promise<InsertedTask> {
  for (let attempt = 1;; attempt++) {
    const rows = await run(insertOneStatement(task, now));
    if (rows.length === 1) return { id: Number(rows[0]!.id), created: true };
    // The key is taken: the task holding it is the answer (unless it was purged meanwhile: try again).
    const [existing] = await run(holdersOf([task.idempotencyKey!]));
    if (existing) {
      const stored = JSON.parse((existing as TaskJsonRow).task) as Task;
      return { id: stored.id, created: false, existing: stored };
    }
    if (attempt === 3) {
      throw new Error(
        `The task holding idempotency key ${JSON.stringify(task.idempotencyKey)} was deleted while this ` +
          `enqueue ran, three times. Enqueue it again.`,
      );
    }
  }
}
