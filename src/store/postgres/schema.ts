/**
 * PrismQ's tables on PostgreSQL as they are now, written once with Drizzle's `pg-core`: columns, types,
 * defaults, keys, references, CHECK constraints and indexes. The column lists of the queries
 * (`columns.ts`) and the row types derive from these definitions.
 *
 * The migrations in `migrations.ts` are the history that builds these tables, and never change once
 * shipped; `tests/postgres_schema_test.ts` holds the two together on a migrated database. Every number is
 * a `bigint` (PrismQ accepts any safe integer as a priority, attempt count or timeout), read back as a
 * JavaScript number (see `connection.ts`); all times are epoch milliseconds.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  json,
  pgTable,
  text,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import type { TaskStatus } from "../../task.ts";

/** SQL for "now" in epoch milliseconds on the server's clock, for rows written by plain SQL. */
export const NOW_MS = sql`((extract(epoch from clock_timestamp()) * 1000)::bigint)`;

/** The latest time a JavaScript Date can hold, in epoch milliseconds; the earliest is its negation. */
const TIME_LIMIT = 8640000000000000;

const number = (name: string) => bigint(name, { mode: "number" });

/** A CHECK on one column, named after it. */
function columnCheck(column: string, condition: string) {
  return check(column, sql.raw(condition));
}

/** A time column's CHECK: within a Date's range. A NULL passes a CHECK, so nullable columns need no more. */
function timeCheck(column: string) {
  return columnCheck(column, `${column} BETWEEN -${TIME_LIMIT} AND ${TIME_LIMIT}`);
}

export const taskQueue = pgTable("task_queue", {
  id: number("id").primaryKey().generatedByDefaultAsIdentity(),
  type: text("type").notNull(),
  priority: number("priority").notNull().default(100),
  /** JSON, kept as the text given (the `json` type checks it and keeps it verbatim, unlike `jsonb`). */
  payload: json("payload").notNull().default({}),
  status: text("status").$type<TaskStatus>().notNull().default("queued"),
  attempts: number("attempts").notNull().default(0),
  maxAttempts: number("max_attempts").notNull().default(5),
  errorMessage: text("error_message"),
  idempotencyKey: text("idempotency_key"),
  lockedBy: text("locked_by"),
  timeoutMs: number("timeout_ms"),
  runAfter: number("run_after").notNull().default(NOW_MS),
  leaseUntil: number("lease_until"),
  leaseToken: text("lease_token"),
  createdAt: number("created_at").notNull().default(NOW_MS),
  updatedAt: number("updated_at").notNull().default(NOW_MS),
  /** Null while the task is claimed ahead and has not started: its attempt is not counted yet. */
  startedAt: number("started_at"),
  finishedAt: number("finished_at"),
  /**
   * True when a worker died holding the task claimed ahead, so that it may have started without its attempt
   * being recorded: every start of it is recorded before its handler runs until an outcome of it is recorded.
   */
  unconfirmedStart: boolean("unconfirmed_start").notNull().default(false),
  /** The task's own backoff fields (`retry` at enqueue), or null. */
  retryPolicy: json("retry_policy"),
  /** What the handler returned, once completed; null when it returned nothing. */
  result: json("result"),
  /** The last value given to `ctx.progress()`, or null. */
  progress: json("progress"),
  /** The named queue the task belongs to (migration 6). */
  queue: text("queue").notNull().default("default"),
  /**
   * The task's \`unique\` key (migration 7): held while the task is queued or running when \`uniqueForMs\` is
   * null, else for that long from its creation. Null: none.
   */
  uniqueKey: text("unique_key"),
  /** How long a window key is held from the task's creation; null for a key held while active. */
  uniqueForMs: number("unique_for_ms"),
  /** When a later enqueue found this task's key window over and took the key; null while it holds it. */
  uniqueReleasedAt: number("unique_released_at"),
}, (t) => [
  columnCheck("type", "length(trim(type)) > 0"),
  columnCheck("status", "status IN ('waiting', 'queued', 'running', 'completed', 'failed', 'cancelled')"),
  columnCheck("attempts", "attempts >= 0"),
  columnCheck("max_attempts", "max_attempts >= 1"),
  columnCheck("timeout_ms", "timeout_ms > 0"),
  timeCheck("run_after"),
  timeCheck("lease_until"),
  timeCheck("created_at"),
  timeCheck("updated_at"),
  timeCheck("started_at"),
  timeCheck("finished_at"),
  columnCheck("queue", "length(queue) BETWEEN 1 AND 128"),
  columnCheck("unique_for_ms", "unique_for_ms > 0"),
  timeCheck("unique_released_at"),
  check(
    "running_has_lease",
    sql`status <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL)`,
  ),
  // Status appears only in partial-index conditions, which queries spell as literals to use.
  uniqueIndex("task_queue_idempotency_key").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  // Exactly the \`unique\` keys held now: a finished task leaves it by its status, a window key once released.
  uniqueIndex("task_queue_unique_key").on(t.uniqueKey).where(
    sql`unique_key IS NOT NULL AND unique_released_at IS NULL
    AND (unique_for_ms IS NOT NULL OR status IN ('waiting', 'queued', 'running'))`,
  ),
  // The queue last: claims walk the same order with or without a queue filter, and read a task's queue
  // from the index; in the running index, it counts a limited queue's running tasks.
  index("task_queue_queued_priority").on(t.priority, t.runAfter, t.id, t.queue).where(sql`status = 'queued'`),
  // Each queue's best tasks, for claims that name their queues or pass held ones by.
  index("task_queue_queued_queue").on(t.queue, t.priority, t.runAfter, t.id).where(sql`status = 'queued'`),
  index("task_queue_queued_id").on(t.id, t.runAfter, t.queue).where(sql`status = 'queued'`),
  index("task_queue_running_lease").on(t.leaseUntil, t.queue).where(sql`status = 'running'`),
  index("task_queue_finished").on(t.finishedAt).where(sql`finished_at IS NOT NULL`),
]);

