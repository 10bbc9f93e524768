/**
 * Rows to tasks and back, every column list derived from the Drizzle table in `schema.ts`: the JSON object a
 * read returns, the values a claim returns (and where each is in its row), and the values an insert takes.
 * A column added to the table joins the first two by itself; the type checks at the bottom fail until
 * `Task` says what becomes of it (and `NewTask`, with an entry in {@link INSERT_KEYS}, when an enqueue sets
 * it), and then {@link leasedTask} fails to compile until it reads the new field.
 *
 * @module
 */
import { getTableColumns, type SQL, sql } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Task } from "../../task.ts";
import type { LeasedTask, NewTask } from "../store.ts";
import type { SqlValue } from "./driver.ts";
import { taskQueue, type TaskRow } from "./schema.ts";

type TaskKey = keyof typeof taskQueue._.columns;
const TASK_COLUMNS = getTableColumns(taskQueue);

/** A task column's name in SQL. */
function nameOf(key: TaskKey): string {
  return TASK_COLUMNS[key].name;
}

/** Columns the store keeps for itself: not part of a `Task`. */
const INTERNAL_KEYS = [
  "leaseToken",
  "unconfirmedStart",
  "uniqueReleasedAt",
] as const satisfies readonly TaskKey[];
type InternalKey = typeof INTERNAL_KEYS[number];

function isTaskField(key: TaskKey): key is Exclude<TaskKey, InternalKey> {
  return !(INTERNAL_KEYS as readonly string[]).includes(key);
}

/** The task's columns that make up a `Task`, in the table's order. */
const TASK_KEYS = (Object.keys(TASK_COLUMNS) as TaskKey[]).filter(isTaskField);

/** The columns that hold JSON text, parsed in a `Task`. */
const JSON_KEYS = ["payload", "retryPolicy", "result", "progress"] as const satisfies readonly TaskKey[];
type JsonKey = typeof JSON_KEYS[number];

function isJsonKey(key: TaskKey): key is JsonKey {
  return (JSON_KEYS as readonly string[]).includes(key);
}

/**
 * A task row as one JSON object keyed like a `Task`. libSQL's client pays for every column of every row it
 * returns, so one JSON column (parsed in JavaScript) costs a fraction of eighteen; `json(payload)` embeds
 * the payload (and every other JSON column) as JSON rather than as a string to parse twice.
 */
export const TASK_JSON = sql.raw(
  "json_object(" +
    TASK_KEYS.map((key) => `'${key}', ${isJsonKey(key) ? `json(${nameOf(key)})` : nameOf(key)}`).join(", ") +
    ") AS task",
);

/** A JSON column's text as its value: null stays null. */
function parsedJson(text: unknown): unknown {
  return text === null || text === undefined ? null : JSON.parse(text as string);
}

/** A row selected as {@link TASK_JSON}. */
export type TaskJsonRow = { task: string };

export function toTask(row: TaskJsonRow): Task {
  return JSON.parse(row.task);
}

/** A table's columns for a SELECT list, each named as its key in the Drizzle schema. */
export function columnsOf(table: SQLiteTable): SQL {
  return sql.raw(
    Object.entries(getTableColumns(table)).map(([key, column]) => `${column.name} AS "${key}"`).join(", "),
  );
}

// ---- Inserts ------------------------------------------------------------------------------------------

/** The columns an enqueue sets, in the order an insert row carries them; every other one takes its default. */
export const INSERT_KEYS = [
  "type",
  "payload",
  "priority",
  "maxAttempts",
  "runAfter",
  "idempotencyKey",
  "timeoutMs",
  "retryPolicy",
  "queue",
  "uniqueKey",
  "uniqueForMs",
] as const satisfies readonly (keyof NewTask & TaskKey)[];
export type InsertKey = typeof INSERT_KEYS[number];

/** A new task's inserted values, in {@link INSERT_KEYS} order. */
export function insertRow(task: NewTask): SqlValue[] {
  const row: SqlValue[] = new Array(INSERT_KEYS.length);
  for (let i = 0; i < INSERT_KEYS.length; i++) row[i] = task[INSERT_KEYS[i]!];
  return row;
}

/** An INSERT's column list for `keys`, then the two times every insert sets: `created_at, updated_at`. */
export function insertColumns(keys: readonly InsertKey[]): SQL {
  return sql.raw([...keys.map(nameOf), nameOf("createdAt"), nameOf("updatedAt")].join(", "));
}

