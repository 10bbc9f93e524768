/**
 * One enqueue's inputs: the options a task is enqueued with, their checks that need no database (when it
 * runs, its idempotency key), and the task an insert creates, built from what was inserted.
 *
 * @module
 */
import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import { duration, epochMs, jsonHasLoneSurrogate, MAX_EPOCH_MS, wellFormed, wholeNumber } from "./checks.ts";
import { invalidRange, invalidType, PayloadTooLargeError } from "./errors.ts";
import { parseIsoTime } from "./iso_time.ts";
import { DEFAULT_QUEUE, queueName } from "./queue_name.ts";
import type { Clock } from "./clock.ts";
import type { TaskHandlerRegistry } from "./registry.ts";
import { retryOverrides, type RetryPolicy } from "./retry.ts";
import type { InsertedTask, MatchedKey, NewTask, PayloadMatch, SqlTransaction } from "./store/store.ts";
import type { Task, TaskStatus } from "./task.ts";

import { uniqueColumns, type UniqueOptions } from "./unique_option.ts";

export { uniqueColumns, type UniqueOptions } from "./unique_option.ts";

const MAX_KEY_LENGTH = 1024;

/** How and when a task runs. */
export interface EnqueueOptions {
  /** Lower numbers run first under the `priority` strategy. A whole number. @default 100 */
  priority?: number | undefined;
  /** Not before this time: a Date, epoch milliseconds, or an ISO-8601 string. */
  runAt?: Date | number | string | undefined;
  /** Not before this many milliseconds from now. Give `runAt` or `delayMs`, not both. */
  delayMs?: number | undefined;
  /** Attempts before the task fails for good. @default the handler's `maxAttempts`, else 5 */
  maxAttempts?: number | undefined;
  /**
   * This task's backoff between failed attempts, field by field over its handler's `retry` and the
   * worker's (`initialDelayMs`, `multiplier`, `maxDelayMs`, `jitter`). Stored with the task, so that any
   * worker that runs it, in any process, backs off by it. @default the handler's, else the worker's
   */
  retry?: Partial<RetryPolicy> | undefined;
  /**
   * A key held for good: a second enqueue with the same key returns the first task instead of adding another
   * (until that task is purged). For a key held only while the task is pending, or for a time, see `unique`.
   */
  idempotencyKey?: string | undefined;
  /**
   * A key held by this task for a scope, enforced by the database across processes and hosts: while another
   * task holds it, an enqueue with the same key adds nothing and returns that task (`created: false`,
   * `matchedKey: "unique"`). `{ key, while: "active" }` holds it while the task is queued or running;
   * `{ key, forMs }` for `forMs` milliseconds from the task's creation, whatever becomes of the task. See
   * {@link UniqueOptions}. @default the handler definition's `unique` of the payload, when the `Queue` knows
   * the handler; `null` gives the task no key even then.
   *
   * @example One pending sync per account
   * ```ts
   * import { Queue, QueueDatabase } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * const unique = { key: "sync:account-42", while: "active" } as const;
   * const first = await queue.enqueue("sync", { account: 42 }, { unique });
   * const again = await queue.enqueue("sync", { account: 42 }, { unique });
   * again.created; // false: the first is still queued
   * again.id === first.id; // true
   * await db.close();
   * ```
   */
  unique?: UniqueOptions | null | undefined;
  /** Per-attempt time limit; the handler's signal aborts when it passes. @default the handler's, or none */
  timeoutMs?: number | undefined;
  /**
   * The named queue the task goes to: workers serving it claim it, under its limits. 1 to 128 letters,
   * digits, `_`, `-` or `.`. @default the handler definition's `queue`, else "default"
   */
  queue?: string | undefined;
  /**
   * Ids of tasks that must all complete before this one runs (at most 10,000; repeats count once). Until
   * then it is `waiting`; when one of them fails for good or is cancelled, it is cancelled, its
   * `errorMessage` naming that task and why. Each must exist already (`DependencyError` otherwise, so
   * dependencies never form a cycle); one completed already counts as done, and one failed or cancelled
   * already cancels the new task at once. @default none: the task is queued at once
   */
  dependsOn?: readonly number[] | undefined;
}

/**
 * A transaction the application holds, for tasks to commit or roll back with its own writes: the handle
 * `db.transaction()` gives, or the application's Drizzle SQLite database or transaction on the queue's file
 * (any Drizzle SQLite driver: libSQL client, `libsql`, better-sqlite3, bun:sqlite, a proxy over `node:sqlite`).
 */
// deno-lint-ignore no-explicit-any
export type EnqueueTransaction = SqlTransaction | BaseSQLiteDatabase<"sync" | "async", any, any, any>;