export const workers = pgTable("workers", {
  id: text("id").primaryKey(),
  host: text("host"),
  pid: number("pid"),
  startedAt: number("started_at").notNull(),
  heartbeatAt: number("heartbeat_at").notNull(),
  concurrency: number("concurrency").notNull(),
  /** JSON array of the task types the worker runs. */
  handlerTypes: json("handler_types").notNull().default([]),
});

export const taskLogs = pgTable("task_logs", {
  id: number("id").primaryKey().generatedByDefaultAsIdentity(),
  taskId: number("task_id").notNull().references(() => taskQueue.id, { onDelete: "cascade" }),
  at: number("at").notNull(),
  level: text("level").$type<"debug" | "info" | "warn" | "error">().notNull(),
  message: text("message").notNull(),
  /** JSON, or null. */
  details: json("details"),
}, (t) => [
  timeCheck("at"),
  columnCheck("level", "level IN ('debug', 'info', 'warn', 'error')"),
  index("task_logs_task").on(t.taskId, t.id),
]);

/**
 * One row per dependency (migration 8): task `task_id` runs only once task `depends_on` has completed.
 * Written when the dependent is enqueued, never changed; deleting either task deletes the row.
 */
export const taskDependencies = pgTable("task_dependencies", {
  taskId: number("task_id").notNull(),
  dependsOn: number("depends_on").notNull(),
}, (t) => [
  // Named so that their alphabetical order is this one, which the schema test compares.
  foreignKey({ name: "task_dependencies_dependency", columns: [t.dependsOn], foreignColumns: [taskQueue.id] })
    .onDelete("cascade"),
  foreignKey({ name: "task_dependencies_dependent", columns: [t.taskId], foreignColumns: [taskQueue.id] })
    .onDelete("cascade"),
  uniqueIndex("task_dependencies_pair").on(t.taskId, t.dependsOn),
  index("task_dependencies_depends_on").on(t.dependsOn),
]);

