/**
 * The Drizzle schema of PrismQ's tables. The migrations in `migrations.ts` create exactly these columns;
 * `tests/schema_test.ts` checks that the two agree. All times are integer epoch milliseconds.
 *
 * @module
 */
import { getTableColumns, sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { TaskStatus } from "../../task.ts";

/**
 * SQL for "now" in epoch milliseconds, for rows written by plain SQL that leaves the times out; written with
 * `julianday`, which every SQLite has (`unixepoch('subsec')` needs 3.42).
 */
export const NOW_MS = sql`(CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER))`;

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
   * being recorded: its next start is recorded before its handler runs.
   */
  unconfirmedStart: integer("unconfirmed_start").notNull().default(0),
}, (t) => [
  uniqueIndex("task_queue_idempotency_key").on(t.idempotencyKey).where(sql`idempotency_key IS NOT NULL`),
  index("task_queue_queued_priority").on(t.priority, t.runAfter, t.id).where(sql`status = 'queued'`),
  index("task_queue_running_lease").on(t.leaseUntil).where(sql`status = 'running'`),
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
});

export const taskLogs = sqliteTable("task_logs", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  taskId: integer("task_id").notNull().references(() => taskQueue.id, { onDelete: "cascade" }),
  at: integer("at").notNull(),
  level: text("level").$type<"debug" | "info" | "warn" | "error">().notNull(),
  message: text("message").notNull(),
  /** JSON, or null. */
  details: text("details"),
}, (t) => [index("task_logs_task").on(t.taskId, t.id)]);

export const migrationsTable = sqliteTable("prismq_migrations", {
  version: integer("version").primaryKey(),
  name: text("name").notNull(),
  appliedAt: integer("applied_at").notNull(),
});

export type TaskRow = typeof taskQueue.$inferSelect;
export type WorkerRow = typeof workers.$inferSelect;
export type TaskLogRow = typeof taskLogs.$inferSelect;

/** Columns the store keeps for itself: not part of a `Task`. */
export const INTERNAL_COLUMNS: readonly string[] = ["leaseToken", "unconfirmedStart"];

/**
 * A task row as one JSON object keyed like a `Task`, derived from the table above. libSQL's client
 * pays for every column of every row it returns, so one JSON column (parsed in JavaScript) costs a fraction
 * of eighteen; `json(payload)` embeds the payload as JSON rather than as a string to parse twice.
 */
export const TASK_JSON = sql.raw(
  "json_object(" +
    Object.entries(getTableColumns(taskQueue))
      .filter(([key]) => !INTERNAL_COLUMNS.includes(key))
      .map(([key, column]) => `'${key}', ${column.name === "payload" ? "json(payload)" : column.name}`)
      .join(", ") +
    ") AS task",
);
