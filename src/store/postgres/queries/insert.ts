/**
 * Enqueue: the INSERTs of new tasks. One task is one prepared INSERT; many go in as one statement that reads
 * their payloads as one JSON array and their other columns bound once (or as one array per column when they
 * differ), in the order given, so that ids grow in that order. A task whose idempotency key is taken, or
 * whose `unique` key is held, is skipped (`ON CONFLICT DO NOTHING`) and gets the task that holds the key.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { Task } from "../../../task.ts";
import type { InsertedTask, NewTask } from "../../store.ts";
import {
  type CreatedRow,
  creatorsOf,
  hasKey,
  holderGone,
  type KeyHolder,
  keysToFind,
  outcomesOf,
  uniqueKeysOf,
} from "../../inserted.ts";
import {
  INSERT_COLUMNS,
  INSERT_KEYS,
  INSERT_TYPES,
  type InsertKey,
  JSON_INSERT_KEYS,
  nameOf,
  TASK_JSON,
} from "../columns.ts";
import type { SqlRunner } from "../app_transaction.ts";
import { array, p, PreparedSql, type Statement } from "../sql.ts";

/**
 * A value of an inserted column, as SQL: JSON (the payload, a retry policy) goes in as text and is stored
 * as JSON (bound as `json`, the driver would encode the text again).
 */
function insertedValue(key: InsertKey, value: SQL): SQL {
  return JSON_INSERT_KEYS.includes(key)
    ? sql`(${value}::text)::json`
    : sql`${value}::${sql.raw(INSERT_TYPES[key])}`;
}

/** The single INSERT, without and with `ON CONFLICT`, compiled once each. */
const INSERT_ONE = new Map<boolean, PreparedSql>();

/**
 * One task: its values bound one by one, into one of two texts compiled once (building and compiling the
 * Drizzle SQL took 0.1–0.2 ms of every enqueue), which the driver prepares once each. Only a keyed task may
 * conflict: the others skip the speculative insertion `ON CONFLICT` costs.
 */
