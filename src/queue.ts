/**
 * The producer and admin side: enqueue, inspect, cancel, retry, purge, stats, named queues' limits and
 * pauses. Over 400 lines: one class that users meet as one page of methods, each a few lines over the store.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import { DatabaseClock } from "./database_clock.ts";
import type { QueueDatabase } from "./database.ts";
import { invalidRange, invalidType, TaskHandlerNotRegisteredError } from "./errors.ts";
import { clockOption, MAX_EPOCH_MS, registryOption, wellFormed, wholeNumber } from "./checks.ts";
import { assertTaskType, parsePayloadNow } from "./handler.ts";
import type { TaskHandlerRegistry } from "./registry.ts";
import { concurrencyLimit, type QueueLimits, queueName, rateLimit } from "./queue_name.ts";
import type {
  DependencyIds,
  InsertedTask,
  MatchedKey,
  NewTask,
  QueueInfo,
  QueueSettings,
  QueueStats,
  RequeueFilter,
  ScheduleState,
  Store,
  TaskLog,
  WorkerInfo,
} from "./store/store.ts";
import { storeOf } from "./store/store_of.ts";
import { listFilter } from "./list_filter.ts";
import { type Task, type TaskStatus, TERMINAL_STATUSES } from "./task.ts";
import { type WaitForOptions, waitForTask } from "./wait_for.ts";
import {
  type EnqueuedTask,
  enqueuedTask,
  type EnqueueItem,
  type EnqueueOptions,
  type EnqueueTransaction,
  type ListOptions,
  newTask,
  payloadJson,
  type QueueOptions,
  uniqueColumns,
  type WriteOptions,
} from "./enqueue_item.ts";

export type { WaitForOptions } from "./wait_for.ts";
export type {
  EnqueuedTask,
  EnqueueItem,
  EnqueueOptions,
  EnqueueTransaction,
  ListOptions,
  QueueOptions,
  UniqueOptions,
  WriteOptions,
} from "./enqueue_item.ts";

/** One task's outcome in {@link Queue.enqueueManyDetailed}. */
export interface EnqueueOutcome {
  /** The task created, or the one that held one of its keys. */
  task: EnqueuedTask;
  created: boolean;
  /** When not created: the key by which the existing task was found. */
  matchedKey?: MatchedKey | undefined;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Adds tasks to a queue database and manages them.
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const queue = new Queue(db);
 * const task = await queue.enqueue("send_email", { to: "ada@example.com" }, { priority: 10 });
 * (await queue.get(task.id))?.status; // "queued"
 * await db.close();
 * ```
 */
export class Queue {
  readonly db: QueueDatabase;
  readonly #store: Store;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #clock: Clock;
  readonly #maxPayloadBytes: number;

  /** @throws {TypeError | RangeError} at once, naming the first option that is wrong and what it must be */
  constructor(db: QueueDatabase, options: QueueOptions = {}) {
    this.db = db;
    this.#store = storeOf(db);
    this.#registry = options.registry === undefined
      ? undefined
      : registryOption("registry", options.registry);
    // On a database server, due times are the server's clock's (see QueueDatabase.clockFor).
    this.#clock = db.clockFor(
      options.clock === undefined ? systemClock : clockOption("clock", options.clock),
    );
    this.#maxPayloadBytes = wholeNumber(
      "maxPayloadBytes",
      options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      1,
    );
  }

  /**
   * Adds a task and returns it with `created: true`. When another task holds its idempotency key, or its
   * `unique` key (see {@link UniqueOptions}), adds nothing and returns that task, with `created: false` and
   * `matchedKey` saying which key.
   *
   * @example Enqueue in the application's own transaction
   * ```ts
   * import { Queue, QueueDatabase } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * await db.transaction(async (tx) => {
   *   await tx.execute("CREATE TABLE IF NOT EXISTS users (email TEXT)");
   *   await tx.execute("INSERT INTO users (email) VALUES (?)", ["ada@example.com"]);
   *   await queue.enqueue("welcome", { email: "ada@example.com" }, { tx });
   * });
   * await db.close();
   * ```
   *
   * @example Fan out, then fan in: a task that waits for others (see `dependsOn`)
   * ```ts
   * import { Queue, QueueDatabase } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * const parts = await queue.enqueueMany([1, 2, 3].map((n) => ({ type: "part", payload: { n } })));
   * const ids = parts.map((part) => part.id);
   * const total = await queue.enqueue("total", { ids }, { dependsOn: ids });
   * if (total.status !== "waiting") throw new Error("it waits until every part has completed");
   * await db.close();
   * ```
   *
   * @throws {TaskHandlerNotRegisteredError} when the queue has a registry that lacks the type
   * @throws {PayloadValidationError} when the payload fails the handler's schema
   * @throws {PayloadTooLargeError} when the payload is over `maxPayloadBytes`
   * @throws {DependencyError} when `dependsOn` names a task that does not exist
   * @throws {TypeError | RangeError} for an option that makes no sense, or a `tx` that cannot be used
   */
  async enqueue(
    type: string,
    payload: unknown = {},
    options: EnqueueOptions & WriteOptions = {},
  ): Promise<EnqueuedTask> {
    // enqueueMany's work for one task, without its arrays and copies: the single enqueue is the hot path.
    options ??= {};
    if (typeof options !== "object") throw invalidType("The options must be an object.");
    const syncing = this.#clockSync();
    if (syncing) await syncing;
    const now = this.#clock.now();
    const prepared = this.#prepareOne(type, payload, options, now);
    const row = prepared instanceof Promise ? await prepared : prepared;
    if (options.tx !== undefined) {
      const [inserted] = await this.#write([row], now, options.tx);
      return enqueuedTask(inserted!, row, now);
    }
    const pending = this.#store.taskInsertOne(row, now);
    const inserted = pending instanceof Promise ? await pending : pending;
    if (inserted.created) this.db.notifyTasksAvailable();
    return enqueuedTask(inserted, row, now);
  }

  /**
   * Adds many tasks in one transaction: all of them, or, when any is invalid, none. Tasks come back in
   * the order given, each with `created` (and `matchedKey` when false), as {@link enqueue} returns them.
   */
  async enqueueMany(items: readonly EnqueueItem[], options: WriteOptions = {}): Promise<EnqueuedTask[]> {
    return (await this.enqueueManyDetailed(items, options)).map((result) => result.task);
  }

  /**
   * Like {@link enqueueMany}, and says for each task whether it was created or already existed, and then by
   * which key (`matchedKey`: `"idempotencyKey"` or `"unique"`).
   */
  async enqueueManyDetailed(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<EnqueueOutcome[]> {
    const syncing = this.#clockSync();
    if (syncing) await syncing;
    const now = this.#clock.now();
    const rows = await this.#prepareAll(items, now);
    return this.#created(rows, now, await this.#write(rows, now, options.tx));
  }

  /**
   * Like {@link enqueueMany}, for bulk loads that need no task objects back: gives each task's id, and
   * whether it was created (false: its idempotency key was taken or its `unique` key held, by the task with
   * that id; `matchedKey` says which). Building the tasks would cost such a load about a twentieth of its time.
   */
  async enqueueManyIds(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<{ id: number; created: boolean; matchedKey?: MatchedKey | undefined }[]> {
    const syncing = this.#clockSync();
    if (syncing) await syncing;
    const now = this.#clock.now();
    const rows = await this.#prepareAll(items, now);
    const inserted = await this.#write(rows, now, options.tx);
    return inserted.map(({ id, created, matchedKey }) =>
      matchedKey === undefined ? { id, created } : { id, created, matchedKey }
    );
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
  ): EnqueuedTask {
    const { tx, ...taskOptions } = options ?? {};
    return this.enqueueManySync([{ ...taskOptions, type, payload }], { tx })[0]!;
  }

  /** {@link enqueueMany} inside a synchronous Drizzle transaction; see {@link enqueueSync}. */
  enqueueManySync(items: readonly EnqueueItem[], options: { tx: EnqueueTransaction }): EnqueuedTask[] {
    if (options?.tx === undefined) {
      throw invalidType("enqueueSync and enqueueManySync write through a transaction: pass { tx }.");
    }
    const now = this.#clock.now();
    const rows = this.#prepareAll(items, now);
    if (rows instanceof Promise) {
      rows.catch(() => {});
      throw invalidType(
        "A payload schema of these task types validates asynchronously, which enqueueSync cannot wait for. " +
          "Use await queue.enqueue(…, { tx }) in an asynchronous transaction.",
      );
    }
    const inserted = this.#store.taskInsertManyWithin(options.tx, rows, now, true);
    if (inserted instanceof Promise) throw invalidType("The transaction answered asynchronously.");
    return this.#created(rows, now, inserted).map((result) => result.task);
  }

  /** Writes validated rows: through `tx` when given, else in a transaction of their own. */
  async #write(rows: NewTask[], now: number, tx: EnqueueTransaction | undefined): Promise<InsertedTask[]> {
    if (tx !== undefined) return await this.#store.taskInsertManyWithin(tx, rows, now, false);
    const inserted = await this.#store.taskInsertMany(rows, now);
    if (inserted.some((result) => result.created)) this.db.notifyTasksAvailable();
    return inserted;
  }

  #created(rows: NewTask[], now: number, inserted: InsertedTask[]): EnqueueOutcome[] {
    return inserted.map((result, i) => {
      const task = enqueuedTask(result, rows[i]!, now);
      return result.matchedKey === undefined
        ? { task, created: result.created }
        : { task, created: result.created, matchedKey: result.matchedKey };
    });
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
      throw invalidType("Each task must be an object with a type.");
    }
    const { type, payload = {} } = item;
    if ("tx" in item) {
      throw invalidType("tx is not an option of one task: pass it as enqueueMany(items, { tx }).");
    }
    return this.#prepareOne(type, payload, item, now);
  }

  /** {@link #prepare} for a type, a payload and the options of one task. */
  #prepareOne(type: string, payload: unknown, item: EnqueueOptions, now: number): NewTask | Promise<NewTask> {
    assertTaskType(type);
    wellFormed(`The task type ${JSON.stringify(type)}`, type);
    const info = this.#registry?.getHandlerInfo(type);
    if (this.#registry && !info) {
      throw new TaskHandlerNotRegisteredError(type, this.#registry.getRegisteredTypes());
    }
    const row = newTask(
      type,
      payloadJson(type, payload, this.#maxPayloadBytes),
      item,
      now,
      info?.maxAttempts,
      info?.queue,
    );
    // The schema last: no point validating, field by field, a payload that is too large to store anyway.
    const checked = info?.schema && parsePayloadNow(type, info.schema, payload);
    const keyOf = item.unique === undefined ? info?.unique : undefined;
    if (keyOf === undefined) return checked instanceof Promise ? checked.then(() => row) : row;
    // The handler's default key, from the payload as validated (as given, when the handler has no schema).
    const withKey = (output: unknown) =>
      Object.assign(row, handlerUnique(type, keyOf(info?.schema ? output : payload)));
    return checked instanceof Promise ? checked.then(withKey) : withKey(checked);
  }

  /** The first measurement of a server clock's offset, before the first due time is computed on it. */
  #clockSync(): Promise<void> | undefined {
    const clock = this.#clock;
    return clock instanceof DatabaseClock && !clock.synced ? clock.sync() : undefined;
  }

  /** Calls `write` with the time now, on a server clock once its offset has been measured. */
  #atNow<T>(write: (now: number) => Promise<T>): Promise<T> {
    const syncing = this.#clockSync();
    return syncing ? syncing.then(() => write(this.#clock.now())) : write(this.#clock.now());
  }

  /** The task with this id, or undefined. */
  get(id: number): Promise<Task | undefined> {
    return this.#store.taskGet(taskId(id));
  }

  /**
   * The tasks with these ids (at most 1,000), in the order given; `undefined` for an id no task has. A
   * fan-in task reads the results of the tasks it depends on with it.
   *
   * @example
   * ```ts
   * import { Queue, QueueDatabase } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * const a = await queue.enqueue("part", { n: 1 });
   * const b = await queue.enqueue("part", { n: 2 });
   * const [first, second, none] = await queue.getMany([a.id, b.id, 999]);
   * if (first?.id !== a.id || second?.id !== b.id || none !== undefined) throw new Error("unexpected");
   * await db.close();
   * ```
   */
  async getMany(ids: readonly number[]): Promise<(Task | undefined)[]> {
    if (!Array.isArray(ids)) throw invalidType("getMany takes an array of task ids.");
    const checked = ids.map((id) => taskId(id));
    if (checked.length > 1000) {
      throw invalidRange(`getMany reads at most 1,000 tasks, got ${checked.length}.`);
    }
    const byId = new Map(
      (await this.#store.taskGetMany([...new Set(checked)])).map((task) => [task.id, task]),
    );
    return checked.map((id) => byId.get(id));
  }
  /**
   * The ids of the tasks `id` waits for (`dependsOn`) and of those that wait for it (`dependents`), each
   * ascending, at most 1,000 of each; both empty for a task without dependencies, or no task.
   */
  dependencies(id: number): Promise<DependencyIds> {
    return this.#store.taskDependencyIds(taskId(id));
  }

  /**
   * Tasks, newest first: filtered by status, type, queue, creation time and payload values; paged by
   * `limit` and `offset`, or, for long lists, by `beforeId` (the last id of the previous page), which
   * costs the same on every page.
   */
  list(options: ListOptions = {}): Promise<Task[]> {
    return this.#store.taskList(listFilter(options));
  }

  /**
   * Cancels a waiting, queued or running task, and the tasks waiting on it, down the chain (each told
   * why in its `errorMessage`). A running task's handler sees its signal abort, and whatever it returns is
   * discarded.
   *
   * @throws {TaskNotFoundError | TaskStateError}
   */
  async cancel(id: number): Promise<Task> {
    const checkedId = taskId(id);
    const task = await this.#atNow((now) => this.#store.taskCancel(checkedId, now));
    this.db.notifyTasksFinished();
    return task;
  }

  /**
   * Waits for a task to finish and resolves with it: completed (its `result` set when the handler returned
   * one), failed or cancelled. Woken when a worker or a cancel in any process finishes a task (as idle
   * workers are woken: the store's commit signal, LISTEN/NOTIFY on PostgreSQL), with a slow poll behind it;
   * it never polls busily. For request/response uses, with a `timeoutMs` or a `signal`.
   *
   * @example
   * ```ts
   * import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const registry = new TaskHandlerRegistry();
   * registry.registerHandler("add", (task) => {
   *   const { a, b } = task.payload as { a: number; b: number };
   *   return a + b; // stored as the task's result
   * });
   * const queue = new Queue(db, { registry });
   * const task = await queue.enqueue("add", { a: 40, b: 2 });
   * const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry });
   * const running = worker.runLoop({ untilEmpty: true });
   * const done = await queue.waitFor(task.id, { timeoutMs: 10_000 });
   * done.status; // "completed"
   * done.result; // 42
   * await running;
   * await db.close();
   * ```
   *
   * @throws {TaskNotFoundError} when no task has this id (or it was purged while waited for)
   * @throws {WaitTimeoutError} when `timeoutMs` passed first; the task is left as it is
   * @throws the signal's reason when `signal` aborted first
   */
  waitFor(id: number, options: WaitForOptions = {}): Promise<Task> {
    const checkedId = taskId(id);
    return waitForTask(this.db, this.#store, checkedId, options ?? {});
  }

  /**
   * Puts a failed or cancelled task back in the queue, runnable now, with its attempts reset; `waiting`
   * instead while some of its dependencies have not completed.
   *
   * @throws {TaskNotFoundError | TaskStateError}
   * @throws {DependencyError} while one of its dependencies is failed or cancelled: retry that one first
   * @throws {UniqueKeyHeldError} when its `unique` key, held while active, is held by another task now
   *   (`holderId`); nothing changes. A window key never stops a retry.
   */
  async retry(id: number): Promise<Task> {
    const checkedId = taskId(id);
    const task = await this.#atNow((now) => this.#store.taskRequeue(checkedId, now));
    this.db.notifyTasksAvailable();
    return task;
  }

  /**
   * Puts every failed task (of one type, when given) back in the queue; returns how many. A task whose
   * `unique` key, held while active, another task holds stays failed, and of several failed tasks with one
   * such key only the newest goes back.
   */
  async retryFailed(options: { type?: string } = {}): Promise<number> {
    const n = await this.#atNow((now) => this.#store.taskRequeueFailed(options.type, now));
    if (n > 0) this.db.notifyTasksAvailable();
    return n;
  }

  /**
   * Puts every task of `status` (failed or cancelled; of one type and queue, when given) back in the
   * queue, as {@link retry} would each; returns how many.
   */
  async retryWhere(filter: RequeueFilter): Promise<number> {
    if (typeof filter !== "object" || filter === null) throw invalidType("The filter must be an object.");
    if (filter.status !== "failed" && filter.status !== "cancelled") {
      throw invalidType(`Cannot retry '${filter.status}' tasks: only failed or cancelled ones.`);
    }
    const checked: RequeueFilter = {
      status: filter.status,
      type: filter.type === undefined ? undefined : wellFormed("type", String(filter.type)),
      queue: filter.queue === undefined ? undefined : queueName(filter.queue),
    };
    const n = await this.#atNow((now) => this.#store.taskRequeueWhere(checked, now));
    if (n > 0) this.db.notifyTasksAvailable();
    return n;
  }

  /**
   * Deletes one finished task (completed, failed or cancelled) and its logs; true when deleted. The newest
   * task of all is kept (false), as {@link purge} keeps it: on SQLite its id would go to the next task.
   *
   * @throws {TaskNotFoundError} when no task has this id
   * @throws {TaskStateError} when it is queued or running: cancel it first
   */
  delete(id: number): Promise<boolean> {
    return this.#store.taskDelete(taskId(id));
  }

  /** Deletes tasks that finished with one of `statuses` more than `olderThanMs` ago, and their logs. */
  purge(options: { statuses: readonly TaskStatus[]; olderThanMs: number }): Promise<number> {
    for (const status of options.statuses) {
      if (!TERMINAL_STATUSES.includes(status)) {
        throw invalidType(`Cannot purge '${status}' tasks: only completed, failed and cancelled ones.`);
      }
    }
    const olderThanMs = wholeNumber("olderThanMs", options.olderThanMs, 0);
    return this.#atNow((now) =>
      this.#store.taskPurge(options.statuses, Math.max(now - olderThanMs, -MAX_EPOCH_MS))
    );
  }

  /** Counts by status and type, the oldest runnable task's wait, and the last minute's throughput. */
  stats(): Promise<QueueStats> {
    return this.#atNow((now) => this.#store.taskStats(now));
  }

  /**
   * Sets a named queue's fleet-wide limits, enforced by the database at every claim, in every process on
   * every host: `concurrency`, at most that many of its tasks running at once (claimed ahead included);
   * `rate`, at most `limit` of its tasks starting per `intervalMs` (in windows aligned to epoch time, so up
   * to twice the limit across a window's edge). `null` removes a limit; a limit left out keeps its value.
   * Takes effect for the claims that start after it resolves (on PostgreSQL, workers of other processes
   * claim from a newly limited queue within a second); running tasks keep running.
   *
   * @example
   * ```ts
   * import { Queue, QueueDatabase } from "prismq";
   * const db = new QueueDatabase(":memory:");
   * await db.initializeSchema();
   * const queue = new Queue(db);
   * await queue.setQueueLimits("emails", { concurrency: 5, rate: { limit: 100, intervalMs: 1000 } });
   * await queue.enqueue("send_email", { to: "ada@example.com" }, { queue: "emails" });
   * (await queue.listQueues()).find((q) => q.name === "emails")?.concurrency; // 5
   * await db.close();
   * ```
   *
   * @throws {TypeError | RangeError} for a name or limit that cannot be one
   */
  setQueueLimits(name: string, limits: Partial<QueueLimits>): Promise<QueueSettings> {
    const checked = queueName(name);
    if (typeof limits !== "object" || limits === null) throw invalidType("The limits must be an object.");
    const change = {
      ...(limits.concurrency === undefined ? {} : { concurrency: concurrencyLimit(limits.concurrency) }),
      ...(limits.rate === undefined ? {} : { rate: rateLimit(limits.rate) }),
    };
    return this.#atNow((now) => this.#store.queueUpdate(checked, change, now));
  }

  /** Pauses a named queue: no worker claims its tasks until {@link resumeQueue}; running ones finish. */
  pauseQueue(name: string): Promise<QueueSettings> {
    const checked = queueName(name);
    return this.#atNow((now) => this.#store.queueUpdate(checked, { paused: true }, now));
  }

  /** Resumes a paused queue: workers claim its tasks again. */
  async resumeQueue(name: string): Promise<QueueSettings> {
    const checked = queueName(name);
    const settings = await this.#atNow((now) => this.#store.queueUpdate(checked, { paused: false }, now));
    this.db.notifyTasksAvailable();
    return settings;
  }

  /**
   * Every queue that has tasks queued or running, or settings: its limits, whether it is paused, how many
   * tasks it has queued and running, and how long its oldest runnable task has waited.
   */
  listQueues(): Promise<QueueInfo[]> {
    return this.#atNow((now) => this.#store.queueList(now));
  }

  /** A task's log lines, oldest first. */
  logs(id: number): Promise<TaskLog[]> {
    return this.#store.taskLogList(taskId(id));
  }

  /**
   * What the database keeps of each schedule workers have fired or seen: when first seen, the latest slot
   * fired and its task, by name (schedules no worker declares any more included). `prismq schedules` shows
   * it beside the linked schedules' next runs.
   */
  schedules(): Promise<ScheduleState[]> {
    return this.#store.scheduleList();
  }

  /** The workers that have registered, with their last heartbeat. */
  workers(): Promise<WorkerInfo[]> {
    return this.#store.workerList();
  }

  /**
   * Forgets workers silent for longer than `staleAfterMs` (a worker that was killed cannot remove its own
   * row); returns their ids. Their tasks go back to the queue through their leases, not through this.
   */
  pruneWorkers(options: { staleAfterMs: number }): Promise<string[]> {
    const staleAfterMs = wholeNumber("staleAfterMs", options.staleAfterMs, 0);
    return this.#atNow((now) => this.#store.workerPrune(Math.max(now - staleAfterMs, -MAX_EPOCH_MS)));
  }
}

/** The columns of the `unique` a handler's default gave, checked; a wrong one names the handler. */
function handlerUnique(type: string, unique: unknown): Pick<NewTask, "uniqueKey" | "uniqueForMs"> {
  try {
    return uniqueColumns(unique);
  } catch (error) {
    if (error instanceof Error) {
      error.message = `The unique of handler '${type}' gave a wrong value: ${error.message}`;
    }
    throw error;
  }
}

function taskId(id: number): number {
  return wholeNumber("A task id", id, 1);
}
