/**
 * The PostgreSQL store as `QueueDatabase` gets it: a stand-in that loads the store, and with it the
 * `postgres` driver and Drizzle's `pg-core`, on its first call. A program that opens only SQLite files
 * never evaluates them. The import is a literal one, so the bundlers of the single binary (`deno compile`,
 * `bun build --compile`) link the store in all the same.
 *
 * @module
 */
import { DatabaseError } from "../../errors.ts";
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
import { type PostgresStoreOptions, redactUrl } from "./options.ts";
import type { PostgresStore } from "./store.ts";

/** Whether this process has loaded the PostgreSQL store (and so the driver): for tests. */
export function postgresStoreLoaded(): boolean {
  return loaded;
}

let loaded = false;

export class LazyPostgresStore implements Store {
  readonly kind = "a PostgreSQL server";
  readonly #url: string;
  readonly #options: PostgresStoreOptions;
  #store: Promise<PostgresStore> | undefined;
  /** The store once loaded: calls then go to it without waiting for anything. */
  #loaded: PostgresStore | undefined;
  #closed: Promise<void> | undefined;

  /** `url` and `options` must have been checked (`checkOptions`): nothing here can report them. */
  constructor(url: string, options: PostgresStoreOptions) {
    this.#url = url;
    this.#options = options;
  }

