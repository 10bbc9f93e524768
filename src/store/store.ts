/**
 * The store seam: one method per storage operation, each taking the time as a parameter so that the
 * caller's clock rules. The queue and the worker call only these; all SQL lives behind them.
 *
 * @module
 */
import type { Task, TaskStatus } from "../task.ts";

/** A task to insert, already validated. */
export interface NewTask {
  type: string;
  /** JSON text. */
  payload: string;
  priority: number;
  maxAttempts: number;
  runAfter: number;
  idempotencyKey: string | null;
  timeoutMs: number | null;
}

/**
 * What an insert did with one task: created it, or found the task that already held its idempotency key.
 * A created task is not read back: its caller knows what it inserted (see `Queue`).
 */
export interface InsertedTask {
  id: number;
  created: boolean;
  /** The task that held the key, when the insert found one. */
  existing?: Task;
}

/** How a worker picks among runnable tasks. */
export type ClaimStrategy = "priority" | "fifo" | "lifo" | "weighted_random";

export const CLAIM_STRATEGIES: readonly ClaimStrategy[] = ["priority", "fifo", "lifo", "weighted_random"];

export interface ClaimParams {
  workerId: string;
  limit: number;
  /**
   * How many of the claimed tasks start at once: their attempt is counted by the claim. The others are
   * claimed ahead of free slots, with their attempts untouched until a {@link Start} records that they
   * started. @default limit
   */
  start?: number;
  leaseMs: number;
  now: number;
  strategy: ClaimStrategy;
  /** Only claim these types; all types when absent. */
  types?: readonly string[] | undefined;
}

/**
 * A claimed task and the token that proves this claim still holds its lease. A task claimed to start at
 * once has its attempt counted and `startedAt` set; one claimed ahead has `startedAt` null.
 */
export interface LeasedTask {
  task: Task;
  leaseToken: string;
  /**
   * Claimed ahead, and its start must be recorded before its handler runs: a worker died holding it claimed
   * ahead, so that worker may have started it without the attempt being recorded.
   */
  recordStartFirst: boolean;
  /** The size of the task's payload as stored (JSON text), where the store knows it cheaply. */
  payloadLength?: number;
}

/** Identifies one claim of one task. */
export interface Fence {
  id: number;
  leaseToken: string;
}

/** That a task claimed ahead has started, at `at`: its attempt counts from now on. */
export interface Start extends Fence {
  at: number;
}

/** The outcome of one attempt, applied only while its fence still holds. */
export type Finish =
  & Fence
  & (
    | { status: "completed" }
    | { status: "queued"; runAfter: number; errorMessage: string }
    | { status: "failed"; errorMessage: string }
  );

/**
 * What a worker records in one write: tasks claimed ahead that have started, and outcomes. A finish of a
 * task whose start is not recorded yet counts its attempt too.
 */
export interface Progress {
  starts: readonly Start[];
  finishes: readonly Finish[];
}

/** The ids whose fence held, for the starts and the finishes of a {@link Progress}. */
export interface Recorded {
  started: Set<number>;
  finished: Set<number>;
}

/** A lease found past its deadline: which claim, and the deadline it had. */
export interface ExpiredLease extends Fence {
  leaseUntil: number;
}

/** A task whose lease a heartbeat could not extend, and what it is now. */
export interface LostLease {
  id: number;
  status: TaskStatus | "deleted";
}

export interface WorkerInfo {
  id: string;
  host: string | null;
  pid: number | null;
  startedAt: number;
  heartbeatAt: number;
  concurrency: number;
  handlerTypes: string[];
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface TaskLogEntry {
  taskId: number;
  at: number;
  level: LogLevel;
  message: string;
  details?: unknown;
}

export interface TaskLog extends TaskLogEntry {
  id: number;
}

export interface ListFilter {
  status?: TaskStatus | undefined;
  type?: string | undefined;
  limit: number;
  offset: number;
}

/** Counts by status, per type, and what the queue has done lately. */
export interface QueueStats {
  counts: Record<TaskStatus, number>;
  byType: Record<string, Record<TaskStatus, number>>;
  /** How long the longest-waiting runnable task has waited, or null when none is runnable. */
  oldestQueuedAgeMs: number | null;
  /** Tasks that finished in the last 60 seconds. */
  lastMinute: { completed: number; failed: number };
}

/** Raw SQL access inside a write transaction. */
export interface SqlTransaction {
  execute(sql: string, args?: readonly unknown[]): Promise<SqlResult>;
}

export interface SqlResult {
  rows: Record<string, unknown>[];
  rowsAffected: number;
  lastInsertRowid: number | undefined;
}

export interface Store {
  /** Applies the migrations not yet recorded. Safe to call from many processes at once. */
  migrate(now: number): Promise<number[]>;
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;

  taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]>;
  /**
   * Inserts through a transaction the application holds (see {@link EnqueueTransaction}), so that the tasks
   * commit or roll back with it. Runs synchronously while the handle answers synchronously; with `sync`,
   * refuses any other handle.
   *
   * @throws {TypeError} for a handle that is not a transaction on this database
   */
  taskInsertManyWithin(
    tx: unknown,
    tasks: readonly NewTask[],
    now: number,
    sync: boolean,
  ): InsertedTask[] | Promise<InsertedTask[]>;
  taskGet(id: number): Promise<Task | undefined>;
  taskList(filter: ListFilter): Promise<Task[]>;
  /** Claims up to `limit` runnable tasks in one atomic statement. */
  taskClaim(params: ClaimParams): Promise<LeasedTask[]>;
  /** Records starts, then outcomes, in one transaction; says whose fence held. */
  taskRecord(progress: Progress, now: number): Promise<Recorded>;
  /**
   * Records starts and outcomes, then claims, in one transaction: a busy worker takes the write lock once
   * per round instead of twice.
   */
  taskRecordAndClaim(progress: Progress, params: ClaimParams): Promise<Recorded & { leased: LeasedTask[] }>;
  /**
   * Hands running tasks back to the queue, with the attempt not counted (a task claimed ahead that never
   * started keeps its attempts as they were); returns the ids whose fence held.
   */
  taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>>;
  /** Extends one task's lease; false when the fence no longer holds. */
  taskExtendLease(fence: Fence, leaseUntil: number, now: number): Promise<boolean>;
  /** Leases past their deadline at `now`, earliest deadline first, at most `limit`. */
  taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]>;
  /**
   * Returns expired leases to the queue, or fails them when no attempts remain: all of them, or only those
   * of `only` that still have the claim and deadline given there (not renewed since). A task claimed ahead
   * whose start was never recorded goes back with its attempts untouched and never fails this way; its next
   * start is recorded before its handler runs ({@link LeasedTask.recordStartFirst}).
   */
  taskReapExpired(now: number, only?: readonly ExpiredLease[]): Promise<{ requeued: number; failed: number }>;
  /** Cancels a queued or running task. Throws TaskNotFoundError or TaskStateError. */
  taskCancel(id: number, now: number): Promise<Task>;
  /** Moves a failed or cancelled task back to the queue with fresh attempts. */
  taskRequeue(id: number, now: number): Promise<Task>;
  /** Moves every failed task (of one type, if given) back to the queue; returns how many. */
  taskRequeueFailed(type: string | undefined, now: number): Promise<number>;
  /** Deletes finished tasks of these statuses that finished before `finishedBefore`; returns how many. */
  taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number>;
  taskStats(now: number): Promise<QueueStats>;
  /** Whether anything is runnable now or running, for `runLoop({ untilEmpty })`. */
  taskPending(now: number, types?: readonly string[]): Promise<{ runnable: number; running: number }>;

  /**
   * Extends the leases of a worker's running tasks and, when `worker` is given, records its liveness, in one
   * transaction. Returns the tasks whose fence no longer holds.
   */
  workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]>;
  workerDelete(id: string): Promise<void>;
  /** Deletes the rows of workers whose last heartbeat is older than `heartbeatBefore`; returns their ids. */
  workerPrune(heartbeatBefore: number): Promise<string[]>;
  workerList(): Promise<WorkerInfo[]>;

  /**
   * Writes a consistent copy of the whole database to a file at `path`, replacing an existing file only
   * with `overwrite`, atomically; refuses (BackupRefusedError) a path that is a file of an open database.
   */
  backupTo(path: string, options: { overwrite: boolean }): Promise<{ path: string; bytes: number }>;
  /**
   * Calls `listener` soon after any connection, in any process, commits to the database; returns the
   * function that stops it. Best effort (a libSQL server gives no such signal): callers still poll.
   */
  watchCommits(listener: () => void): () => void;

  taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void>;
  taskLogList(taskId: number): Promise<TaskLog[]>;

  close(): void;
}
