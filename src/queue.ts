/**
 * The producer and admin side: enqueue, inspect, cancel, retry, purge, stats, named queues' limits and
 * pauses. `Queue` checks its options and hands each method's work to the file of its concern (enqueueMany and
 * enqueueSync call its own methods). Over 400 lines only by its JSDoc, which is the API's documentation:
 *
 * - queue/enqueue.ts: the enqueue forms, and the checks a task passes before it is written
 * - queue/actions.ts: an operator's actions: cancel, retry, delete, purge, forgetting silent workers
 * - queue/reads.ts: tasks, their dependencies and logs, stats, schedules, workers; waiting for a task
 * - queue/named_queues.ts: named queues' limits, pauses and counts
 * - queue/context.ts: what they share: the database, store, clock and checked options
 *
 * @module
 */
import { systemClock } from "./clock.ts";
import type { QueueDatabase } from "./database.ts";
import { clockOption, registryOption, wholeNumber } from "./checks.ts";
import type { QueueLimits } from "./queue_name.ts";
import type {
  DependencyIds,
  MatchedKey,
  QueueInfo,
  QueueSettings,
  QueueStats,
  RequeueFilter,
  ScheduleState,
  TaskLog,
  WorkerInfo,
} from "./store/store.ts";
import { storeOf } from "./store/store_of.ts";
import type { Task, TaskStatus } from "./task.ts";
import type { WaitForOptions } from "./wait_for.ts";
import type {
  EnqueuedTask,
  EnqueueItem,
  EnqueueOptions,
  EnqueueTransaction,
  ListOptions,
  QueueOptions,
  WriteOptions,
} from "./enqueue_item.ts";
import type { QueueContext } from "./queue/context.ts";
import * as enqueuing from "./queue/enqueue.ts";
import * as actions from "./queue/actions.ts";
import * as reads from "./queue/reads.ts";
import * as namedQueues from "./queue/named_queues.ts";

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
  readonly #context: QueueContext;

  /** @throws {TypeError | RangeError} at once, naming the first option that is wrong and what it must be */
  constructor(db: QueueDatabase, options: QueueOptions = {}) {
    this.db = db;
    this.#context = {
      db,
      store: storeOf(db),
      registry: options.registry === undefined ? undefined : registryOption("registry", options.registry),
      // On a database server, due times are the server's clock's (see QueueDatabase.clockFor).
      clock: db.clockFor(options.clock === undefined ? systemClock : clockOption("clock", options.clock)),
      maxPayloadBytes: wholeNumber(
        "maxPayloadBytes",
        options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
        1,
      ),
    };
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
  // The enqueue forms give their work's own promise (it is async: anything thrown rejects it), with no
  // hop of their own on the path a single enqueue takes.
  enqueue(
    type: string,
    payload: unknown = {},
    options: EnqueueOptions & WriteOptions = {},
  ): Promise<EnqueuedTask> {
    return enqueuing.enqueue(this.#context, type, payload, options);
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
  enqueueManyDetailed(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<EnqueueOutcome[]> {
    return enqueuing.enqueueManyDetailed(this.#context, items, options);
  }

  /**
   * Like {@link enqueueMany}, for bulk loads that need no task objects back: gives each task's id, and
   * whether it was created (false: its idempotency key was taken or its `unique` key held, by the task with
   * that id; `matchedKey` says which). Building the tasks would cost such a load about a twentieth of its time.
   */
  enqueueManyIds(
    items: readonly EnqueueItem[],
    options: WriteOptions = {},
  ): Promise<{ id: number; created: boolean; matchedKey?: MatchedKey | undefined }[]> {
    return enqueuing.enqueueManyIds(this.#context, items, options);
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
    return enqueuing.enqueueManySync(this.#context, items, options);
  }

  /** Checks one task as enqueue would, without writing anything. Throws what enqueue would throw. */
  async validate(item: EnqueueItem): Promise<void> {
    await enqueuing.validate(this.#context, item);
  }

  /** The task with this id, or undefined. */
  get(id: number): Promise<Task | undefined> {
    return reads.get(this.#context, id);
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
    return await reads.getMany(this.#context, ids);
  }
  /**
   * The ids of the tasks `id` waits for (`dependsOn`) and of those that wait for it (`dependents`), each
   * ascending, at most 1,000 of each; both empty for a task without dependencies, or no task.
   */
  dependencies(id: number): Promise<DependencyIds> {
    return reads.dependencies(this.#context, id);
  }

  /**
   * Tasks, newest first: filtered by status, type, queue, creation time and payload values; paged by
   * `limit` and `offset`, or, for long lists, by `beforeId` (the last id of the previous page), which
   * costs the same on every page.
   */
  list(options: ListOptions = {}): Promise<Task[]> {
    return reads.list(this.#context, options);
  }

  /**
   * Cancels a waiting, queued or running task, and the tasks waiting on it, down the chain (each told
   * why in its `errorMessage`). A running task's handler sees its signal abort, and whatever it returns is
   * discarded.
   *
   * @throws {TaskNotFoundError | TaskStateError}
   */
  async cancel(id: number): Promise<Task> {
    return await actions.cancel(this.#context, id);
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
    return reads.waitFor(this.#context, id, options);
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
    return await actions.retry(this.#context, id);
  }

  /**
   * Puts every failed task (of one type, when given) back in the queue; returns how many. A task whose
   * `unique` key, held while active, another task holds stays failed, and of several failed tasks with one
   * such key only the newest goes back.
   */
  async retryFailed(options: { type?: string } = {}): Promise<number> {
    return await actions.retryFailed(this.#context, options);
  }

  /**
   * Puts every task of `status` (failed or cancelled; of one type and queue, when given) back in the
   * queue, as {@link retry} would each; returns how many.
   */
  async retryWhere(filter: RequeueFilter): Promise<number> {
    return await actions.retryWhere(this.#context, filter);
  }

  /**
   * Deletes one finished task (completed, failed or cancelled) and its logs; true when deleted. The newest
   * task of all is kept (false), as {@link purge} keeps it: on SQLite its id would go to the next task.
   *
   * @throws {TaskNotFoundError} when no task has this id
   * @throws {TaskStateError} when it is queued or running: cancel it first
   */
  delete(id: number): Promise<boolean> {
    return actions.deleteTask(this.#context, id);
  }

  /** Deletes tasks that finished with one of `statuses` more than `olderThanMs` ago, and their logs. */
  purge(options: { statuses: readonly TaskStatus[]; olderThanMs: number }): Promise<number> {
    return actions.purge(this.#context, options);
  }

  /** Counts by status and type, the oldest runnable task's wait, and the last minute's throughput. */
  stats(): Promise<QueueStats> {
    return reads.stats(this.#context);
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
    return namedQueues.setQueueLimits(this.#context, name, limits);
  }

  /** Pauses a named queue: no worker claims its tasks until {@link resumeQueue}; running ones finish. */
  pauseQueue(name: string): Promise<QueueSettings> {
    return namedQueues.pauseQueue(this.#context, name);
  }

  /** Resumes a paused queue: workers claim its tasks again. */
  async resumeQueue(name: string): Promise<QueueSettings> {
    return await namedQueues.resumeQueue(this.#context, name);
  }

  /**
   * Every queue that has tasks queued or running, or settings: its limits, whether it is paused, how many
   * tasks it has queued and running, and how long its oldest runnable task has waited.
   */
  listQueues(): Promise<QueueInfo[]> {
    return namedQueues.listQueues(this.#context);
  }

  /** A task's log lines, oldest first. */
  logs(id: number): Promise<TaskLog[]> {
    return reads.logs(this.#context, id);
  }

  /**
   * What the database keeps of each schedule workers have fired or seen: when first seen, the latest slot
   * fired and its task, by name (schedules no worker declares any more included). `prismq schedules` shows
   * it beside the linked schedules' next runs.
   */
  schedules(): Promise<ScheduleState[]> {
    return reads.schedules(this.#context);
  }

  /** The workers that have registered, with their last heartbeat. */
  workers(): Promise<WorkerInfo[]> {
    return reads.workers(this.#context);
  }

  /**
   * Forgets workers silent for longer than `staleAfterMs` (a worker that was killed cannot remove its own
   * row); returns their ids. Their tasks go back to the queue through their leases, not through this.
   */
  pruneWorkers(options: { staleAfterMs: number }): Promise<string[]> {
    return actions.pruneWorkers(this.#context, options);
  }
}
