/**
 * PrismQ: an embedded, crash-safe task queue on libSQL, for Deno, Bun and Node.
 *
 * Register handlers explicitly, enqueue tasks, and let workers run them under leases:
 *
 * ```ts
 * import * as v from "valibot";
 * import { defineHandler, Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "prismq";
 *
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 *
 * const registry = new TaskHandlerRegistry();
 * registry.registerHandler(defineHandler({
 *   type: "greet",
 *   schema: v.object({ name: v.string() }),
 *   handle: (task) => console.log(`hello ${task.payload.name}`),
 * }));
 *
 * const queue = new Queue(db, { registry });
 * await queue.enqueue("greet", { name: "Ada" });
 *
 * const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
 * await worker.runLoop({ untilEmpty: true });
 * await db.close();
 * ```
 *
 * @module
 */

export { QueueDatabase } from "./src/database.ts";
export type { QueueDatabaseOptions, SqlResult, SqlTransaction, SynchronousMode } from "./src/database.ts";

export { getGlobalRegistry, resetGlobalRegistry, TaskHandlerRegistry } from "./src/registry.ts";
export type { RegisterHandlerOptions, TaskHandlerInfo } from "./src/registry.ts";

export { defineHandler, parsePayload } from "./src/handler.ts";
export type { HandlerContext, HandlerDefinition, PayloadSchema, TaskHandler } from "./src/handler.ts";

export { DEFAULT_MISSED_AFTER_MS, defineSchedule, MISSED_SLOTS } from "./src/schedule.ts";
export type { MissedSlots, ScheduleDefinition, ScheduleOptions } from "./src/schedule.ts";

export { DEFAULT_MAX_PAYLOAD_BYTES, Queue } from "./src/queue.ts";
export type {
  EnqueuedTask,
  EnqueueItem,
  EnqueueOptions,
  EnqueueOutcome,
  EnqueueTransaction,
  ListOptions,
  QueueOptions,
  UniqueOptions,
  WaitForOptions,
  WriteOptions,
} from "./src/queue.ts";

export { createHttpHandler, DEFAULT_MAX_BODY_BYTES } from "./src/server/app.ts";
export type { HttpServerOptions } from "./src/server/app.ts";
export { DASHBOARD_CSP, dashboardResponse } from "./src/server/dashboard/mod.ts";

export { WorkerEngine } from "./src/worker/engine.ts";
export type { RunLoopOptions, RunSummary, WorkerEngineOptions, WorkerEvent } from "./src/worker/engine.ts";

export { backoffDelayMs, DEFAULT_RETRY_POLICY } from "./src/retry.ts";
export type { RetryPolicy } from "./src/retry.ts";

export { ManualClock, systemClock } from "./src/clock.ts";
export type { Clock } from "./src/clock.ts";

export { isTaskStatus, nextStatus, TASK_STATUSES, TERMINAL_STATUSES, TRANSITIONS } from "./src/task.ts";
export type { Task, TaskEvent, TaskStatus } from "./src/task.ts";

export { DEFAULT_QUEUE, formatRate, parseRate } from "./src/queue_name.ts";
export type { QueueLimits, RateLimit } from "./src/queue_name.ts";

export { CLAIM_STRATEGIES } from "./src/store/store.ts";
export type {
  ClaimStrategy,
  LogLevel,
  MatchedKey,
  PayloadMatch,
  QueueInfo,
  QueueSettings,
  QueueStats,
  RequeueFilter,
  ScheduleState,
  TaskLog,
  WaitingTasks,
  WorkerInfo,
} from "./src/store/store.ts";

export { collectMetrics, throughput } from "./src/metrics/collect.ts";
export type {
  CollectMetricsOptions,
  DurationHistogram,
  Metrics,
  TaskCounters,
  ThroughputOptions,
} from "./src/metrics/collect.ts";
export { escapeLabelValue, formatPrometheus, PROMETHEUS_CONTENT_TYPE } from "./src/metrics/prometheus.ts";
export type { DependencyIds, QueueDepth, ThroughputMinute } from "./src/store/store.ts";

export {
  BackupRefusedError,
  DatabaseError,
  DependencyError,
  INVALID_ARGUMENT,
  isInvalidArgument,
  LeaseLostError,
  NonRetryableError,
  PayloadTooLargeError,
  PayloadValidationError,
  PrismqError,
  SnoozeError,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerNotRegisteredError,
  TaskNotFoundError,
  TaskStateError,
  TaskTimeoutError,
  UniqueKeyHeldError,
  WaitTimeoutError,
} from "./src/errors.ts";
export type { PayloadIssue } from "./src/errors.ts";