function insertOneStatement(task: NewTask, now: number): Statement {
  const keyed = hasKey(task);
  let prepared = INSERT_ONE.get(keyed);
  if (prepared === undefined) {
    prepared = new PreparedSql(sql`
    INSERT INTO task_queue (${INSERT_COLUMNS})
    VALUES (${sql.join(INSERT_KEYS.map((key) => insertedValue(key, sql`${p(key)}`)), sql`, `)},
      ${p("now")}::bigint, ${p("now")}::bigint)
    ${keyed ? sql`ON CONFLICT DO NOTHING` : sql``}
    RETURNING id::text AS id`);
    INSERT_ONE.set(keyed, prepared);
  }
  const values: Record<string, unknown> = { now };
  for (const key of INSERT_KEYS) values[key] = task[key];
  return prepared.bind(values);
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
 * Only keyed tasks may conflict (the keys are the only unique columns an insert sets): without keys, the
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
    RETURNING id::text AS id${
    keyed ? sql`, idempotency_key AS "idempotencyKey", unique_key AS "uniqueKey"` : sql``
  }`;
}

/**
 * Releases the `unique` keys among `keys` whose windows are over at `now`: their holders leave the unique
 * index, so that an insert after it may take them. A compare-and-set under each holder's row lock: of two
 * enqueues that find one window over, the second sees it released and changes nothing; the unique index
 * then lets one of their inserts in. Rows are locked in id order, as every multi-row write here does.
 */
export function releaseExpired(keys: readonly string[], now: number): SQL {
  return sql`
    UPDATE task_queue SET unique_released_at = ${now}::bigint
    WHERE id IN (
      SELECT id FROM task_queue
      WHERE unique_key = ANY(${array(keys)}::text[]) AND unique_key IS NOT NULL AND unique_released_at IS NULL
        AND unique_for_ms IS NOT NULL AND created_at + unique_for_ms <= ${now}::bigint
      ORDER BY id FOR UPDATE)
      AND unique_released_at IS NULL AND created_at + unique_for_ms <= ${now}::bigint`;
}

/**
 * The tasks that hold these idempotency keys and these `unique` keys now, each with the kind of key it
 * holds. The second condition is the unique index's own, spelled alike so that the planner reads the index.
 */
export function holdersOf(idempotencyKeys: readonly string[], uniqueKeys: readonly string[]): SQL {
  return sql`
    SELECT ${TASK_JSON}, 'idempotencyKey' AS matched FROM task_queue
    WHERE idempotency_key = ANY(${array(idempotencyKeys)}::text[])
    UNION ALL
    SELECT ${TASK_JSON}, 'unique' AS matched FROM task_queue
    WHERE unique_key = ANY(${array(uniqueKeys)}::text[]) AND unique_key IS NOT NULL
      AND unique_released_at IS NULL AND (unique_for_ms IS NOT NULL OR status IN ('waiting', 'queued', 'running'))`;
}

/** Rows of {@link holdersOf} as key holders. */
export function keyHolders(rows: readonly unknown[]): KeyHolder[] {
  return (rows as { task: string; matched: KeyHolder["matched"] }[]).map((row) => ({
    task: JSON.parse(row.task) as Task,
    matched: row.matched,
  }));
}

/** Whether an insert met a `unique` key whose window is over at `now`: its holder can be released. */
function windowOver(outcome: InsertedTask, now: number): boolean {
  const holder = outcome.existing;
  return outcome.matchedKey === "unique" && holder !== undefined && holder.uniqueForMs !== null &&
    holder.createdAt + holder.uniqueForMs <= now;
}

/**
 * Inserts `tasks` through `run`, in one statement (all or none), after releasing the window keys among
 * theirs that are over, then looks up the holders of keys it did not take. Between the two statements a
 * holder may finish (freeing a key held while active) or be purged: those tasks are inserted again, after
 * the others (so their ids come later), up to three times.
 */
export async function insertMany(
  run: SqlRunner,
  tasks: readonly NewTask[],
  now: number,
  round = 1,
): Promise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  if (tasks.length === 1) return [await insertOne(run, tasks[0]!, now)];
  const keyed = tasks.some(hasKey);
  const uniqueKeys = keyed ? uniqueKeysOf(tasks) : [];
  if (uniqueKeys.length > 0) await run(releaseExpired(uniqueKeys, now));
  const created = await run(insertManyStatement(tasks, now, keyed)) as {
    id: string;
    idempotencyKey?: string | null;
    uniqueKey?: string | null;
  }[];
  // Ids grow in the order given; RETURNING promises no order.
  if (!keyed) return ascending(created.map((row) => Number(row.id))).map((id) => ({ id, created: true }));
  const creators = creatorsOf(
    tasks,
    created.map((row): CreatedRow => ({
      id: Number(row.id),
      idempotencyKey: row.idempotencyKey ?? null,
      uniqueKey: row.uniqueKey ?? null,
    })),
  );
  const { idempotencyKeys, uniqueKeys: held } = keysToFind(tasks, creators);
  const holders = idempotencyKeys.length + held.length === 0
    ? []
    : keyHolders(await run(holdersOf(idempotencyKeys, held)));
  const outcomes = outcomesOf(tasks, creators, holders);
  const again = tasks.filter((_, i) => outcomes[i] === undefined);
  if (again.length === 0) return outcomes as InsertedTask[];
  if (round === 3) throw holderGone(again[0]!);
  const retried = await insertMany(run, again, now, round + 1);
  let next = 0;
  return outcomes.map((outcome) => outcome ?? retried[next++]!);
}

/** `ids` sorted, ascending; usually they are already. */
function ascending(ids: number[]): number[] {
  for (let i = 1; i < ids.length; i++) if (ids[i]! < ids[i - 1]!) return ids.sort((a, b) => a - b);
  return ids;
}

/**
 * One task in one statement: the common enqueue, kept to a single prepared INSERT. When a key is taken, the
 * task holding it is the answer, unless it is a window key whose window is over (release it, then insert
 * again), or the holder finished or was purged meanwhile (insert again).
 */
export async function insertOne(run: SqlRunner, task: NewTask, now: number): Promise<InsertedTask> {
  for (let attempt = 1;; attempt++) {
    const rows = await run(insertOneStatement(task, now));
    if (rows.length === 1) return { id: Number(rows[0]!.id), created: true };
    const found = await run(holdersOf(
      task.idempotencyKey === null ? [] : [task.idempotencyKey],
      task.uniqueKey === null ? [] : [task.uniqueKey],
    ));
    const [outcome] = outcomesOf([task], [undefined], keyHolders(found));
    if (outcome && !windowOver(outcome, now)) return outcome;
    if (outcome) await run(releaseExpired([task.uniqueKey!], now));
    if (attempt === 3) throw holderGone(task);
  }
}
