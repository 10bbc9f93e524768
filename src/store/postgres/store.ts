/**
 * The Store on PostgreSQL, written with Drizzle's `pg-core` and the `postgres` driver: the `Store` contract
 * wired to the query files in `queries/`, one per concern, on a bounded pool of connections. Claims lock
 * with `FOR UPDATE SKIP LOCKED`, so workers on many hosts claim at once without waiting for each other; the
 * writes of one call that must commit together go as one batch (one round trip, one transaction). Times are
 * compared on the server's clock (`serverTime`), which every host shares. Each call outlives a restart of
 * the server or a lost connection as `reconnect.ts` says: `#again` marks the calls that may be made twice,
 * `#once` those that may not. The hot path (claims and outcomes) is in `claims.ts`. Over 400 lines: one
 * short method per operation of the contract, each wiring a query file; split further, the contract would
 * be spread over files that each hold a part of it.
 *
 * @module
 */
import type { Task, TaskStatus } from "../../task.ts";
import type {
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
  Store,
  StoreMetrics,
  TaskLog,
  TaskLogEntry,
  ThroughputMinute,
  WaitingTasks,
  WorkerInfo,
} from "../store.ts";
import { adoptTransaction, ownTransaction, type SqlRunner } from "./app_transaction.ts";
import { PgConnection, type PostgresStoreOptions } from "./connection.ts";
import { migrate } from "./migrate.ts";
import { FINISHED_CHANNEL } from "./migrations.ts";
import { Notifications } from "./notifications.ts";
import { Reconnect } from "./reconnect.ts";
import { HeldQueueNames } from "../limited_claim.ts";
import { PgClaims } from "./claims.ts";
import { countAgainStatement, heldQueueRows, listQueues, updateQueue } from "./queries/queues.ts";
import { hasDependencies, insertWithDependencies } from "./queries/dependencies.ts";
import { insertMany, insertOne } from "./queries/insert.ts";
import { hasKey } from "../inserted.ts";
import { expiredLeases, extendLease, heartbeat, reapExpired, releaseMany } from "./queries/leases.ts";
import { electLeader, resignLeader } from "./queries/leaders.ts";
import { appendLogs, listLogs } from "./queries/logs.ts";
import { cancel, deleteTask, purge, requeue, requeueFailed, requeueWhere } from "./queries/manage.ts";
import { collectMetrics, throughput } from "./queries/metrics.ts";
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

export class PostgresStore implements Store {
  readonly #conn: PgConnection;
  readonly #notifications: Notifications;
  /** Finished tasks' notifications, for `Queue.waitFor`: their own channel, so idle workers are not woken. */
  readonly #finished: Notifications;
  readonly #reconnect: Reconnect;
  readonly serverTime: () => Promise<number>;
  readonly kind = "a PostgreSQL server";
  #closed: Promise<void> | undefined = undefined;
  /**
   * Which queues are paused or limited, read at most once a second: claims from limited ones take the
   * limited path (see `limited_claim.ts`). A queue limited by another process is claimed from, under its
   * limits, within a second; it is never claimed from beyond them, since the plain claim leaves out every
   * held queue, as it is at that moment.
   */
  readonly #heldNames = new HeldQueueNames(() => heldQueueRows(this.#conn), 1000);
  readonly #claims: PgClaims;

  /**
   * Nothing is opened yet: the first call connects.
   *
   * @param url `postgres://user:password@host:port/database` (or `postgresql://`); unset parts come from the
   *   `PGHOST`, `PGUSER`, `PGPASSWORD`, … environment variables, as in `psql`
   * @throws {DatabaseError} for a URL that is not one (its password left out of the message)
   */
  constructor(url: string, options: PostgresStoreOptions = {}) {
    this.#conn = new PgConnection(url, options);
    this.#notifications = new Notifications(this.#conn);
    this.#finished = new Notifications(this.#conn, FINISHED_CHANNEL);
    this.#reconnect = new Reconnect(this.#conn);
    this.#claims = new PgClaims(this.#conn, (call) => this.#again(call), this.#heldNames);
    // Not made again: a reading that waited out a restart would be off by half the wait. A clock that
    // cannot be read keeps its last offset and tries later.
    this.serverTime = () => serverTime(this.#conn);
  }

  /**
   * A call that changes nothing more when made twice: made again even after its connection was lost. When
   * made again, `call` is given how late it is, in milliseconds, to add to the times it writes.
   */
  #again<T>(call: (late: number) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#conn.closedError());
    return this.#reconnect.run(true, call);
  }