/** Where an enqueue writes. */
export interface WriteOptions {
  /**
   * Write through this transaction, which commits or rolls the tasks back with the application's own writes.
   * Workers see them once it commits.
   */
  tx?: EnqueueTransaction | undefined;
}

/** One task for {@link Queue.enqueueMany}. */
export interface EnqueueItem extends EnqueueOptions {
  type: string;
  payload?: unknown | undefined;
}

export interface QueueOptions {
  /** When given, unknown types and payloads that fail their handler's schema are refused before writing. */
  registry?: TaskHandlerRegistry | undefined;
  clock?: Clock | undefined;
  /** Largest payload accepted, in bytes of JSON. @default 1048576 (1 MiB) */
  maxPayloadBytes?: number | undefined;
}

/** Filters for {@link Queue.list}. */
export interface ListOptions {
  status?: TaskStatus | undefined;
  type?: string | undefined;
  queue?: string | undefined;
  /** Only tasks created strictly after this time: a Date, epoch milliseconds, or ISO-8601 with a zone. */
  createdAfter?: Date | number | string | undefined;
  /** Only tasks created strictly before this time. */
  createdBefore?: Date | number | string | undefined;
  /**
   * Only tasks whose payload holds each of these values (of the same JSON type) at its path of keys:
   * `[{ path: ["account"], value: 42 }]`. Scalars only.
   */
  payload?: readonly PayloadMatch[] | undefined;
  /** Keyset paging: only tasks with an id below this one, the last id of the previous page. */
  beforeId?: number | undefined;
  /** Only tasks with an id of at least this: with `beforeId`, a window of ids, so a scan has a bound. */
  fromId?: number | undefined;
  /** @default 100 */
  limit?: number | undefined;
  /** @default 0 */
  offset?: number | undefined;
}

export function runAfter(options: EnqueueOptions, now: number): number {
  const { runAt, delayMs } = options;
  if (runAt !== undefined && delayMs !== undefined) {
    throw invalidType("Give runAt or delayMs, not both.");
  }
  if (delayMs !== undefined) {
    if (typeof delayMs !== "number" || !(Number.isFinite(delayMs) && delayMs >= 0)) {
      throw invalidRange(`delayMs must be a number ≥ 0, got ${String(delayMs)}.`);
    }
    const at = now + Math.round(delayMs);
    if (!(at <= MAX_EPOCH_MS)) {
      throw invalidRange(
        `delayMs ${delayMs} puts the task past the latest time a Date can hold (${MAX_EPOCH_MS} ms from 1970).`,
      );
    }
    return at;
  }
  if (runAt === undefined) return now;
  const at = runAt instanceof Date
    ? runAt.getTime()
    : typeof runAt === "string"
    ? parseIsoTime(runAt)
    : runAt;
  if (typeof at !== "number" || !Number.isFinite(at)) {
    throw invalidRange(
      `runAt must be a valid Date, epoch milliseconds, or an ISO-8601 time with a zone like ` +
        `2030-01-31T09:00:00Z; got ${JSON.stringify(runAt)}.`,
    );
  }
  return epochMs("runAt", Math.round(at));
}

export function idempotencyKey(key: unknown): string | null {
  if (key === undefined || key === null) return null;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw invalidType(`idempotencyKey must be a string of 1 to ${MAX_KEY_LENGTH} characters.`);
  }
  return wellFormed("idempotencyKey", key);
}

/**
 * A task an enqueue returns: the task it created (`created: true`), or the one that already held its key
 * (`created: false`, and `matchedKey` says which key: `"idempotencyKey"` or `"unique"`). The two are
 * non-enumerable, so that the task stays what it was before they existed: equal to what `queue.get(id)`
 * returns, and without them in JSON and spreads (copy them by name).
 */
export type EnqueuedTask<Payload = unknown> = Task<Payload> & {
  /** Whether this enqueue created the task; false when another task held one of its keys. */
  readonly created: boolean;
  /** When not created: the key by which the existing task was found; undefined when created. */
  readonly matchedKey?: MatchedKey | undefined;
};

/** What an insert did, as the task an enqueue returns. */
export function enqueuedTask(inserted: InsertedTask, task: NewTask, now: number): EnqueuedTask {
  const enqueued = inserted.existing ?? createdTask(inserted.id, task, now, inserted.settled);
  Object.defineProperty(enqueued, "created", { value: inserted.created, configurable: true });
  if (inserted.matchedKey !== undefined) {
    Object.defineProperty(enqueued, "matchedKey", { value: inserted.matchedKey, configurable: true });
  }
  return enqueued as EnqueuedTask;
}

/**
 * The task an insert created, built from what was inserted rather than read back (`settled`: where its
 * dependencies left it).
 */
