/**
 * PrismQ's tables as they are now, written once: columns, types, defaults, keys, references, CHECK
 * constraints, indexes and STRICT. Everything else derives from these definitions: the column lists of the
 * queries (`columns.ts`), the row types, and the `Task` and `NewTask` checks.
 *
 * The migrations in `migrations.ts` are the history that builds these tables, and never change once
 * shipped; `tests/schema_test.ts` holds the two together, column by column, on a migrated database. To add
 * a column: add it here, append a migration that adds it, and say in `Task` (and `NewTask`, if an enqueue
 * sets it) what becomes of it. All times are integer epoch milliseconds.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import {
  check,
  index,
  integer,
  type SQLiteTable,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";
import { TASK_STATUSES, type TaskStatus } from "../../task.ts";

/**
 * SQL for "now" in epoch milliseconds, for rows written by plain SQL that leaves the times out; written with
 * `julianday`, which every SQLite has (`unixepoch('subsec')` needs 3.42).
 */
export const NOW_MS = sql`(CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER))`;

/** The latest time a JavaScript Date can hold, in epoch milliseconds; the earliest is its negation. */
const TIME_LIMIT = 8640000000000000;

/**
 * A column's CHECK, named after the column (a constraint on one column, though Drizzle writes every CHECK
 * as the table's).
 */
function columnCheck(column: string, condition: string) {
  return check(column, sql.raw(condition));
}

/**
 * A time column's CHECK: within a Date's range (the table is STRICT, so it is an integer already). A NULL
 * passes a CHECK, so nullable columns need no more.
 */
function timeCheck(column: string) {
  return columnCheck(column, `${column} BETWEEN -${TIME_LIMIT} AND ${TIME_LIMIT}`);
}

/** An id's CHECK: one JavaScript holds exactly. */
function idCheck(column: string) {
  return columnCheck(column, `${column} BETWEEN 1 AND ${Number.MAX_SAFE_INTEGER}`);
}

