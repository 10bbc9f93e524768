/**
 * The types the `Store` contract (`store.ts`) speaks in: tasks to insert, claims and their fences,
 * outcomes, leases, workers, logs, reads. Nothing here belongs to one database.
 *
 * @module
 */
import type { QueueLimits, RateLimit } from "../queue_name.ts";
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
  /** The task's own backoff fields as JSON text (an object), or null. */
  retryPolicy: string | null;
  /** The queue it belongs to: a checked name (see `queue_name.ts`). */
  queue: string;
  /**
   * Ids of tasks that must complete before this one runs (checked: whole, positive, no repeats). Absent or
   * empty: none, and the task is queued at once.
   */
  dependsOn?: readonly number[] | undefined;
  /** Its `unique` key, or null. */
  uniqueKey: string | null;
  /** A window key's length in milliseconds; null: the key is held while the task is queued or running. */
  uniqueForMs: number | null;
}

/**
 * What an insert did with one task: created it, or found the task that already held its idempotency key
 * or its `unique` key. A created task is not read back: its caller knows what it inserted (see `Queue`).
 */
export interface InsertedTask {
  id: number;
  created: boolean;
  /** The task that held the key, when the insert found one. */
  existing?: Task;
  /**
   * Where a created task with dependencies stands after the insert: `waiting`, `queued` (they had all
   * completed) or `cancelled` (one had failed or was cancelled, which its error message names). Absent
   * for a task without dependencies, which is `queued`.
   */
  settled?: { status: TaskStatus; errorMessage: string | null; finishedAt: number | null };
  /** Which of the task's keys the existing task holds, when it was not created. */
  matchedKey?: MatchedKey;
}

/** The key by which an enqueue found an existing task instead of creating one. */
export type MatchedKey = "idempotencyKey" | "unique";

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
  /** Only claim from these queues; every queue when absent. Paused queues are never claimed from. */
  queues?: readonly string[] | undefined;
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
   * ahead since its last recorded outcome, so that worker may have started it without the attempt being
   * recorded (and it may kill this worker too).
   */
  recordStartFirst: boolean;
  /**
   * For a task claimed ahead from a queue with a rate limit: the end of the rate window its claim was
   * counted in. It must start before then, or be counted again in the window it starts in
   * (`Store.queueCountAgain`, which moves this to that window's end), or go back to the queue unstarted,
   * so that no window sees more starts than the limit.
   */
  startBy?: number;
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

/**
 * The outcome of one attempt, applied only while its fence still holds: `completed` (with the handler's
 * result as JSON text, when it returned one), `queued` again at `runAfter` to retry, `failed` for good, or
 * `snoozed`: queued again at `runAfter` with the attempt given back (a recorded start is uncounted, as a
 * release does) and the error message left as it was.
 */