/** For each of `keys`, its value in a `json_each` row made by {@link insertRow}: `value ->> <position>`. */
export function insertFields(keys: readonly InsertKey[]): SQL {
  return sql.raw(keys.map((key) => `value ->> ${INSERT_KEYS.indexOf(key)}`).join(", "));
}

// ---- Claims -------------------------------------------------------------------------------------------

/** What a claim sets, and so knows without reading it back. */
export type ClaimSets = Pick<Task, "status" | "lockedBy" | "leaseUntil" | "updatedAt">;
const CLAIM_SETS: readonly (keyof ClaimSets)[] = ["status", "lockedBy", "leaseUntil", "updatedAt"];

/**
 * The other columns of a task, returned by a claim as plain values: a row of values costs less to return
 * than one JSON object, and a claim returns hundreds.
 */
const CLAIMED_KEYS = TASK_KEYS.filter((key): key is Exclude<typeof key, keyof ClaimSets> =>
  !(CLAIM_SETS as readonly string[]).includes(key)
);
/** Where each claimed column is in a claim's row. */
const AT = Object.fromEntries(CLAIMED_KEYS.map((key, i) => [key, i])) as Record<
  typeof CLAIMED_KEYS[number],
  number
>;
const LEASE_TOKEN_AT = CLAIMED_KEYS.length;
/** Where a claim's row has the task's queue. */
export const CLAIMED_QUEUE_AT: number = AT.queue;
const UNCONFIRMED_START_AT = CLAIMED_KEYS.length + 1;

/** A claim's RETURNING list: the claimed columns, then the lease token and whether the start is unconfirmed. */
export const CLAIM_RETURNING = sql.raw(
  [...CLAIMED_KEYS.map(nameOf), nameOf("leaseToken"), nameOf("unconfirmedStart")].join(", "),
);

/**
 * One row of a claim's {@link CLAIM_RETURNING} as a leased task. The task is one literal, so that every
 * task has the same shape: written out, since filling an object key by key from {@link AT} cost 400 ns a
 * task against 150. The `Task` type makes leaving a field out a compile error, and tests/columns_test.ts
 * checks that a claimed task equals the stored one.
 */
export function leasedTask(row: unknown[], sets: ClaimSets): LeasedTask {
  const payload = row[AT.payload] as string;
  const task: Task = {
    id: row[AT.id] as number,
    type: row[AT.type] as string,
    payload: JSON.parse(payload),
    status: sets.status,
    priority: row[AT.priority] as number,
    attempts: row[AT.attempts] as number,
    maxAttempts: row[AT.maxAttempts] as number,
    errorMessage: row[AT.errorMessage] as string | null,
    idempotencyKey: row[AT.idempotencyKey] as string | null,
    lockedBy: sets.lockedBy,
    timeoutMs: row[AT.timeoutMs] as number | null,
    runAfter: row[AT.runAfter] as number,
    leaseUntil: sets.leaseUntil,
    createdAt: row[AT.createdAt] as number,
    updatedAt: sets.updatedAt,
    startedAt: row[AT.startedAt] as number | null,
    finishedAt: row[AT.finishedAt] as number | null,
    retryPolicy: parsedJson(row[AT.retryPolicy]) as Task["retryPolicy"],
    result: parsedJson(row[AT.result]),
    progress: parsedJson(row[AT.progress]),
    queue: row[AT.queue] as string,
    uniqueKey: row[AT.uniqueKey] as string | null,
    uniqueForMs: row[AT.uniqueForMs] as number | null,
  };
  return {
    task,
    leaseToken: row[LEASE_TOKEN_AT] as string,
    recordStartFirst: task.startedAt === null && row[UNCONFIRMED_START_AT] === 1,
    payloadLength: payload.length,
  };
}

// ---- The types agree with the table -------------------------------------------------------------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** A `Task` has exactly the table's columns but the store's own, each of the column's type (the payload parsed). */
const _taskKeys: Same<keyof Task, Exclude<TaskKey, InternalKey>> = true;
const _taskTypes: Same<Omit<Task, JsonKey>, Omit<TaskRow, InternalKey | JsonKey>> = true;
/** A `NewTask` is exactly what an insert takes, each of the column's type. */
// Its dependencies (`dependsOn`) go in a table of their own.
const _newTaskKeys: Same<Exclude<keyof NewTask, "dependsOn">, InsertKey> = true;
const _newTaskTypes: Same<Omit<NewTask, "dependsOn">, Pick<TaskRow, InsertKey>> = true;