export const taskQueue = sqliteTable("task_queue", {
  id: integer("id").primaryKey(),
  type: text("type").notNull(),
  priority: integer("priority").notNull().default(100),
  payload: text("payload").notNull().default("{}"),
  status: text("status").$type<TaskStatus>().notNull().default("queued"),
  attempts: integer("attempts").notNull().default(0),
  maxAttempts: integer("max_attempts").notNull().default(5),
  errorMessage: text("error_message"),
  idempotencyKey: text("idempotency_key"),
  lockedBy: text("locked_by"),
  timeoutMs: integer("timeout_ms"),
  runAfter: integer("run_after").notNull().default(NOW_MS),
  leaseUntil: integer("lease_until"),
  leaseToken: text("lease_token"),
  createdAt: integer("created_at").notNull().default(NOW_MS),
  updatedAt: integer("updated_at").notNull().default(NOW_MS),
  /** Null while the task is claimed ahead and has not started: its attempt is not counted yet. */
  startedAt: integer("started_at"),
  finishedAt: integer("finished_at"),
  /**
   * 1 when a worker died holding the task claimed ahead, so that it may have started without its attempt
   * being recorded: every start of it is recorded before its handler runs until an outcome of it is recorded.
   */
  unconfirmedStart: integer("unconfirmed_start").notNull().default(0),
  /** JSON: the task's own backoff fields (`retry` at enqueue), or null. */
  retryPolicy: text("retry_policy"),
  /** JSON: what the handler returned, once completed; null when it returned nothing. */
  result: text("result"),
  /** JSON: the last value given to `ctx.progress()`, or null. */
  progress: text("progress"),
  /** The named queue the task belongs to (migration 8). */
  queue: text("queue").notNull().default("default"),
  /**
   * The task's \`unique\` key (migration 9): held while the task is queued or running when \`uniqueForMs\` is
   * null, else for that long from its creation. Null: none.
   */
  uniqueKey: text("unique_key"),
  /** How long a window key is held from the task's creation; null for a key held while active. */
  uniqueForMs: integer("unique_for_ms"),
  /** When a later enqueue found this task's key window over and took the key; null while it holds it. */
  uniqueReleasedAt: integer("unique_released_at"),
}, (t) => [
  idCheck("id"),
  columnCheck("type", "length(trim(type)) > 0"),
  columnCheck("payload", "json_valid(payload)"),
  // Spelled with OR: SQLite evaluates a CHECK with an IN list far more slowly (it halved bulk inserts).
  columnCheck("status", TASK_STATUSES.map((status) => `status = '${status}'`).join(" OR ")),
  columnCheck("attempts", "attempts >= 0"),
  columnCheck("max_attempts", "max_attempts >= 1"),
  columnCheck("timeout_ms", "timeout_ms > 0"),
  timeCheck("run_after"),
  timeCheck("lease_until"),
  timeCheck("created_at"),
  timeCheck("updated_at"),
  timeCheck("started_at"),
  timeCheck("finished_at"),
  columnCheck("unconfirmed_start", "unconfirmed_start = 0 OR unconfirmed_start = 1"),
  columnCheck("retry_policy", "retry_policy IS NULL OR json_valid(retry_policy)"),
  columnCheck("result", "result IS NULL OR json_valid(result)"),
  columnCheck("progress", "progress IS NULL OR json_valid(progress)"),
  columnCheck("queue", "length(queue) BETWEEN 1 AND 128"),
  columnCheck("unique_for_ms", "unique_for_ms > 0"),
  timeCheck("unique_released_at"),
  check(
    "running_has_lease",
    sql`status <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL)`,
  ),
  // Every index a write touches costs a page written per commit; status appears only in partial-index
  // conditions, which queries must spell as literals to use (see migration 1).
  uniqueIndex("task_queue_idempotency_key").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  // Exactly the \`unique\` keys held now: a finished task leaves it by its status, a window key once released.
  uniqueIndex("task_queue_unique_key").on(t.uniqueKey).where(
    sql`unique_key IS NOT NULL AND unique_released_at IS NULL
    AND (unique_for_ms IS NOT NULL OR status = 'waiting' OR status = 'queued' OR status = 'running')`,
  ),
  // The queue last: claims walk the same order with or without a queue filter, and read a task's queue
  // (to filter, or to leave out paused and limited queues) from the index rather than its row.
  index("task_queue_queued_priority").on(t.priority, t.runAfter, t.id, t.queue).where(sql`status = 'queued'`),
  // Each queue's best tasks, for claims that name their queues or pass held ones by.
  index("task_queue_queued_queue").on(t.queue, t.priority, t.runAfter, t.id).where(sql`status = 'queued'`),
  // The queue here counts a limited queue's running tasks from the index alone.
  index("task_queue_running_lease").on(t.leaseUntil, t.queue).where(sql`status = 'running'`),
  index("task_queue_finished").on(t.finishedAt).where(sql`finished_at IS NOT NULL`),
]);

export const workers = sqliteTable("workers", {
  id: text("id").primaryKey(),
  host: text("host"),
  pid: integer("pid"),
  startedAt: integer("started_at").notNull(),
  heartbeatAt: integer("heartbeat_at").notNull(),
  concurrency: integer("concurrency").notNull(),
  /** JSON array of the task types the worker runs. */
  handlerTypes: text("handler_types").notNull().default("[]"),
}, () => [columnCheck("handler_types", "json_valid(handler_types)")]);

export const taskLogs = sqliteTable("task_logs", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  taskId: integer("task_id").notNull().references(() => taskQueue.id, { onDelete: "cascade" }),
  at: integer("at").notNull(),
  level: text("level").$type<"debug" | "info" | "warn" | "error">().notNull(),
  message: text("message").notNull(),
  /** JSON, or null. */
  details: text("details"),
}, (t) => [
  idCheck("id"),
  timeCheck("at"),
  columnCheck("level", "level IN ('debug', 'info', 'warn', 'error')"),
  columnCheck("details", "details IS NULL OR json_valid(details)"),
  index("task_logs_task").on(t.taskId, t.id),
]);

/**
 * One row per dependency (migration 10): task `task_id` runs only once task `depends_on` has completed.
 * Written when the dependent is enqueued, never changed; deleting either task deletes the row. Looked up
 * both ways: a task's dependencies (the unique index), and a finished task's dependents (`depends_on`).
 */
export const taskDependencies = sqliteTable("task_dependencies", {
  taskId: integer("task_id").notNull().references(() => taskQueue.id, { onDelete: "cascade" }),
  dependsOn: integer("depends_on").notNull().references(() => taskQueue.id, { onDelete: "cascade" }),
}, (t) => [
  uniqueIndex("task_dependencies_pair").on(t.taskId, t.dependsOn),
  index("task_dependencies_depends_on").on(t.dependsOn),
]);