export type Finish =
  & Fence
  & (
    | { status: "completed"; result?: string | undefined }
    | { status: "queued"; runAfter: number; errorMessage: string }
    | { status: "failed"; errorMessage: string }
    | { status: "snoozed"; runAfter: number }
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

/**
 * A bid to lead one kind of work that the fleet does once (`Store.leaderElect`): reaping expired leases
 * now, schedules later. The lease lasts until `now + ttlMs` unless its holder renews it.
 */
export interface LeaderBid {
  /** The work led: `"maintenance"`. */
  name: string;
  /** The worker bidding. */
  leaderId: string;
  now: number;
  ttlMs: number;
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
  queue?: string | undefined;
  /** Only tasks created strictly after this time (epoch ms). */
  createdAfter?: number | undefined;
  /** Only tasks created strictly before this time (epoch ms). */
  createdBefore?: number | undefined;
  /** Only tasks whose payload has each of these values at its path (all must match). */
  payload?: readonly PayloadMatch[] | undefined;
  /** Keyset paging: only tasks with an id below this one (the last id of the previous page). */
  beforeId?: number | undefined;
  /** Only tasks with an id of at least this: with `beforeId`, a window of ids that bounds the scan. */
  fromId?: number | undefined;
  limit: number;
  offset: number;
}

/**
 * A value a task's payload must hold at a path: `{ path: ["account"], value: 42 }` matches a payload
 * `{ "account": 42 }` (a number equal to 42, not the string "42"). Scalars only: a string, a number, a
 * boolean or null; each path segment is 1 to 64 letters, digits or `_`.
 */
export interface PayloadMatch {
  path: readonly string[];
  value: string | number | boolean | null;
}

/** Which finished tasks `Store.taskRequeueWhere` queues again: those of one status, type and queue. */
export interface RequeueFilter {
  status: "failed" | "cancelled";
  type?: string | undefined;
  queue?: string | undefined;
}

/** A queue's settings as stored: its fleet-wide limits and whether it is paused. */
export interface QueueSettings extends QueueLimits {
  name: string;
  paused: boolean;
}

/** What `Store.queueUpdate` changes: each field given is set; the others keep their value. */
export interface QueueChange {
  concurrency?: number | null | undefined;
  rate?: RateLimit | null | undefined;
  paused?: boolean | undefined;
}

/** One queue as `prismq queues` shows it: its settings and what it holds now. */
export interface QueueInfo extends QueueSettings {
  /** Tasks queued: runnable now, or waiting for a later time. */
  queued: number;
  /** Tasks running (claimed, claimed ahead included, until their outcome or reap). */
  running: number;
  /** How long the longest-waiting runnable task has waited, or null when none is runnable. */
  oldestWaitMs: number | null;
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

/** Queued tasks that wait for a later time: scheduled ones, and ones backing off after a failed attempt. */
export interface WaitingTasks {
  count: number;
  /** When the soonest of them becomes runnable (epoch ms), or null when none waits. */
  nextRunAfter: number | null;
}

/**
 * Raw SQL inside a write transaction (`QueueDatabase.transaction`). The SQL is the store's own dialect,
 * placeholders included: SQLite's for the SQLite store (`?`, with an array of values). Read a new row's id
 * with `RETURNING id`, which SQLite and PostgreSQL both understand.
 */
export interface SqlTransaction {
  execute(sql: string, args?: readonly unknown[]): Promise<SqlResult>;
}

/** What a statement of a {@link SqlTransaction} gave: its rows, keyed by column, and how many it changed. */
export interface SqlResult {
  rows: Record<string, unknown>[];
  rowsAffected: number;
}

/**
 * What `Store.watchCommits` can watch. `"tasks"`: tasks were added or became runnable, for idle workers.
 * `"finished"`: tasks finished (completed, failed, cancelled), for `Queue.waitFor`. A store may call a
 * listener of either for any commit, unless it has `Store.exactCommitTopics`.
 */
export type CommitTopic = "tasks" | "finished";

/** What a backup wrote. */
export interface BackupResult {
  /** The absolute path of the copy. */
  path: string;
  bytes: number;
}

/** What the database keeps of one schedule (`Store.scheduleEnsure`, `Store.scheduleList`). */
export interface ScheduleState {
  name: string;
  /** When a worker first saw the schedule: slots up to this time never fire. */
  since: number;
  /** The latest slot fired, or null before the first. */
  lastSlot: number | null;
  /** The task that slot enqueued (it may have been purged since). */
  lastTaskId: number | null;
  /** When that slot was fired. */
  firedAt: number | null;
}

/** One slot to fire (`Store.scheduleFire`): its task goes in only if the schedule's state is `expectedSlot`. */
export interface ScheduleFire {
  name: string;
  slot: number;
  /** The schedule's `lastSlot` as the caller read it (null: none fired yet). */
  expectedSlot: number | null;
  task: NewTask;
  now: number;
}

/** What `Store.metricsCollect` reads: at `now`, with live workers those whose heartbeat is at `liveSince` or later. */
export interface MetricsQuery {
  now: number;
  /**
   * How long after an outcome's `finishedAt` it is folded into the stored counters (see `metrics_sql.ts`):
   * long enough that no transaction which took an earlier time is still to commit.
   */
  settleMs: number;
  liveSince: number;
}

/**
 * One counter as `Store.metricsCollect` reads it: a count of events (`enqueued`, `started`, `retried`,
 * `completed`, `failed`, `cancelled`), one bucket of a duration histogram (`run_ms`, `wait_ms`: `bucket` is
 * its upper bound in milliseconds, -1 for the last, unbounded one; not cumulative), or a histogram's sum of
 * milliseconds (`run_ms_sum`, `wait_ms_sum`), per task type and queue. `bucket` is 0 but for histograms.
 */
export interface MetricCount {
  metric: string;
  type: string;
  queue: string;
  bucket: number;
  value: number;
}

/** What one queue holds now, for metrics. */
export interface QueueDepth {
  queue: string;
  /** Tasks queued, those due later included. */
  queued: number;
  /** Of those, the ones not due before a later time. */
  scheduled: number;
  running: number;
  /** How long the longest-waiting runnable task has waited, or null when none is runnable. */
  oldestWaitMs: number | null;
}

/** Every figure of the metrics, read in one transaction (see `Store.metricsCollect`). */
export interface StoreMetrics {
  counts: MetricCount[];
  /** Every queue with tasks queued or running, with settings, or with counts, by name. */
  depths: QueueDepth[];
  liveWorkers: number;
}

/** Tasks that finished in one minute (`minute` is its start, epoch ms, a multiple of 60,000). */
export interface ThroughputMinute {
  minute: number;
  completed: number;
  failed: number;
}

/** The most ids of each kind {@link DependencyIds} holds. */
export const MAX_DEPENDENCY_IDS = 1000;

/** A task's dependencies both ways (see `Store.taskDependencyIds`). */
export interface DependencyIds {
  /** The tasks it waits for (or waited for), ascending. */
  dependsOn: number[];
  /** The tasks that wait (or waited) for it, ascending. */
  dependents: number[];
}
