/**
 * The producer and admin side: enqueue, inspect, cancel, retry, purge, stats.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import type { QueueDatabase } from "./database.ts";
import { PayloadTooLargeError, TaskHandlerNotRegisteredError } from "./errors.ts";
import { duration, epochMs, jsonHasLoneSurrogate, MAX_EPOCH_MS, wellFormed, wholeNumber } from "./checks.ts";
import { assertTaskType, parsePayloadNow } from "./handler.ts";
import { parseIsoTime } from "./iso_time.ts";
import type { TaskHandlerRegistry } from "./registry.ts";
import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import type {
  InsertedTask,
  NewTask,
  QueueStats,
  SqlTransaction,
  TaskLog,
  WorkerInfo,
} from "./store/store.ts";
import { isTaskStatus, type Task, type TaskStatus, TERMINAL_STATUSES } from "./task.ts";

/** How and when a task runs. */
export interface EnqueueOptions {
  /** Lower numbers run first under the `priority` strategy. A whole number. @default 100 */
  priority?: number | undefined;
  /** Not before this time: a Date, epoch milliseconds, or an ISO-8601 string. */
  runAt?: Date | number | string | undefined;
  /** Not before this many milliseconds from now. Give `runAt` or `delayMs`, not both. */
  delayMs?: number | undefined;
  /** Attempts before the task fails for good. @default 5 */
  maxAttempts?: number | undefined;
  /** A second enqueue with the same key returns the first task instead of adding another. */
  idempotencyKey?: string | undefined;
  /** Per-attempt time limit; the handler's signal aborts when it passes. @default the handler's, or none */
  timeoutMs?: number | undefined;
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
  /** @default 100 */
  limit?: number | undefined;
  /** @default 0 */
  offset?: number | undefined;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
const MAX_KEY_LENGTH = 1024;

/**
 * Adds tasks to a queue database and manages them.
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase } from "./mod.ts";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const queue = new Queue(db);
 * const task = await queue.enqueue("send_email", { to: "ada@example.com" }, { priority: 10 });
 * (await queue.get(task.id))?.status; // "queued"
 * db.close();
 * ```
 */
export class Queue {
  readonly db: QueueDatabase;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #clock: Clock;
  readonly #maxPayloadBytes: number;
  readonly #encoder = new TextEncoder();

  constructor(db: QueueDatabase, options: QueueOptions = {}) {
    this.db = db;
    this.#registry = options.registry;
    this.#clock = options.clock ?? systemClock;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!(Number.isInteger(this.#maxPayloadBytes) && this.#maxPayloadBytes > 0)) {
      throw new RangeError(`maxPayloadBytes must be a whole number > 0, got ${options.maxPayloadBytes}.`);
    }
  }

  /**
   * Adds a task. With an idempotency key that is already taken, returns the existing task instead.
   *
   * @example Enqueue in the application's own transaction
   * ```ts
   * import { Queue, QueueDatabase } from "./mod.ts";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * await db.transaction(async (tx) => {
   *   await tx.execute("CREATE TABLE IF NOT EXISTS users (email TEXT)");
   *   await tx.execute("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
   *   await queue.enqueue("welcome", { email: "ada@example.com" }, { tx });
   * });
   * db.close();
   * ```
   *
   * @throws {TaskHandlerNotRegisteredError} when the queue has a registry that lacks the type
   * @throws {PayloadValidationError} when the payload fails the handler's schema
   * @throws {PayloadTooLargeError} when the payload is over `maxPayloadBytes`
   * @throws {TypeError | RangeError} for an option that makes no sense, or a `tx` that cannot be used
   */
  async enqueue(
    type: string,
    payload: unknown = {},
    options: EnqueueOptions & WriteOptions = {},
  ): Promise<Task> {
    const { tx, ...taskOptions } = options ?? {};
    const [task] = await this.enqueueMany([{ ...taskOptions, type, payload }], { tx });
    return task!;
  }

  /**
   * Adds many tasks in one transaction: all of them, or, when any is invalid, none. Tasks come back in
   * the order given.
   */
  async enqueueMany(items: readonly EnqueueItem[], options: WriteOptions = {}): Promise<Task[]> {
    return (await this.enqueueManyDetailed(items, options)).map((result) => result.task);
  }