/** Per schedule, the latest slot fired: advanced by compare-and-set with each fire (queries/schedules.ts). */
export const schedules = sqliteTable("schedules", {
  name: text("name").primaryKey(),
  since: integer("since").notNull(),
  lastSlot: integer("last_slot"),
  lastTaskId: integer("last_task_id"),
  firedAt: integer("fired_at"),
}, () => [timeCheck("since"), timeCheck("last_slot"), timeCheck("fired_at")]);
/**
 * A row per queue that has settings: its fleet-wide limits, whether it is paused, and its rate limit's
 * current window. A queue without a row has no limits and is not paused.
 */
export const queues = sqliteTable("queues", {
  name: text("name").primaryKey(),
  concurrencyLimit: integer("concurrency_limit"),
  rateLimit: integer("rate_limit"),
  rateIntervalMs: integer("rate_interval_ms"),
  paused: integer("paused").notNull().default(0),
  /** When the rate limit's current window started (epoch ms, a multiple of the interval), and its claims. */
  windowStart: integer("window_start"),
  windowCount: integer("window_count").notNull().default(0),
  updatedAt: integer("updated_at").notNull(),
}, () => [
  columnCheck("name", "length(name) BETWEEN 1 AND 128"),
  columnCheck("concurrency_limit", "concurrency_limit >= 1"),
  columnCheck("rate_limit", "rate_limit >= 1"),
  columnCheck("rate_interval_ms", "rate_interval_ms >= 1"),
  columnCheck("paused", "paused = 0 OR paused = 1"),
  columnCheck("window_count", "window_count >= 0"),
  check("rate_whole", sql`(rate_limit IS NULL) = (rate_interval_ms IS NULL)`),
]);

/**
 * The metrics' stored counters, one row per counter, task type, queue and histogram bucket: what finished
 * before the watermark in {@link metricRollup} (see `store/metrics_sql.ts`). A rowid and a unique index
 * rather than a composite primary key, which the column-by-column schema test could not describe.
 */
export const metricCounts = sqliteTable("metric_counts", {
  id: integer("id").primaryKey(),
  metric: text("metric").notNull(),
  type: text("type").notNull(),
  queue: text("queue").notNull(),
  /** A histogram bucket's upper bound in milliseconds (-1: unbounded); 0 for other counters. */
  bucket: integer("bucket").notNull(),
  value: integer("value").notNull(),
}, (t) => [
  columnCheck("metric", "length(metric) BETWEEN 1 AND 32"),
  columnCheck("value", "value >= 0"),
  uniqueIndex("metric_counts_key").on(t.metric, t.type, t.queue, t.bucket),
]);

/** One row: how far {@link metricCounts} has counted (see `store/metrics_sql.ts`). */
export const metricRollup = sqliteTable("metric_rollup", {
  id: integer("id").primaryKey(),
  /** Tasks that finished before this are counted in metric_counts. */
  finishedUntil: integer("finished_until").notNull(),
  /** Tasks with ids up to this are counted as enqueued in metric_counts. */
  enqueuedUntil: integer("enqueued_until").notNull(),
  /** The largest id when a read last looked, and when: folded once the settling time has passed. */
  nextEnqueuedUntil: integer("next_enqueued_until").notNull(),
  nextEnqueuedAt: integer("next_enqueued_at").notNull(),
}, () => [columnCheck("id", "id = 1")]);

export const migrationsTable = sqliteTable("prismq_migrations", {
  version: integer("version").primaryKey(),
  name: text("name").notNull(),
  appliedAt: integer("applied_at").notNull(),
});

/**
 * The tables created STRICT (SQLite 3.37+: each column holds its declared type only), which Drizzle's
 * table definitions cannot say.
 */
export const STRICT_TABLES: readonly SQLiteTable[] = [
  taskQueue,
  taskLogs,
  taskDependencies,
  metricCounts,
  metricRollup,
];

export type TaskRow = typeof taskQueue.$inferSelect;
export type WorkerRow = typeof workers.$inferSelect;
export type TaskLogRow = typeof taskLogs.$inferSelect;
export type ScheduleRow = typeof schedules.$inferSelect;
export type QueueRow = typeof queues.$inferSelect;