  /** A call that may not be made twice: made again only when it never reached the server. */
  #once<T>(call: (late: number) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#conn.closedError());
    return this.#reconnect.run(false, call);
  }

  /** The URL, without its password. */
  get location(): string {
    return this.#conn.location;
  }

  migrate(now: number): Promise<number[]> {
    // Under an advisory lock, each migration once: a repeat applies none.
    return this.#again(() => migrate(this.#conn, now));
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    // Made again only when it failed before `fn` began: `fn` is the application's, and its side effects
    // must not happen twice, whatever it throws (an ECONNREFUSED of its own payments API, say).
    let entered = false;
    const run = () =>
      ownTransaction(this.#conn, (tx) => {
        entered = true;
        return fn(tx);
      }).catch((error) => Promise.reject(entered ? new FromCallback(error) : error));
    return this.#once(run).catch((error) =>
      Promise.reject(error instanceof FromCallback ? error.error : error)
    );
  }

  // ---- Enqueue ----

  taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    if (tasks.some(hasDependencies)) {
      // Checked, inserted and linked in one transaction, the tasks depended on locked meanwhile.
      return this.#once((late) =>
        this.#conn.begin((tx) => {
          const run: SqlRunner = (query) => this.#conn.rows(query, tx);
          return insertWithDependencies(run, tasks, now + late, () => insertMany(run, tasks, now + late));
        })
      );
    }
    const keyed = tasks.length > 1 && tasks.some(hasKey);
    // Keyed tasks are inserted (after their expired window keys are released), then their keys' holders
    // read, in one transaction.
    const insert = keyed
      ? (late: number) =>
        this.#conn.begin((tx) => insertMany((query) => this.#conn.rows(query, tx), tasks, now + late))
      : (late: number) => insertMany((query) => this.#conn.rows(query), tasks, now + late);
    // Made twice, tasks whose keys are all given are inserted once (the repeat finds them: created false).
    return tasks.every((task) => task.idempotencyKey !== null) ? this.#again(insert) : this.#once(insert);
  }

  taskInsertOne(task: NewTask, now: number): Promise<InsertedTask> {
    if (hasDependencies(task)) return this.taskInsertMany([task], now).then(([inserted]) => inserted!);
    const insert = (late: number) => insertOne((query) => this.#conn.rows(query), task, now + late);
    return task.idempotencyKey !== null ? this.#again(insert) : this.#once(insert);
  }

  async taskInsertManyWithin(
    tx: unknown,
    tasks: readonly NewTask[],
    now: number,
    sync: boolean,
  ): Promise<InsertedTask[]> {
    const run = await adoptTransaction(tx, this.#conn, sync);
    try {
      return await insertWithDependencies(run, tasks, now, () => insertMany(run, tasks, now));
    } catch (error) {
      throw this.#conn.error(error);
    }
  }

  // ---- Claims and outcomes: the hot path, in `claims.ts` ----

  taskClaim(params: ClaimParams): Promise<LeasedTask[]> {
    return this.#claims.claim(params);
  }

  taskRecord(progress: Progress, now: number): Promise<Recorded> {
    return this.#claims.record(progress, now);
  }

  taskRecordAndClaim(progress: Progress, params: ClaimParams): Promise<Recorded & { leased: LeasedTask[] }> {
    return this.#claims.recordAndClaim(progress, params);
  }

  // ---- Leases ----

  taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>> {
    return this.#again((late) => releaseMany(this.#conn, fences, now + late));
  }

  taskExtendLease(fence: Fence, leaseUntil: number, _now: number): Promise<boolean> {
    return this.#again((late) => extendLease(this.#conn, fence, leaseUntil + late));
  }

  taskSetProgress(fence: Fence, progress: string, now: number): Promise<boolean> {
    return this.#again((late) => setProgress(this.#conn, fence, progress, now + late));
  }

  taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]> {
    return this.#again((late) => expiredLeases(this.#conn, now + late, limit));
  }

  taskReapExpired(
    now: number,
    only?: readonly ExpiredLease[],
  ): Promise<{ requeued: number; failed: number }> {
    // Conditional on each lease's claim and deadline (or on its being expired): a repeat reaps none twice.
    return this.#again((late) => reapExpired(this.#conn, now + late, only));
  }

  workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]> {
    return this.#again((late) =>
      heartbeat(
        this.#conn,
        worker && late > 0 ? { ...worker, heartbeatAt: worker.heartbeatAt + late } : worker,
        fences,
        leaseUntil + late,
      )
    );
  }

  // ---- Operators ----
  // Made once: after a lost connection, a repeat would answer differently (a cancelled task cannot be
  // cancelled again), so the error says the call may or may not have been applied.

  taskCancel(id: number, now: number): Promise<Task> {
    return this.#once((late) => cancel(this.#conn, id, now + late));
  }

  taskRequeue(id: number, now: number): Promise<Task> {
    return this.#once((late) => requeue(this.#conn, id, now + late));
  }

  taskRequeueFailed(type: string | undefined, now: number): Promise<number> {
    return this.#once((late) => requeueFailed(this.#conn, type, now + late));
  }

  taskRequeueWhere(filter: RequeueFilter, now: number): Promise<number> {
    return this.#once((late) => requeueWhere(this.#conn, filter, now + late));
  }

  taskDelete(id: number): Promise<boolean> {
    return this.#once(() => deleteTask(this.#conn, id));
  }

  taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number> {
    return this.#once(() => purge(this.#conn, statuses, finishedBefore));
  }

  // ---- Reads ----

  taskGet(id: number): Promise<Task | undefined> {
    return this.#again(() => getTask(this.#conn, id));
  }

  taskGetMany(ids: readonly number[]): Promise<Task[]> {
    return this.#again(() => getTasks(this.#conn, ids));
  }
  taskDependencyIds(id: number): Promise<DependencyIds> {
    return this.#again(() => dependencyIds(this.#conn, id));
  }

  taskList(filter: ListFilter): Promise<Task[]> {
    return this.#again(() => listTasks(this.#conn, filter));
  }

  taskStats(now: number): Promise<QueueStats> {
    return this.#again((late) => stats(this.#conn, now + late));
  }

  taskPending(
    now: number,
    types?: readonly string[],
    queues?: readonly string[],
  ): Promise<{ runnable: number; running: number }> {
    return this.#again(async (late) => {
      const paused = await this.queuePausedNames();
      return pending(this.#conn, now + late, [...paused], types, queues);
    });
  }

  taskWaiting(now: number, types?: readonly string[], queues?: readonly string[]): Promise<WaitingTasks> {
    return this.#again((late) => waiting(this.#conn, now + late, types, queues));
  }

  // ---- Named queues ----

  async queueUpdate(name: string, change: QueueChange, now: number): Promise<QueueSettings> {
    // Made again after a lost connection: setting the same values twice changes nothing more (but a new
    // rate's window, which starts again).
    try {
      return await this.#again((late) => updateQueue(this.#conn, name, change, now + late));
    } finally {
      this.#heldNames.invalidate();
    }
  }

  queueList(now: number): Promise<QueueInfo[]> {
    return this.#again((late) => listQueues(this.#conn, now + late));
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
    // One statement, which locks the queue's row while it counts (one round trip, where a transaction
    // held the lock across four). Made again after a lost connection: counted twice, the tasks only hold
    // back more.
    return this.#again(async (late) => {
      const [row] = await this.#conn.rows<{ counted: number; startBy: number | null }>(
        countAgainStatement(queue, n, now + late),
      );
      return row ?? { counted: n, startBy: null };
    });
  }

  // ---- Workers and logs ----

  workerDelete(id: string): Promise<void> {
    return this.#again(() => deleteWorker(this.#conn, id));
  }

  workerPrune(heartbeatBefore: number): Promise<string[]> {
    return this.#once(() => pruneWorkers(this.#conn, heartbeatBefore));
  }

  workerList(): Promise<WorkerInfo[]> {
    return this.#again(() => listWorkers(this.#conn));
  }

  taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void> {
    // Made twice, a line would be logged twice.
    return this.#once(() => appendLogs(this.#conn, entries));
  }

  taskLogList(taskId: number): Promise<TaskLog[]> {
    return this.#again(() => listLogs(this.#conn, taskId));
  }

  // ---- Schedules: made again after a lost connection, since a repeated fire fails its compare-and-set ----

  scheduleEnsure(names: readonly string[], now: number): Promise<ScheduleState[]> {
    return this.#again((late) => ensureSchedules(this.#conn, names, now + late));
  }

  scheduleFire(fire: ScheduleFire): Promise<{ fired: true; taskId: number } | { fired: false }> {
    return this.#again((late) => fireSchedule(this.#conn, { ...fire, now: fire.now + late }));
  }

  scheduleList(): Promise<ScheduleState[]> {
    return this.#again(() => listSchedules(this.#conn));
  }

  // ---- Metrics: a fold made twice folds nothing more ----

  metricsCollect(query: MetricsQuery): Promise<StoreMetrics> {
    return this.#again((late) => collectMetrics(this.#conn, { ...query, now: query.now + late }));
  }

  metricsThroughput(since: number, until: number): Promise<ThroughputMinute[]> {
    return this.#again(() => throughput(this.#conn, since, until));
  }

  // ---- Leaders of the fleet's maintenance ----

  /** Takes or renews the lease of `bid.name` (see `Store.leaderElect`); made twice, it answers the same. */
  leaderElect(bid: LeaderBid): Promise<boolean> {
    return this.#again((late) => electLeader(this.#conn, { ...bid, now: bid.now + late }));
  }

  leaderResign(name: string, leaderId: string): Promise<boolean> {
    return this.#again(() => resignLeader(this.#conn, name, leaderId));
  }

  // ---- The database ----

  // No backupTo: a PostgreSQL server's backups are made with its own tools (pg_dump, or a base backup).

  /**
   * Calls `listener` soon after a transaction that queued tasks commits, on any connection (LISTEN/NOTIFY):
   * inserts, retries, releases, reaps and operators' retries; not claims nor completions. For `"finished"`,
   * after one that completed, failed or cancelled tasks, on a channel of its own.
   */
  watchCommits(topic: CommitTopic, listener: () => void): () => void {
    return (topic === "finished" ? this.#finished : this.#notifications).watch(listener);
  }

  /**
   * Each topic has a channel of its own, notified by triggers on the changes of that topic alone (migrations
   * 2 and 5), and `Notifications` calls the listeners once more each time its LISTEN takes effect.
   */
  readonly exactCommitTopics = true;

  /** Closes the pool, letting queries under way finish (for at most five seconds). */
  close(): Promise<void> {
    this.#reconnect.close();
    this.#notifications.close();
    this.#finished.close();
    // Asked again, the paused queues are read, and the read rejects as every call after close does.
    this.#heldNames.invalidate();
    return this.#closed ??= this.#conn.end();
  }
}

/**
 * Opens a store on the PostgreSQL database at `url`; nothing connects until its first call.
 *
 * @param url `postgres://user:password@host:port/database` or `postgresql://…`
 * @param options the pool's size and deadlines
 * @returns the store; `migrate()` it before first use
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a URL that is not one (without its password)
 */
export function openPostgresStore(url: string, options: PostgresStoreOptions = {}): PostgresStore {
  return new PostgresStore(url, options);
}

/** A failure once an application's transaction callback began: never a reason to make the call again. */
class FromCallback {
  constructor(readonly error: unknown) {}
}