  /** Like {@link enqueueMany}, and says for each task whether it was created or already existed. */
  async enqueueManyDetailed(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<{ task: Task; created: boolean }[]> {
    const now = this.#clock.now();
    const rows = await this.#prepareAll(items, now);
    return this.#created(rows, now, await this.#write(rows, now, options.tx));
  }

  /**
   * Like {@link enqueueMany}, for bulk loads that need no task objects back: gives each task's id, and
   * whether it was created (false: its idempotency key was taken). Building the tasks would cost such a
   * load about a twentieth of its time.
   */
  async enqueueManyIds(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<{ id: number; created: boolean }[]> {
    const now = this.#clock.now();
    const rows = await this.#prepareAll(items, now);
    const inserted = await this.#write(rows, now, options.tx);
    return inserted.map(({ id, created }) => ({ id, created }));
  }

  /**
   * {@link enqueue} inside a synchronous Drizzle transaction (the libsql, better-sqlite3 or bun:sqlite
   * driver), whose callback cannot wait for a promise: validates and writes before it returns.
   *
   * @example
   * ```ts ignore
   * db.transaction((tx) => {
   *   tx.insert(users).values({ email }).run();
   *   queue.enqueueSync("welcome", { email }, { tx });
   * });
   * ```
   *
   * @throws what {@link enqueue} throws, and a TypeError when `tx` is not synchronous or the type's payload
   *   schema validates asynchronously
   */
  enqueueSync(
    type: string,
    payload: unknown,
    options: EnqueueOptions & { tx: EnqueueTransaction },
  ): Task {
    const { tx, ...taskOptions } = options ?? {};
    return this.enqueueManySync([{ ...taskOptions, type, payload }], { tx })[0]!;
  }

  /** {@link enqueueMany} inside a synchronous Drizzle transaction; see {@link enqueueSync}. */
  enqueueManySync(items: readonly EnqueueItem[], options: { tx: EnqueueTransaction }): Task[] {
    if (options?.tx === undefined) {
      throw new TypeError("enqueueSync and enqueueManySync write through a transaction: pass { tx }.");
    }
    const now = this.#clock.now();
    const rows = this.#prepareAll(items, now);
    if (rows instanceof Promise) {
      rows.catch(() => {});
      throw new TypeError(
        "A payload schema of these task types validates asynchronously, which enqueueSync cannot wait for. " +
          "Use await queue.enqueue(…, { tx }) in an asynchronous transaction.",
      );
    }
    const inserted = this.db.store.taskInsertManyWithin(options.tx, rows, now, true);
    if (inserted instanceof Promise) throw new TypeError("The transaction answered asynchronously.");
    return this.#created(rows, now, inserted).map((result) => result.task);
  }

  /** Writes validated rows: through `tx` when given, else in a transaction of their own. */
  async #write(rows: NewTask[], now: number, tx: EnqueueTransaction | undefined): Promise<InsertedTask[]> {
    if (tx !== undefined) return await this.db.store.taskInsertManyWithin(tx, rows, now, false);
    const inserted = await this.db.store.taskInsertMany(rows, now);
    if (inserted.some((result) => result.created)) this.db.notifyTasksAvailable();
    return inserted;
  }

  #created(rows: NewTask[], now: number, inserted: InsertedTask[]): { task: Task; created: boolean }[] {
    return inserted.map(({ id, created, existing }, i) => ({
      task: existing ?? createdTask(id, rows[i]!, now),
      created,
    }));
  }

