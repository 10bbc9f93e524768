/**
 * The store contract: one method per storage operation. The queue and the worker call only these; all SQL
 * lives behind them, in one folder per database (`sqlite/`), and the conformance suite (`tests/conformance/`)
 * holds every store to what is written here. The types it speaks in are in `types.ts`.
 *
 * What every method promises, unless its own comment says otherwise:
 *
 * - **Time.** Every time is integer epoch milliseconds. `now` is the caller's clock, which
 *   `QueueDatabase.clockFor` has already corrected to the database server's clock where there is one (see
 *   {@link Store.serverTime}): a store compares and writes the times it is given and never reads a clock of
 *   its own for them, so that processes on many hosts agree, and tests drive time.
 * - **Atomicity.** A method is one transaction: a write that resolves applied all of its changes, one that
 *   rejects applied none. Nothing a method writes is seen half-done by another caller.
 * - **Transitions.** A task changes status only as `TRANSITIONS` (`task.ts`) allows; every write is
 *   conditional on the status it changes from, so that racing writers cannot leave the table.
 * - **Fencing.** A claim gives each task a fresh lease token; a {@link Fence} is the task's id and that
 *   token. A write under a fence (start, outcome, release, lease extension, heartbeat) applies only while the
 *   task is `running` with that very token, and otherwise changes nothing. That is not an error: the method
 *   says whose fence held (a set of ids, `false`, a lost lease). A token is never given out twice, and every
 *   way a task leaves `running` clears it, so a worker that lost a task (reaped, cancelled, released) can
 *   never change it again.
 * - **Idempotency.** An insert with an idempotency key creates at most one task per key and otherwise
 *   answers with the task that holds it. A fenced write repeated after it held changes nothing. `migrate`
 *   applies each migration once, however many processes call it. Ids are never reused.
 * - **Errors.** A database that cannot be used (unreachable, locked for too long, corrupt, closed) rejects
 *   with `DatabaseError`; the methods that name other errors below throw only those. A refused fence, or
 *   a task that is gone, is an answer, not an error.
 * - **Capabilities.** Some members are optional ({@link Store.serverTime}, {@link Store.backupTo},
 *   {@link Store.watchCommits}, {@link Store.exactCommitTopics}, {@link Store.leaderElect}): a store that
 *   cannot do that simply lacks the member, and callers check.
 *
 * @module
 */
import type { Task, TaskStatus } from "../task.ts";
import type {
  BackupResult,
  ClaimParams,
  CommitTopic,
  DependencyIds,
  ExpiredLease,
  Fence,
  InsertedTask,
  LeaderBid,
  LeasedTask,
  ListFilter,
  LostLease,
  MetricsQuery,
  NewTask,
  Progress,
  QueueChange,
  QueueInfo,
  QueueSettings,
  QueueStats,
  Recorded,
  RequeueFilter,
  ScheduleFire,
  ScheduleState,
  SqlTransaction,
  StoreMetrics,
  TaskLog,
  TaskLogEntry,
  ThroughputMinute,
  WaitingTasks,
  WorkerInfo,
} from "./types.ts";

export * from "./types.ts";

export interface Store {
  /**
   * The kind of database, in words, for messages: `a SQLite file`, `a SQLite database in memory`, `a libSQL
   * server`.
   */
  readonly kind: string;