export function createdTask(id: number, task: NewTask, now: number, settled?: InsertedTask["settled"]): Task {
  return {
    id,
    type: task.type,
    payload: JSON.parse(task.payload),
    status: settled?.status ?? "queued",
    priority: task.priority,
    attempts: 0,
    maxAttempts: task.maxAttempts,
    errorMessage: settled?.errorMessage ?? null,
    idempotencyKey: task.idempotencyKey,
    lockedBy: null,
    timeoutMs: task.timeoutMs,
    runAfter: task.runAfter,
    leaseUntil: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: settled?.finishedAt ?? null,
    retryPolicy: task.retryPolicy === null ? null : JSON.parse(task.retryPolicy),
    result: null,
    progress: null,
    queue: task.queue,
    uniqueKey: task.uniqueKey,
    uniqueForMs: task.uniqueForMs,
  };
}

const DEFAULT_PRIORITY = 100;
const NO_UNIQUE = { uniqueKey: null, uniqueForMs: null } as const;
const DEFAULT_MAX_ATTEMPTS = 5;
const encoder = new TextEncoder();

/**
 * The payload as the JSON text to store.
 *
 * @throws {TypeError} when it cannot be written as JSON, or holds a lone surrogate
 * @throws {PayloadTooLargeError} when its JSON is over `maxBytes` bytes of UTF-8
 */
export function payloadJson(type: string, payload: unknown, maxBytes: number): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw invalidType(
      `The payload for task type '${type}' cannot be written as JSON: ${(error as Error).message}`,
    );
  }
  if (json === undefined) {
    throw invalidType(
      `The payload for task type '${type}' cannot be written as JSON (got ${typeof payload}).`,
    );
  }
  if (jsonHasLoneSurrogate(json)) {
    throw invalidType(
      `The payload for task type '${type}' is not well-formed Unicode: a string in it holds a lone ` +
        `surrogate, which has no UTF-8 form. Pass text that can be written as UTF-8.`,
    );
  }
  // Most payloads are far below the limit in UTF-16 units already; only encode when it could matter.
  if (json.length * 3 > maxBytes) {
    const size = encoder.encode(json).length;
    if (size > maxBytes) throw new PayloadTooLargeError(type, size, maxBytes);
  }
  return json;
}

/**
 * The row to insert for a task of `type` with this payload JSON and these options, each checked.
 *
 * @param handlerMaxAttempts the handler's `maxAttempts`, when the queue knows the handler: the default for a task that sets none
 * @param defaultQueue its handler's queue, when the definition names one
 */
export function newTask(
  type: string,
  payload: string,
  options: EnqueueOptions,
  now: number,
  handlerMaxAttempts?: number,
  defaultQueue: string = DEFAULT_QUEUE,
): NewTask {
  // The defaults need no check, and are what most tasks have.
  const priority = options.priority ?? DEFAULT_PRIORITY;
  const maxAttempts = options.maxAttempts ?? handlerMaxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const retry = options.retry === undefined ? null : retryOverrides("retry", options.retry);
  const unique = options.unique === undefined ? NO_UNIQUE : uniqueColumns(options.unique);
  return {
    type,
    payload,
    priority: priority === DEFAULT_PRIORITY
      ? priority
      : wholeNumber("priority", priority, -Number.MAX_SAFE_INTEGER),
    maxAttempts: maxAttempts === DEFAULT_MAX_ATTEMPTS
      ? maxAttempts
      : wholeNumber("maxAttempts", maxAttempts, 1),
    runAfter: runAfter(options, now),
    idempotencyKey: idempotencyKey(options.idempotencyKey),
    timeoutMs: options.timeoutMs === undefined ? null : duration("timeoutMs", options.timeoutMs, 1),
    retryPolicy: retry === null ? null : JSON.stringify(retry),
    queue: options.queue === undefined ? defaultQueue : queueName(options.queue),
    ...(options.dependsOn === undefined ? {} : { dependsOn: dependencyIds(options.dependsOn) }),
    uniqueKey: unique.uniqueKey,
    uniqueForMs: unique.uniqueForMs,
  };
}

/** Most dependencies one task may have. */
export const MAX_DEPENDENCIES = 10_000;

/** The `dependsOn` option, checked: task ids, each once. */
export function dependencyIds(value: unknown): number[] {
  if (!Array.isArray(value)) {
    throw invalidType(
      `dependsOn must be an array of task ids, got ${JSON.stringify(value) ?? typeof value}.`,
    );
  }
  const ids = [...new Set(value)];
  if (ids.length > MAX_DEPENDENCIES) {
    throw invalidRange(`dependsOn may name at most ${MAX_DEPENDENCIES} tasks, got ${ids.length}.`);
  }
  for (const id of ids) {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
      throw invalidType(`dependsOn must hold task ids (whole numbers from 1), got ${JSON.stringify(id)}.`);
    }
  }
  return ids as number[];
}