  /** The store, loaded on first use. */
  #load(): Promise<PostgresStore> {
    if (this.#closed) {
      return Promise.reject(
        new DatabaseError(
          `The database '${redactUrl(this.#url)}' is closed: its QueueDatabase was closed. Open a new one ` +
            `to go on using it.`,
        ),
      );
    }
    return this.#store ??= import("./store.ts").then(({ openPostgresStore }) => {
      loaded = true;
      return this.#loaded = openPostgresStore(this.#url, this.#options);
    });
  }

  /** `fn` on the store, loaded first if need be; a worker makes several calls for every task it runs. */
  #call<T>(fn: (store: PostgresStore) => T | Promise<T>): Promise<T> {
    const store = this.#closed === undefined ? this.#loaded : undefined;
    if (store === undefined) return this.#load().then(fn);
    try {
      return Promise.resolve(fn(store));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  readonly serverTime = (): Promise<number> => this.#call((s) => s.serverTime());

  readonly leaderElect = (bid: LeaderBid): Promise<boolean> => this.#call((s) => s.leaderElect(bid));

  readonly leaderResign = (name: string, leaderId: string): Promise<boolean> =>
    this.#call((s) => s.leaderResign(name, leaderId));

  /** As the store it loads: a property of its channels and triggers, known before anything is loaded. */
  readonly exactCommitTopics = true;

  readonly watchCommits = (topic: CommitTopic, listener: () => void): () => void => {
    let stop: (() => void) | undefined;
    let stopped = false;
    this.#load().then((store) => {
      if (!stopped) stop = store.watchCommits(topic, listener);
    }, () => {
      // A store that cannot load has no commits to tell of; its calls report why.
    });
    return () => {
      stopped = true;
      stop?.();
    };
  };

  migrate(now: number): Promise<number[]> {
    return this.#call((s) => s.migrate(now));
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.#call((s) => s.transaction(fn));
  }

  taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    return this.#call((s) => s.taskInsertMany(tasks, now));
  }

  taskInsertOne(task: NewTask, now: number): Promise<InsertedTask> {
    return this.#call((s) => s.taskInsertOne(task, now));
  }

  taskInsertManyWithin(tx: unknown, tasks: readonly NewTask[], now: number, sync: boolean) {
    return this.#call((s) => s.taskInsertManyWithin(tx, tasks, now, sync));
  }

  taskGet(id: number): Promise<Task | undefined> {
    return this.#call((s) => s.taskGet(id));
  }

  taskGetMany(ids: readonly number[]): Promise<Task[]> {
    return this.#call((s) => s.taskGetMany(ids));
  }
  taskDependencyIds(id: number): Promise<DependencyIds> {
    return this.#call((s) => s.taskDependencyIds(id));
  }

  taskList(filter: ListFilter): Promise<Task[]> {
    return this.#call((s) => s.taskList(filter));
  }

  taskClaim(params: ClaimParams): Promise<LeasedTask[]> {
    return this.#call((s) => s.taskClaim(params));
  }

  taskRecord(progress: Progress, now: number): Promise<Recorded> {
    return this.#call((s) => s.taskRecord(progress, now));
  }

  taskRecordAndClaim(progress: Progress, params: ClaimParams) {
    return this.#call((s) => s.taskRecordAndClaim(progress, params));
  }

  taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>> {
    return this.#call((s) => s.taskReleaseMany(fences, now));
  }

  taskExtendLease(fence: Fence, leaseUntil: number, now: number): Promise<boolean> {
    return this.#call((s) => s.taskExtendLease(fence, leaseUntil, now));
  }

  taskSetProgress(fence: Fence, progress: string, now: number): Promise<boolean> {
    return this.#call((s) => s.taskSetProgress(fence, progress, now));
  }

  taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]> {
    return this.#call((s) => s.taskExpiredLeases(now, limit));
  }

  taskReapExpired(now: number, only?: readonly ExpiredLease[]) {
    return this.#call((s) => s.taskReapExpired(now, only));
  }

  taskCancel(id: number, now: number): Promise<Task> {
    return this.#call((s) => s.taskCancel(id, now));
  }

  taskRequeue(id: number, now: number): Promise<Task> {
    return this.#call((s) => s.taskRequeue(id, now));
  }

  taskRequeueFailed(type: string | undefined, now: number): Promise<number> {
    return this.#call((s) => s.taskRequeueFailed(type, now));
  }

  taskRequeueWhere(filter: RequeueFilter, now: number): Promise<number> {
    return this.#call((s) => s.taskRequeueWhere(filter, now));
  }

  taskDelete(id: number): Promise<boolean> {
    return this.#call((s) => s.taskDelete(id));
  }

  taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number> {
    return this.#call((s) => s.taskPurge(statuses, finishedBefore));
  }

  taskStats(now: number): Promise<QueueStats> {
    return this.#call((s) => s.taskStats(now));
  }

  metricsCollect(query: MetricsQuery): Promise<StoreMetrics> {
    return this.#call((s) => s.metricsCollect(query));
  }

  metricsThroughput(since: number, until: number): Promise<ThroughputMinute[]> {
    return this.#call((s) => s.metricsThroughput(since, until));
  }

  taskPending(now: number, types?: readonly string[], queues?: readonly string[]) {
    return this.#call((s) => s.taskPending(now, types, queues));
  }

  taskWaiting(now: number, types?: readonly string[], queues?: readonly string[]): Promise<WaitingTasks> {
    return this.#call((s) => s.taskWaiting(now, types, queues));
  }

  queueUpdate(name: string, change: QueueChange, now: number): Promise<QueueSettings> {
    return this.#call((s) => s.queueUpdate(name, change, now));
  }

  queueList(now: number): Promise<QueueInfo[]> {
    return this.#call((s) => s.queueList(now));
  }

  queuePausedNames(): ReadonlySet<string> | Promise<ReadonlySet<string>> {
    const store = this.#closed === undefined ? this.#loaded : undefined;
    return store ? store.queuePausedNames() : this.#call((s) => s.queuePausedNames());
  }

  queueCountAgain(
    queue: string,
    n: number,
    now: number,
  ): Promise<{ counted: number; startBy: number | null }> {
    return this.#call((s) => s.queueCountAgain(queue, n, now));
  }

  workerHeartbeat(worker: WorkerInfo | null, fences: readonly Fence[], leaseUntil: number) {
    return this.#call((s): Promise<LostLease[]> => s.workerHeartbeat(worker, fences, leaseUntil));
  }

  workerDelete(id: string): Promise<void> {
    return this.#call((s) => s.workerDelete(id));
  }

  workerPrune(heartbeatBefore: number): Promise<string[]> {
    return this.#call((s) => s.workerPrune(heartbeatBefore));
  }

  workerList(): Promise<WorkerInfo[]> {
    return this.#call((s) => s.workerList());
  }

  taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void> {
    return this.#call((s) => s.taskLogAppend(entries));
  }

  scheduleEnsure(names: readonly string[], now: number): Promise<ScheduleState[]> {
    return this.#call((s) => s.scheduleEnsure(names, now));
  }

  scheduleFire(fire: ScheduleFire): Promise<{ fired: true; taskId: number } | { fired: false }> {
    return this.#call((s) => s.scheduleFire(fire));
  }

  scheduleList(): Promise<ScheduleState[]> {
    return this.#call((s) => s.scheduleList());
  }

  taskLogList(taskId: number): Promise<TaskLog[]> {
    return this.#call((s) => s.taskLogList(taskId));
  }

  /** Closes the store, if it was ever loaded; closing again gives the same promise. */
  close(): Promise<void> {
    return this.#closed ??= this.#store
      ? this.#store.then((store) => store.close(), () => {})
      : Promise.resolve();
  }
}