/** One row per kind of work the fleet does once, naming the worker that leads it and until when. */
export const leaders = pgTable("leaders", {
  name: text("name").primaryKey(),
  leaderId: text("leader_id").notNull(),
  /** When this leader was elected: kept while it renews its lease. */
  electedAt: number("elected_at").notNull(),
  expiresAt: number("expires_at").notNull(),
}, () => [timeCheck("elected_at"), timeCheck("expires_at")]);

/** Per schedule, the latest slot fired: advanced by compare-and-set with each fire (queries/schedules.ts). */
export const schedules = pgTable("schedules", {
  name: text("name").primaryKey(),
  since: number("since").notNull(),
  lastSlot: number("last_slot"),
  lastTaskId: number("last_task_id"),
  firedAt: number("fired_at"),
}, () => [timeCheck("since"), timeCheck("last_slot"), timeCheck("fired_at")]);
/**
 * A row per queue that has settings: its fleet-wide limits, whether it is paused, and its rate limit's
 * current window. A queue without a row has no limits and is not paused. A claim from a limited queue
 * locks its row, so that claims from it are made one at a time and count exactly.
 */
export const queues = pgTable("queues", {
  name: text("name").primaryKey(),
  concurrencyLimit: number("concurrency_limit"),
  rateLimit: number("rate_limit"),
  rateIntervalMs: number("rate_interval_ms"),
  paused: boolean("paused").notNull().default(false),
  windowStart: number("window_start"),
  windowCount: number("window_count").notNull().default(0),
  updatedAt: number("updated_at").notNull(),
}, () => [
  columnCheck("name", "length(name) BETWEEN 1 AND 128"),
  columnCheck("concurrency_limit", "concurrency_limit >= 1"),
  columnCheck("rate_limit", "rate_limit >= 1"),
  columnCheck("rate_interval_ms", "rate_interval_ms >= 1"),
  columnCheck("window_count", "window_count >= 0"),
  check("rate_whole", sql`(rate_limit IS NULL) = (rate_interval_ms IS NULL)`),
]);

/**
 * The metrics' stored counters, one row per counter, task type, queue and histogram bucket: what finished
 * before the watermark in {@link metricRollup} (see `store/metrics_sql.ts`).
 */
export const metricCounts = pgTable("metric_counts", {
  id: number("id").primaryKey().generatedByDefaultAsIdentity(),
  metric: text("metric").notNull(),
  type: text("type").notNull(),
  queue: text("queue").notNull(),
  /** A histogram bucket's upper bound in milliseconds (-1: unbounded); 0 for other counters. */
  bucket: number("bucket").notNull(),
  value: number("value").notNull(),
}, (t) => [
  columnCheck("metric", "length(metric) BETWEEN 1 AND 32"),
  columnCheck("value", "value >= 0"),
  uniqueIndex("metric_counts_key").on(t.metric, t.type, t.queue, t.bucket),
]);

/** One row: how far {@link metricCounts} has counted (see `store/metrics_sql.ts`). */
export const metricRollup = pgTable("metric_rollup", {
  id: integer("id").primaryKey(),
  /** Tasks that finished before this are counted in metric_counts. */
  finishedUntil: number("finished_until").notNull(),
  /** Tasks with ids up to this are counted as enqueued in metric_counts. */
  enqueuedUntil: number("enqueued_until").notNull(),
  /** The largest id when a read last looked, and when: folded once the settling time has passed. */
  nextEnqueuedUntil: number("next_enqueued_until").notNull(),
  nextEnqueuedAt: number("next_enqueued_at").notNull(),
}, () => [columnCheck("id", "id = 1")]);

export const migrationsTable = pgTable("prismq_migrations", {
  version: number("version").primaryKey(),
  name: text("name").notNull(),
  appliedAt: number("applied_at").notNull(),
});

export type TaskRow = typeof taskQueue.$inferSelect;
export type ScheduleRow = typeof schedules.$inferSelect;