  /**
   * Validates every item and gives the rows to insert; a promise only when a payload schema is asynchronous.
   * An error names the item it is about when there are several.
   */
  #prepareAll(items: readonly EnqueueItem[], now: number): NewTask[] | Promise<NewTask[]> {
    const label = (index: number, error: unknown) => {
      if (items.length > 1 && error instanceof Error) error.message = `Task ${index + 1}: ${error.message}`;
      return error;
    };
    const rows: (NewTask | Promise<NewTask>)[] = [];
    let pending = false;
    for (const [index, item] of items.entries()) {
      try {
        const row = this.#prepare(item, now);
        if (row instanceof Promise) {
          pending = true;
          rows.push(row.catch((error) => Promise.reject(label(index, error))));
        } else rows.push(row);
      } catch (error) {
        for (const row of rows) if (row instanceof Promise) row.catch(() => {});
        throw label(index, error);
      }
    }
    return pending ? Promise.all(rows) : rows as NewTask[];
  }

  /** Checks one task as enqueue would, without writing anything. Throws what enqueue would throw. */
  async validate(item: EnqueueItem): Promise<void> {
    await this.#prepare(item, this.#clock.now());
  }

  /** The row to insert for `item`; a promise only when its payload schema is asynchronous. */
  #prepare(item: EnqueueItem, now: number): NewTask | Promise<NewTask> {
    if (typeof item !== "object" || item === null) {
      throw new TypeError("Each task must be an object with a type.");
    }
    const { type, payload = {} } = item;
    if ("tx" in item) {
      throw new TypeError("tx is not an option of one task: pass it as enqueueMany(items, { tx }).");
    }
    assertTaskType(type);
    wellFormed(`The task type ${JSON.stringify(type)}`, type);
    const info = this.#registry?.getHandlerInfo(type);
    if (this.#registry && !info) {
      throw new TaskHandlerNotRegisteredError(type, this.#registry.getRegisteredTypes());
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(payload);
    } catch (error) {
      throw new TypeError(
        `The payload for task type '${type}' cannot be written as JSON: ${(error as Error).message}`,
      );
    }
    if (json === undefined) {
      throw new TypeError(
        `The payload for task type '${type}' cannot be written as JSON (got ${typeof payload}).`,
      );
    }
    if (jsonHasLoneSurrogate(json)) {
      throw new TypeError(
        `The payload for task type '${type}' is not well-formed Unicode: a string in it holds a lone ` +
          `surrogate, which has no UTF-8 form. Pass text that can be written as UTF-8.`,
      );
    }
    // Most payloads are far below the limit in UTF-16 units already; only encode when it could matter.
    if (json.length * 3 > this.#maxPayloadBytes) {
      const size = this.#encoder.encode(json).length;
      if (size > this.#maxPayloadBytes) throw new PayloadTooLargeError(type, size, this.#maxPayloadBytes);
    }
    const row: NewTask = {
      type,
      payload: json,
      priority: wholeNumber("priority", item.priority ?? 100, -Number.MAX_SAFE_INTEGER),
      maxAttempts: wholeNumber("maxAttempts", item.maxAttempts ?? 5, 1),
      runAfter: runAfter(item, now),
      idempotencyKey: idempotencyKey(item.idempotencyKey),
      timeoutMs: item.timeoutMs === undefined ? null : duration("timeoutMs", item.timeoutMs, 1),
    };
    // The schema last: no point validating, field by field, a payload that is too large to store anyway.
    const checked = info?.schema && parsePayloadNow(type, info.schema, payload);
    return checked instanceof Promise ? checked.then(() => row) : row;
  }

  /** The task with this id, or undefined. */
  get(id: number): Promise<Task | undefined> {
    return this.db.store.taskGet(taskId(id));
  }

  /** Tasks, newest first. */
  list(options: ListOptions = {}): Promise<Task[]> {
    if (options.status !== undefined && !isTaskStatus(options.status)) {
      throw new TypeError(
        `Unknown status '${options.status}'. Use queued, running, completed, failed or cancelled.`,
      );
    }
    return this.db.store.taskList({
      status: options.status,
      type: options.type,
      limit: wholeNumber("limit", options.limit ?? 100, 1),
      offset: wholeNumber("offset", options.offset ?? 0, 0),
    });
  }

  /**
   * Cancels a queued or running task. A running task's handler sees its signal abort, and whatever it
   * returns is discarded.
   *
   * @throws {TaskNotFoundError | TaskStateError}
   */
  cancel(id: number): Promise<Task> {
    return this.db.store.taskCancel(taskId(id), this.#clock.now());
  }

  /**
   * Puts a failed or cancelled task back in the queue, runnable now, with its attempts reset.
   *
   * @throws {TaskNotFoundError | TaskStateError}
   */
  async retry(id: number): Promise<Task> {
    const task = await this.db.store.taskRequeue(taskId(id), this.#clock.now());
    this.db.notifyTasksAvailable();
    return task;
  }

  /** Puts every failed task (of one type, when given) back in the queue; returns how many. */
  async retryFailed(options: { type?: string } = {}): Promise<number> {
    const n = await this.db.store.taskRequeueFailed(options.type, this.#clock.now());
    if (n > 0) this.db.notifyTasksAvailable();
    return n;
  }

  /** Deletes tasks that finished with one of `statuses` more than `olderThanMs` ago, and their logs. */
  purge(options: { statuses: readonly TaskStatus[]; olderThanMs: number }): Promise<number> {
    for (const status of options.statuses) {
      if (!TERMINAL_STATUSES.includes(status)) {
        throw new TypeError(`Cannot purge '${status}' tasks: only completed, failed and cancelled ones.`);
      }
    }
    const olderThanMs = wholeNumber("olderThanMs", options.olderThanMs, 0);
    return this.db.store.taskPurge(
      options.statuses,
      Math.max(this.#clock.now() - olderThanMs, -MAX_EPOCH_MS),
    );
  }

  /** Counts by status and type, the oldest runnable task's wait, and the last minute's throughput. */
  stats(): Promise<QueueStats> {
    return this.db.store.taskStats(this.#clock.now());
  }

  /** A task's log lines, oldest first. */
  logs(id: number): Promise<TaskLog[]> {
    return this.db.store.taskLogList(taskId(id));
  }

  /** The workers that have registered, with their last heartbeat. */
  workers(): Promise<WorkerInfo[]> {
    return this.db.store.workerList();
  }

  /**
   * Forgets workers silent for longer than `staleAfterMs` (a worker that was killed cannot remove its own
   * row); returns their ids. Their tasks go back to the queue through their leases, not through this.
   */
  pruneWorkers(options: { staleAfterMs: number }): Promise<string[]> {
    const staleAfterMs = wholeNumber("staleAfterMs", options.staleAfterMs, 0);
    return this.db.store.workerPrune(Math.max(this.#clock.now() - staleAfterMs, -MAX_EPOCH_MS));
  }
}

function taskId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new TypeError(`A task id is a whole number ≥ 1, got ${String(id)}.`);
  }
  return id;
}

function runAfter(options: EnqueueOptions, now: number): number {
  const { runAt, delayMs } = options;
  if (runAt !== undefined && delayMs !== undefined) {
    throw new TypeError("Give runAt or delayMs, not both.");
  }
  if (delayMs !== undefined) {
    if (typeof delayMs !== "number" || !(Number.isFinite(delayMs) && delayMs >= 0)) {
      throw new RangeError(`delayMs must be a number ≥ 0, got ${String(delayMs)}.`);
    }
    const at = now + Math.round(delayMs);
    if (!(at <= MAX_EPOCH_MS)) {
      throw new RangeError(
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
    throw new RangeError(
      `runAt must be a valid Date, epoch milliseconds, or an ISO-8601 time with a zone like ` +
        `2030-01-31T09:00:00Z; got ${JSON.stringify(runAt)}.`,
    );
  }
  return epochMs("runAt", Math.round(at));
}

function idempotencyKey(key: unknown): string | null {
  if (key === undefined || key === null) return null;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`idempotencyKey must be a string of 1 to ${MAX_KEY_LENGTH} characters.`);
  }
  return wellFormed("idempotencyKey", key);
}

/** The task an insert created, built from what was inserted rather than read back. */
function createdTask(id: number, task: NewTask, now: number): Task {
  return {
    id,
    type: task.type,
    payload: JSON.parse(task.payload),
    status: "queued",
    priority: task.priority,
    attempts: 0,
    maxAttempts: task.maxAttempts,
    errorMessage: null,
    idempotencyKey: task.idempotencyKey,
    lockedBy: null,
    timeoutMs: task.timeoutMs,
    runAfter: task.runAfter,
    leaseUntil: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
  };
}
