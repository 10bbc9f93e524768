/**
 * The Store on libSQL (SQLite), written with Drizzle: the `Store` contract wired to the query files in
 * `queries/`, one per concern. Every write is one statement, or one batch whose first statement writes, so
 * SQLite takes the write lock before it reads anything (the same effect as `BEGIN IMMEDIATE`); the one
 * read-then-write transaction, migration, uses `BEGIN IMMEDIATE` itself. Over 400 lines: one short method
 * per operation of the contract, each wiring a query file, as the PostgreSQL store's.
 *
 * @module
 */
import type { Task, TaskStatus } from "../../task.ts";
import type {
  BackupResult,
  ClaimParams,
  CommitTopic,
  DependencyIds,
  ExpiredLease,
  Fence,
  InsertedTask,
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
  Store,
  StoreMetrics,
  TaskLog,
  TaskLogEntry,
  ThroughputMinute,
  WaitingTasks,
  WorkerInfo,
} from "../store.ts";
import {
  adoptTransaction,
  after,
  insertWithin,
  type MaybePromise,
  ownTransaction,
  rowsRunnerOf,
} from "./app_transaction.ts";
import { backupDatabase } from "./backup.ts";
import type { Connection } from "./connection.ts";
import type { SqlStatement, StatementResult } from "./driver.ts";
import { claimWithLimits, countAgain, HeldQueueNames, limitedScope, withStartBy } from "../limited_claim.ts";
import { countAgainOps, heldQueueRows, limitedClaimOps, listQueues, updateQueue } from "./queries/queues.ts";
import { migrate } from "./migrate.ts";
import { claimStatement, leasedFrom, needsOrderIndex, ORDER_INDEX } from "./queries/claim.ts";
import { insertWithDependencies } from "./queries/dependencies.ts";
import { mergedClaimStatement } from "./queries/merged_claim.ts";
import { insertMany, insertOne } from "./queries/insert.ts";
import { expiredLeases, extendLease, heartbeat, reapExpired, releaseMany } from "./queries/leases.ts";
import { appendLogs, listLogs } from "./queries/logs.ts";
import { cancel, deleteTask, purge, requeue, requeueFailed, requeueWhere } from "./queries/manage.ts";
import { collectMetrics, throughput } from "./queries/metrics.ts";
import { progressStatements, record, recordedFrom } from "./queries/outcomes.ts";
import { setProgress } from "./queries/progress.ts";
import {
  dependencyIds,
  getTask,
  getTasks,
  listTasks,
  pending,
  serverTime,
  stats,
  waiting,
} from "./queries/read.ts";
import { ensureSchedules, fireSchedule, listSchedules } from "./queries/schedules.ts";
import { deleteWorker, listWorkers, pruneWorkers } from "./queries/workers.ts";
import { all } from "./sql.ts";

/**
 * How long the names of the limited queues are trusted before a claim reads them again: a queue limited by
 * another process is claimed from (under its limits) within this long; it is never claimed from beyond them.
 */
const LIMITED_NAMES_TTL_MS = 1000;

/** How {@link SqliteStore.kind} names each kind of location. */
const KIND_NAMES: Record<Connection["kind"], string> = {
  file: "a SQLite file",
  memory: "a SQLite database in memory",
  server: "a libSQL server",
};

export class SqliteStore implements Store {
  readonly #conn: Connection;
  /** Whether this store has made sure of the fifo/lifo claim index (see {@link ORDER_INDEX}). */
  #hasOrderIndex = false;
  /** Which queues have limits: claims from them take the limited path (see `limited_claim.ts`). */
  readonly #heldNames = new HeldQueueNames(() => heldQueueRows(this.#conn), LIMITED_NAMES_TTL_MS);

  readonly kind: string;
  #closed: Promise<void> | undefined = undefined;
  /** On a libSQL server only. */
  readonly serverTime: (() => Promise<number>) | undefined;
  /** On a file or in memory: a backup writes a local file. */
  readonly backupTo: ((path: string, options: { overwrite: boolean }) => Promise<BackupResult>) | undefined;
  /**
   * On a file only: a commit by any process changes its write-ahead log, which this watches (the topic
   * makes no difference). In memory there is no log; a libSQL server sends no such signal.
   */
  readonly watchCommits: ((topic: CommitTopic, listener: () => void) => () => void) | undefined;
  /** Never: a file's write-ahead log changes with every commit, whatever it changed. */
  readonly exactCommitTopics: undefined = undefined;

  constructor(connection: Connection) {
    this.#conn = connection;
    this.kind = KIND_NAMES[connection.kind];
    this.serverTime = connection.isRemote ? () => serverTime(connection) : undefined;
    this.backupTo = connection.isRemote
      ? undefined
      : (path, { overwrite }) => backupDatabase(connection, path, overwrite);
    this.watchCommits = connection.kind === "file"
      ? (_topic, listener) => connection.watchCommits(listener)
      : undefined;
  }

