/**
 * Rows to tasks and back, every column list derived from the Drizzle table in `schema.ts`: the SELECT list a
 * read or a claim returns, each column named as its key in a `Task`, and the arrays an insert takes. A
 * column added to the table joins the SELECT list by itself; the type checks at the bottom fail until `Task`
 * says what becomes of it (and `NewTask`, with an entry in {@link INSERT_KEYS}, when an enqueue sets it).
 *
 * @module
 */
import { getTableColumns, type SQL, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import type { Task } from "../../task.ts";
import type { LeasedTask, NewTask } from "../store.ts";
import { taskQueue, type TaskRow } from "./schema.ts";

type TaskKey = keyof typeof taskQueue._.columns;
const TASK_COLUMNS = getTableColumns(taskQueue);

/** A task column's name in SQL. */
export function nameOf(key: TaskKey): string {
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

/** The columns that hold JSON, read as their text and parsed in a `Task`. */
const JSON_KEYS = ["payload", "retryPolicy", "result", "progress"] as const satisfies readonly TaskKey[];
type JsonKey = typeof JSON_KEYS[number];

function isJsonKey(key: TaskKey): key is JsonKey {
  return (JSON_KEYS as readonly string[]).includes(key);
}

/** `column AS "key"` for each of `keys`; JSON (the payload first) as its text, exactly as stored. */
function selectList(keys: readonly TaskKey[], prefix: string): string {
  return keys.map((key) =>
    isJsonKey(key) ? `${prefix}${nameOf(key)}::text AS "${key}"` : `${prefix}${nameOf(key)} AS "${key}"`
  ).join(", ");
}

/** A JSON column's text as its value: null stays null. */
function parsedJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

/** A task row's columns, each named as its key in a `Task`. */
export const TASK_SELECT = sql.raw(selectList(TASK_KEYS, ""));

/** {@link TASK_SELECT} of the table `task_queue` is aliased to `t` in (an UPDATE's RETURNING). */
export const TASK_SELECT_T = sql.raw(selectList(TASK_KEYS, "t."));

/**
 * A task row as one JSON object keyed like a `Task`, its payload embedded as JSON: what a foreign handle (an
 * application's driver, with its own way of reading numbers) returns exactly as the store's pool would.
 */
export const TASK_JSON = sql.raw(
  "json_build_object(" + TASK_KEYS.map((key) => `'${key}', ${nameOf(key)}`).join(", ") + ")::text AS task",
);

/** A row selected as {@link TASK_JSON}. */
export type TaskJsonRow = { task: string };

/** A row selected with {@link TASK_SELECT}: a `Task` whose JSON fields are still JSON text. */
export type TaskTextRow =
  & Omit<Task, JsonKey>
  & { payload: string }
  & Record<Exclude<JsonKey, "payload">, string | null>;

/** A row selected with {@link TASK_SELECT} as a `Task`, written out so that every task has one shape. */
export function toTask(row: TaskTextRow): Task {
  return {
    id: row.id,
    type: row.type,
    payload: JSON.parse(row.payload),
    status: row.status,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    errorMessage: row.errorMessage,
    idempotencyKey: row.idempotencyKey,
    lockedBy: row.lockedBy,
    timeoutMs: row.timeoutMs,
    runAfter: row.runAfter,
    leaseUntil: row.leaseUntil,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    retryPolicy: parsedJson(row.retryPolicy) as Task["retryPolicy"],
    result: parsedJson(row.result),
    progress: parsedJson(row.progress),
    queue: row.queue,
    uniqueKey: row.uniqueKey,
    uniqueForMs: row.uniqueForMs,
  };
}

/** What a claim sets on every task it takes: known to the worker, so not read back. */
export type ClaimSets = Pick<Task, "status" | "lockedBy" | "leaseUntil" | "updatedAt">;
const CLAIM_SETS: readonly TaskKey[] = ["status", "lockedBy", "leaseUntil", "updatedAt"];

/**
 * A claim's RETURNING list: the task's other columns, its lease token and whether its start is unconfirmed.
 * A claim returns hundreds of rows, and every value read back costs the server its output and the worker
 * its decoding.
 */
export const CLAIM_RETURNING = sql.raw(
  `${selectList(TASK_KEYS.filter((key) => !CLAIM_SETS.includes(key)), "t.")}, ` +
    `t.lease_token AS "leaseToken", t.unconfirmed_start AS "unconfirmedStart"`,
);

/**
 * A claim's lease tokens, 24 hex digits: a random key drawn once per claim (`CLAIM_KEY`, a column of a
 * one-row relation the claim joins as `s`) and the task's id. Tokens are unique per task within a claim
 * and unpredictable across claims, as fencing needs; a random UUID and its hash per row cost the server
 * some 3 µs a task, the most expensive part of a claim's UPDATE after the row writes.
 */
export const CLAIM_KEY = sql.raw(`left(md5(gen_random_uuid()::text), 12) AS key`);
export const LEASE_TOKEN = sql.raw(`s.key || lpad(to_hex(t.id & 281474976710655), 12, '0')`);

/** A row of a claim's {@link CLAIM_RETURNING}. */
export type ClaimRow = Omit<TaskTextRow, keyof ClaimSets> & { leaseToken: string; unconfirmedStart: boolean };

/**
 * One row of a claim's {@link CLAIM_RETURNING} as a leased task, with what the claim set. The task is one
 * literal, so that every task has one shape; the `Task` type makes leaving a field out a compile error.
 */
export function leasedTask(row: ClaimRow, sets: ClaimSets): LeasedTask {
  const task: Task = {
    id: row.id,
    type: row.type,
    payload: JSON.parse(row.payload),
    status: sets.status,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    errorMessage: row.errorMessage,
    idempotencyKey: row.idempotencyKey,
    lockedBy: sets.lockedBy,
    timeoutMs: row.timeoutMs,
    runAfter: row.runAfter,
    leaseUntil: sets.leaseUntil,
    createdAt: row.createdAt,
    updatedAt: sets.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    retryPolicy: parsedJson(row.retryPolicy) as Task["retryPolicy"],
    result: parsedJson(row.result),
    progress: parsedJson(row.progress),
    queue: row.queue,
    uniqueKey: row.uniqueKey,
    uniqueForMs: row.uniqueForMs,
  };
  return {
    task,
    leaseToken: row.leaseToken,
    recordStartFirst: task.startedAt === null && row.unconfirmedStart,
    payloadLength: row.payload.length,
  };
}

/** A table's columns for a SELECT list, each named as its key in the Drizzle schema; JSON as its text. */
export function columnsOf(table: PgTable): SQL {
  return sql.raw(
    Object.entries(getTableColumns(table)).map(([key, column]) =>
      column.getSQLType() === "json" ? `${column.name}::text AS "${key}"` : `${column.name} AS "${key}"`
    ).join(", "),
  );
}

// ---- Inserts ------------------------------------------------------------------------------------------

/** The columns an enqueue sets, each with the type of the array an insert passes it in. */
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

/**
 * The SQL type of each inserted column's array element: JSON (the payload, a retry policy) goes in as text,
 * then to JSON (see {@link JSON_INSERT_KEYS}).
 */
export const INSERT_TYPES: Record<InsertKey, string> = {
  type: "text",
  payload: "text",
  priority: "bigint",
  maxAttempts: "bigint",
  runAfter: "bigint",
  idempotencyKey: "text",
  timeoutMs: "bigint",
  retryPolicy: "text",
  queue: "text",
  uniqueKey: "text",
  uniqueForMs: "bigint",
};

/** The inserted columns that go in as JSON text and are cast to `json` in the statement. */
export const JSON_INSERT_KEYS: readonly InsertKey[] = INSERT_KEYS.filter((key) => isJsonKey(key));

/** An INSERT's column list for {@link INSERT_KEYS}, then the two times every insert sets. */
export const INSERT_COLUMNS = sql.raw(
  [...INSERT_KEYS.map(nameOf), nameOf("createdAt"), nameOf("updatedAt")].join(", "),
);

// ---- The types agree with the table -------------------------------------------------------------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** A `Task` has exactly the table's columns but the store's own, each of the column's type (the payload parsed). */
const _taskKeys: Same<keyof Task, Exclude<TaskKey, InternalKey>> = true;
const _taskTypes: Same<Omit<Task, JsonKey>, Omit<TaskRow, InternalKey | JsonKey>> = true;
/** A `NewTask` is exactly what an insert takes, each of the column's type (the payload as JSON text). */
// Its dependencies (`dependsOn`) go in a table of their own.
const _newTaskKeys: Same<Exclude<keyof NewTask, "dependsOn">, InsertKey> = true;
const _newTaskTypes: Same<Omit<NewTask, JsonKey | "dependsOn">, Pick<TaskRow, Exclude<InsertKey, JsonKey>>> =
  true;