  /**
   * Creates or upgrades the tables: applies the migrations not yet recorded, in one transaction, and returns
   * their versions (none when the database is current). Safe to call from many processes at once.
   *
   * @throws {DatabaseError} for a database a newer PrismQ migrated, or whose tables PrismQ did not create
   */
  migrate(now: number): Promise<number[]>;
  /**
   * Runs `fn` in a write transaction: committed when it resolves, rolled back when it rejects. The SQL
   * given to `tx` is the store's own dialect. Other calls on this store from inside `fn` would wait for the
   * transaction: a store may refuse them with a `TypeError` rather than wait forever.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;

  /**
   * Inserts `tasks`, all or none, and answers for each in the order given: created (with its new id), or
   * found, when another task holds its idempotency key (that task, `created: false`). Of several tasks in
   * one call with the same key, the first creates it. Ids grow in insertion order. `now` is their
   * `createdAt` and `updatedAt`.
   *
   * A task with `dependsOn` is linked to those tasks in the same transaction, and answers where it stands
   * (`settled`): `waiting` while some have not completed, `queued` when all have, `cancelled` (at `now`,
   * its error message naming which and why) when one has failed or was cancelled. No task may complete,
   * fail or be cancelled unseen between that look and the commit.
   *
   * @throws {DependencyError} before writing anything, for a dependency id no task has
   */
  taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]>;
  /**
   * One task, committed when it answers, as {@link taskInsertMany} would insert it; may answer at once,
   * without a promise, when nothing stands in the way of the write (the single enqueue's fast path).
   */
  taskInsertOne(task: NewTask, now: number): InsertedTask | Promise<InsertedTask>;
  /**
   * {@link taskInsertMany} through a transaction the application holds (see `EnqueueTransaction`), so that
   * the tasks commit or roll back with it. Runs synchronously while the handle answers synchronously; with
   * `sync`, refuses any other handle.
   *
   * @throws {TypeError} for a handle that is not a transaction on this database
   */
  taskInsertManyWithin(
    tx: unknown,
    tasks: readonly NewTask[],
    now: number,
    sync: boolean,
  ): InsertedTask[] | Promise<InsertedTask[]>;
  /** The task with this id, or undefined. */
  taskGet(id: number): Promise<Task | undefined>;
  /** The tasks with these ids, in any order; an id no task has is left out. At most 1,000 ids. */
  taskGetMany(ids: readonly number[]): Promise<Task[]>;
  /**
   * The ids of the tasks `id` depends on, and of those that depend on it, each ascending, at most
   * 1,000 (`MAX_DEPENDENCY_IDS`) of each. Empty for a task without any, or no task at all.
   */
  taskDependencyIds(id: number): Promise<DependencyIds>;
  /**
   * A page of tasks, the newest (highest id) first: of one status, type and queue, created in a time range,
   * with payload values, when given; below `beforeId` for keyset paging (then `offset` is usually 0).
   */
  taskList(filter: ListFilter): Promise<Task[]>;
  /**
   * Claims up to `limit` tasks runnable at `now` (`queued`, `runAfter <= now`, of `types` and in `queues`
   * when given, in no paused queue), in one atomic step: no task is claimed by two callers. Each becomes `running`, locked by `workerId`, with
   * a fresh lease token and a lease until `now + leaseMs`. The first `start` (in claim order) start now:
   * their attempt counts and `startedAt` is `now`; the rest are claimed ahead, attempts untouched.
   *
   * The result: the tasks that start first, then those claimed ahead, each part in the strategy's order:
   * `priority` by priority (lower first), then `runAfter`, then id; `fifo` by id; `lifo` by id, highest
   * first; `weighted_random` in no promised order (each runnable task's chance falls with its priority).
   *
   * **Queue limits** ({@link queueUpdate}) hold across every caller, in any process on any host: a claim
   * never leaves more of a queue's tasks `running` than its concurrency limit (every `running` task counts:
   * started, claimed ahead, or with an expired lease not yet reaped), and never claims more of its tasks in
   * one window of its rate limit than the limit allows (windows are `intervalMs` long, aligned to epoch
   * time; a claim counts when it is made). A claim may take fewer than it could from a limited queue
   * (another caller is claiming from it at that moment), and the strategy's order holds within each queue,
   * not across a limited queue and the others.
   */
  taskClaim(params: ClaimParams): Promise<LeasedTask[]>;
  /**
   * Records starts, then outcomes, in one transaction, each under its fence, and says whose fence held. A
   * start counts the task's attempt and sets `startedAt` (once). An outcome ends the lease: `completed`,
   * `failed` (with its message) or `queued` again at `runAfter` (with its message); one whose start was not
   * recorded yet counts the attempt too. A completion with a `result` stores it (JSON text) as the task's
   * result. A snooze (`snoozed`) queues the task again at `runAfter` with its attempt given back, as
   * {@link taskReleaseMany} does, and its error message kept. `now` is `updatedAt`, and `finishedAt` of a
   * finished task.
   *
   * In the same transaction, dependencies: every `waiting` task that depends on a task completed here, and
   * whose dependencies have now all completed, becomes `queued` (due at `now` at the earliest); every task
   * waiting on a task failed here, directly or down a chain, is cancelled at `now`, its error message
   * naming the dependency it waited on and the failure. Two such writes at once, on any connections, never
   * leave a task waiting whose dependencies have all completed.
   */
  taskRecord(progress: Progress, now: number): Promise<Recorded>;
  /**
   * {@link taskRecord}, then {@link taskClaim}, in one transaction: a busy worker takes the write lock once
   * per round instead of twice. The claim sees what the record wrote.
   */
  taskRecordAndClaim(progress: Progress, params: ClaimParams): Promise<Recorded & { leased: LeasedTask[] }>;
  /**
   * Hands running tasks back to the queue, runnable at once, with the attempt not counted (a task claimed
   * ahead that never started keeps its attempts as they were); returns the ids whose fence held.
   */
  taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>>;
  /** Moves one task's lease to `leaseUntil`; false when the fence no longer holds. */
  taskExtendLease(fence: Fence, leaseUntil: number, now: number): Promise<boolean>;
  /**
   * Sets a running task's progress to `progress` (JSON text) under its fence, replacing the last; false
   * when the fence no longer holds. The progress stays with the task after it finishes.
   */
  taskSetProgress(fence: Fence, progress: string, now: number): Promise<boolean>;
  /** Leases past their deadline at `now` (`leaseUntil < now`), earliest deadline first, at most `limit`. */
  taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]>;
  /**
   * Returns expired leases to the queue (runnable at `now`), or fails them when no attempts remain: all of
   * them, or only those of `only` that still have the claim and deadline given there (not renewed since).
   * A task claimed ahead whose start was never recorded goes back with its attempts untouched and never
   * fails this way; until an outcome of it is recorded, each of its starts is recorded before its handler
   * runs ({@link LeasedTask.recordStartFirst}). One transaction, which also cancels what waits on the
   * tasks it failed (as {@link taskRecord} does); returns how many of each.
   */
  taskReapExpired(now: number, only?: readonly ExpiredLease[]): Promise<{ requeued: number; failed: number }>;
  /**
   * Cancels a waiting, queued or running task (ending any lease it has) and returns it as it is now; the
   * tasks waiting on it, directly or down a chain, are cancelled in the same transaction.
   *
   * @throws {TaskNotFoundError} when no task has this id
   * @throws {TaskStateError} when its status does not allow it
   */
  taskCancel(id: number, now: number): Promise<Task>;
  /**
   * Moves a failed or cancelled task back to the queue, runnable at `now`, with its attempts reset, and
   * returns it as it is now: `waiting` instead while some of its dependencies have not completed.
   *
   * @throws {TaskNotFoundError} when no task has this id
   * @throws {TaskStateError} when its status does not allow it
   * @throws {DependencyError} when one of its dependencies is failed or cancelled (retry that one first)
   */
  taskRequeue(id: number, now: number): Promise<Task>;
  /**
   * Moves every failed task (of one type, if given) back to the queue, as {@link taskRequeue} does; returns
   * how many.
   */
  taskRequeueFailed(type: string | undefined, now: number): Promise<number>;
  /**
   * Moves every task of `filter.status` (failed or cancelled; of its type and queue, when given) back to the
   * queue, as {@link taskRequeue} does, in one statement; returns how many.
   */
  taskRequeueWhere(filter: RequeueFilter, now: number): Promise<number>;
  /**
   * Deletes one finished task (completed, failed or cancelled) and its logs; true when deleted. The newest
   * task of all is kept, as {@link taskPurge} keeps it (SQLite would give its id to the next task): false.
   *
   * @throws {TaskNotFoundError} when no task has this id
   * @throws {TaskStateError} when it is queued or running
   */
  taskDelete(id: number): Promise<boolean>;
  /** Deletes tasks of these statuses that finished before `finishedBefore`; returns how many. */
  taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number>;
  /** Counts by status and by type, the oldest runnable task's wait at `now`, the last minute's outcomes. */
  taskStats(now: number): Promise<QueueStats>;
  /**
   * Whether any task (of `types`, if given) is runnable at `now` and whether any is running, as 1 or 0
   * each; for `runLoop({ untilEmpty })`, and for an idle worker to look before it claims.
   */
  taskPending(
    now: number,
    types?: readonly string[],
    queues?: readonly string[],
  ): Promise<{ runnable: number; running: number }>;
  /** Queued tasks (of these types, if given) not runnable before a later time, and the soonest of them. */
  taskWaiting(now: number, types?: readonly string[], queues?: readonly string[]): Promise<WaitingTasks>;

  /**
   * Sets what `change` gives of a queue's settings (limits, paused), creating its row when it has none (a
   * queue without a row has no limits and is not paused), and returns them as they are now. Takes effect for
   * every claim that starts after it resolves; tasks running keep running. Changing the rate limit starts a
   * new window.
   */
  queueUpdate(name: string, change: QueueChange, now: number): Promise<QueueSettings>;
  /**
   * Every queue that has tasks queued or running or a row of settings, by name: its settings, how many tasks
   * it has queued and running, and how long its oldest runnable task has waited at `now`.
   */
  queueList(now: number): Promise<QueueInfo[]>;
  /**
   * The paused queues as this store last read them, for a worker to check before it starts a task it claimed
   * ahead: read again at most once a second, and at once after a change made through this store. Given at
   * once (not as a promise) when the last read is recent enough: a worker asks before every start.
   */
  queuePausedNames(): ReadonlySet<string> | Promise<ReadonlySet<string>>;
  /**
   * Counts again, in the rate window of `queue` that `now` falls in, `n` of its tasks that a worker claimed
   * ahead and that did not start before the end of the window their claim was counted in: as many as its
   * rate limit leaves room for in this window (none when it is full), counted as a claim would count them,
   * so that they may start until this window ends (`startBy`) instead of going back to the queue to be
   * claimed again. The window is the one a claim at `now` would count in (never one before the queue's
   * own), and the count is made under the queue's lock, as a claim's is, so that counts and claims made
   * at once by many workers never count more than the limit together. A paused queue counts none
   * (`counted` 0, `startBy` null): its tasks may not start, and go back to the queue. A queue that has no
   * rate limit now needs no count: `counted` is `n` and `startBy` null (no window holds them). Made twice,
   * it counts twice, which only ever holds more back.
   */
  queueCountAgain(
    queue: string,
    n: number,
    now: number,
  ): Promise<{ counted: number; startBy: number | null }>;

  /**
   * Extends the leases of a worker's running tasks to `leaseUntil`, each under its fence, and, when
   * `worker` is given, writes its row (created or updated), in one transaction. Returns the tasks whose
   * fence no longer holds, with their status now (`deleted` when purged).
   */
  workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]>;
  /** Deletes a worker's row; nothing when there is none. */
  workerDelete(id: string): Promise<void>;
  /** Deletes the workers whose heartbeat is older than `heartbeatBefore`; returns their ids, sorted. */
  workerPrune(heartbeatBefore: number): Promise<string[]>;
  /** Every worker's row, by id. */
  workerList(): Promise<WorkerInfo[]>;

  /** Appends log lines, all or none. */
  taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void>;
  /** A task's log lines, in the order they were appended. */
  taskLogList(taskId: number): Promise<TaskLog[]>;

  /**
   * The state of each named schedule, in the order given, creating the state of those the database has not
   * seen yet, as first seen at `now` (`since`, no slot fired). A schedule seen already keeps its state.
   */
  scheduleEnsure(names: readonly string[], now: number): Promise<ScheduleState[]>;
  /**
   * Fires one slot of a schedule: in one transaction, advances its `lastSlot` from `fire.expectedSlot` to
   * `fire.slot` (compare-and-set: only while `lastSlot` is still the expected one, and only forward,
   * `slot > lastSlot`, and `slot > since`) and inserts `fire.task`; or, when the state is not the expected
   * one, changes nothing. So each slot of a schedule fires at most once, however many callers try at once
   * and whatever happened to earlier tasks (purged, say). Made again after a lost connection, a fire that
   * had committed answers `fired: false`. A schedule without state (see {@link scheduleEnsure}) is not
   * fired.
   */
  scheduleFire(fire: ScheduleFire): Promise<{ fired: true; taskId: number } | { fired: false }>;
  /** Every schedule's state, by name, including those no worker declares any more. */
  scheduleList(): Promise<ScheduleState[]>;

  /**
   * The figures of the metrics, for the whole fleet, in one transaction: counters per task type and queue
   * (tasks enqueued, started, retried and finished by outcome, and histograms of run and wait times), what
   * each queue holds now, and the live workers. Counters never go down: the tasks {@link taskPurge} deletes
   * stay counted, and so do the outcomes {@link taskRequeue} and {@link taskRequeueFailed} clear. Outcomes
   * count when their task finishes (its `finishedAt`), starts and retries too (from its attempts); enqueues
   * when inserted; from the migration that added metrics on (the tasks the table held then are in the
   * depths, not the counters). Reads, and folds outcomes older than `settleMs` into the stored counters, so
   * that its cost follows what happened since the previous call, not the size of the table.
   */
  metricsCollect(query: MetricsQuery): Promise<StoreMetrics>;
  /**
   * Completed and failed tasks per minute, for the minutes from `since` (rounded down to a minute) to
   * `until`, oldest first, minutes without any left out. Reads the tasks that finished in that time.
   */
  metricsThroughput(since: number, until: number): Promise<ThroughputMinute[]>;

  /**
   * CAPABILITY. The database server's clock, in epoch milliseconds: present for stores that processes on
   * many hosts share, so that they compare lease deadlines and due times on one clock; absent where every
   * process reads the same machine's clock (an embedded file).
   */
  readonly serverTime?: (() => Promise<number>) | undefined;
  /**
   * CAPABILITY. Writes a consistent copy of the whole database to a local file at `path` while others keep
   * working, replacing an existing file only with `overwrite`, atomically (a failed backup leaves the
   * previous file intact); returns the copy's absolute path and size. Absent where the store cannot write
   * such a file (a database on a server).
   *
   * @throws {BackupRefusedError} before writing anything, for a path whose folder is missing, a folder, an
   *   existing file without `overwrite`, or a file of a database this process has open
   */
  readonly backupTo?:
    | ((path: string, options: { overwrite: boolean }) => Promise<BackupResult>)
    | undefined;
  /**
   * CAPABILITY. Calls `listener` soon after any connection, in any process, commits a change of `topic`;
   * returns the function that stops it (safe to call twice). Best effort: it may also be called for other
   * commits, and callers still poll. Absent where the database gives no such signal.
   */
  readonly watchCommits?: ((topic: CommitTopic, listener: () => void) => () => void) | undefined;
  /**
   * CAPABILITY, with {@link Store.watchCommits}: true where its listeners are called only after commits of
   * their topic, never for others (a claim, a completion, a heartbeat), and once more each time the store
   * starts listening, for what committed before. An idle worker woken by `"tasks"` then claims at once:
   * the look it takes first elsewhere (is anything runnable?) would tell it only what the call did. Absent
   * where a listener is called for every commit (a file's write-ahead log changes with each one).
   */
  readonly exactCommitTopics?: true | undefined;

  /**
   * CAPABILITY. Elects a leader for work the fleet does once (reaping now): takes or renews the lease of
   * `bid.name` for `bid.leaderId` until `bid.now + bid.ttlMs`, when no one holds it, when its holder's
   * lease has expired (`expiresAt < now`), or when `leaderId` holds it already; returns whether `leaderId`
   * holds it now. One atomic step: of bids at once, one wins. Present for stores that processes on many
   * hosts share; absent on an embedded file, where every worker does that work itself, as before (a reap
   * is conditional, so two at once change nothing twice). With it comes {@link Store.leaderResign}.
   */
  readonly leaderElect?: ((bid: LeaderBid) => Promise<boolean>) | undefined;
  /**
   * CAPABILITY, with {@link Store.leaderElect}. Ends `leaderId`'s lease of `name` if it holds it, so that
   * another worker can be elected at once; true when it held it.
   */
  readonly leaderResign?: ((name: string, leaderId: string) => Promise<boolean>) | undefined;

  /**
   * Closes the store once its callers are done with it (workers stopped). Resolves when its connection is
   * given back; closing again returns the same promise. Every call after it rejects with a DatabaseError.
   */
  close(): Promise<void>;
}