  migrate(now: number): Promise<number[]> {
    return migrate(this.#conn, now);
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return ownTransaction(this.#conn, fn);
  }

  // ---- Enqueue ----

  taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    if (!tasks.some(hasDependencies)) return insertMany(this.#conn, tasks, now);
    // Checked, inserted and linked in one write transaction: no dependency can finish in between.
    return this.#conn.transaction(async (tx) => {
      const run = rowsRunnerOf(tx);
      return await insertWithDependencies(run, tasks, now, () => insertWithin(run, tasks, now));
    });
  }

  taskInsertOne(task: NewTask, now: number): InsertedTask | Promise<InsertedTask> {
    if (hasDependencies(task)) return this.taskInsertMany([task], now).then(([inserted]) => inserted!);
    return insertOne(this.#conn, task, now);
  }

  taskInsertManyWithin(
    tx: unknown,
    tasks: readonly NewTask[],
    now: number,
    sync: boolean,
  ): MaybePromise<InsertedTask[]> {
    const location = { owner: this.#conn, filePath: this.#conn.filePath };
    return after(
      adoptTransaction(tx, location, sync),
      (run) => insertWithDependencies(run, tasks, now, () => insertWithin(run, tasks, now)),
    );
  }

  // ---- Claims and outcomes: the hot path ----

  async taskClaim(params: ClaimParams): Promise<LeasedTask[]> {
    const limited = await this.#limitedScope(params);
    if (limited) return (await this.#claimLimited([], params, limited.skipFree)).leased;
    const { values } = await this.#conn.execute(await this.#claimStatement(params));
    return leasedFrom(values, params);
  }

  /** Whether a claim of `params` must take from limited queues, and whether from those alone. */
  async #limitedScope(params: ClaimParams): Promise<{ skipFree: boolean } | undefined> {
    const pending = this.#heldNames.get();
    const scope = limitedScope(params, (pending instanceof Promise ? await pending : pending).limited);
    return scope.limited ? scope : undefined;
  }

  /**
   * `statements` (a record's), then a claim from free and limited queues, in one write transaction: no
   * other claim can run between a limited queue's count of running tasks and its claim.
   */
  async #claimLimited(
    statements: readonly SqlStatement[],
    params: ClaimParams,
    skipFree: boolean,
  ): Promise<{ results: StatementResult[]; leased: LeasedTask[] }> {
    await this.#claimStatement(params);
    return await this.#conn.transaction(async (tx) => {
      const results: StatementResult[] = [];
      for (const statement of statements) results.push(await tx.execute(statement));
      const { rows, startBy } = await claimWithLimits(params, limitedClaimOps(tx), skipFree);
      return { results, leased: withStartBy(leasedFrom(rows, params), startBy) };
    });
  }

  async #claimStatement(params: ClaimParams): Promise<SqlStatement> {
    if (needsOrderIndex(params.strategy) && !this.#hasOrderIndex) {
      await all(this.#conn, ORDER_INDEX);
      this.#hasOrderIndex = true;
    }
    // By priority, a claim that names its queues, or that must pass held ones by, reads each queue's best
    // tasks from the index led by the queue (see `merged_claim.ts`); otherwise it walks the priority index.
    if (params.strategy === "priority") {
      const pending = this.#heldNames.get();
      const { held } = pending instanceof Promise ? await pending : pending;
      if (params.queues !== undefined || held.length > 0) return mergedClaimStatement(params, [], true);
    }
    return claimStatement(params);
  }

  taskRecord(progress: Progress, now: number): Promise<Recorded> {
    return record(this.#conn, progress, now);
  }

  /** {@link taskRecord} then {@link taskClaim}, in one transaction. */
  async taskRecordAndClaim(
    progress: Progress,
    params: ClaimParams,
  ): Promise<Recorded & { leased: LeasedTask[] }> {
    const statements = progressStatements(progress, params.now);
    if (statements.length === 0) {
      return { started: new Set(), finished: new Set(), leased: await this.taskClaim(params) };
    }
    const limited = await this.#limitedScope(params);
    if (limited) {
      const { results, leased } = await this.#claimLimited(statements, params, limited.skipFree);
      return { ...recordedFrom(progress, results), leased };
    }
    const results = await this.#conn.batch([...statements, await this.#claimStatement(params)]);
    const claimed = results.pop()!;
    return { ...recordedFrom(progress, results), leased: leasedFrom(claimed.values, params) };
  }

  // ---- Leases ----

  taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>> {
    return releaseMany(this.#conn, fences, now);
  }

  taskExtendLease(fence: Fence, leaseUntil: number, _now: number): Promise<boolean> {
    return extendLease(this.#conn, fence, leaseUntil);
  }

  taskSetProgress(fence: Fence, progress: string, now: number): Promise<boolean> {
    return setProgress(this.#conn, fence, progress, now);
  }

  taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]> {
    return expiredLeases(this.#conn, now, limit);
  }

  taskReapExpired(
    now: number,
    only?: readonly ExpiredLease[],
  ): Promise<{ requeued: number; failed: number }> {
    return reapExpired(this.#conn, now, only);
  }

  workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]> {
    return heartbeat(this.#conn, worker, fences, leaseUntil);
  }

  // ---- Operators ----

  taskCancel(id: number, now: number): Promise<Task> {
    return cancel(this.#conn, id, now);
  }

  taskRequeue(id: number, now: number): Promise<Task> {
    return requeue(this.#conn, id, now);
  }

  taskRequeueFailed(type: string | undefined, now: number): Promise<number> {
    return requeueFailed(this.#conn, type, now);
  }

  taskRequeueWhere(filter: RequeueFilter, now: number): Promise<number> {
    return requeueWhere(this.#conn, filter, now);
  }

  taskDelete(id: number): Promise<boolean> {
    return deleteTask(this.#conn, id);
  }

  taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number> {
    return purge(this.#conn, statuses, finishedBefore);
  }

  // ---- Reads ----

  taskGet(id: number): Promise<Task | undefined> {
    return getTask(this.#conn, id);
  }

  taskGetMany(ids: readonly number[]): Promise<Task[]> {
    return getTasks(this.#conn, ids);
  }
  taskDependencyIds(id: number): Promise<DependencyIds> {
    return dependencyIds(this.#conn, id);
  }

  taskList(filter: ListFilter): Promise<Task[]> {
    return listTasks(this.#conn, filter);
  }

  taskStats(now: number): Promise<QueueStats> {
    return stats(this.#conn, now);
  }

  taskPending(
    now: number,
    types?: readonly string[],
    queues?: readonly string[],
  ): Promise<{ runnable: number; running: number }> {
    return pending(this.#conn, now, types, queues);
  }

  taskWaiting(now: number, types?: readonly string[], queues?: readonly string[]): Promise<WaitingTasks> {
    return waiting(this.#conn, now, types, queues);
  }

  metricsCollect(query: MetricsQuery): Promise<StoreMetrics> {
    return collectMetrics(this.#conn, query);
  }

  metricsThroughput(since: number, until: number): Promise<ThroughputMinute[]> {
    return throughput(this.#conn, since, until);
  }

  // ---- Named queues ----

  async queueUpdate(name: string, change: QueueChange, now: number): Promise<QueueSettings> {
    try {
      return await updateQueue(this.#conn, name, change, now);
    } finally {
      this.#heldNames.invalidate();
    }
  }

  queueList(now: number): Promise<QueueInfo[]> {
    return listQueues(this.#conn, now);
  }
  queuePausedNames(): ReadonlySet<string> | Promise<ReadonlySet<string>> {
    const held = this.#heldNames.get();
    return held instanceof Promise ? held.then((names) => names.paused) : held.paused;
  }

  queueCountAgain(
    queue: string,
    n: number,
    now: number,
  ): Promise<{ counted: number; startBy: number | null }> {
    // Under the write lock, as a claim counts.
    return this.#conn.transaction((tx) => countAgain(countAgainOps(tx), queue, n, now));
  }

  // ---- Workers and logs ----

  workerDelete(id: string): Promise<void> {
    return deleteWorker(this.#conn, id);
  }

  workerPrune(heartbeatBefore: number): Promise<string[]> {
    return pruneWorkers(this.#conn, heartbeatBefore);
  }

  workerList(): Promise<WorkerInfo[]> {
    return listWorkers(this.#conn);
  }

  taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void> {
    return appendLogs(this.#conn, entries);
  }

  taskLogList(taskId: number): Promise<TaskLog[]> {
    return listLogs(this.#conn, taskId);
  }

  // ---- The database ----

  scheduleEnsure(names: readonly string[], now: number): Promise<ScheduleState[]> {
    return ensureSchedules(this.#conn, names, now);
  }

  scheduleFire(fire: ScheduleFire): Promise<{ fired: true; taskId: number } | { fired: false }> {
    return fireSchedule(this.#conn, fire);
  }

  scheduleList(): Promise<ScheduleState[]> {
    return listSchedules(this.#conn);
  }

  close(): Promise<void> {
    // Once: a shared connection counts its users, and this store is one of them however often it closes.
    if (this.#closed === undefined) {
      // Asked again, the paused queues are read, and the read rejects as every call after close does.
      this.#heldNames.invalidate();
      try {
        this.#conn.release();
        this.#closed = Promise.resolve();
      } catch (error) {
        this.#closed = Promise.reject(error);
      }
    }
    return this.#closed;
  }
}

/** Whether `task` depends on others. */
function hasDependencies(task: NewTask): boolean {
  return task.dependsOn !== undefined && task.dependsOn.length > 0;
}
