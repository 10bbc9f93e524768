/**
 * A task, its statuses, and the one table of transitions between them. The store enforces the same table
 * with conditional updates; the property tests check that no sequence of events leaves it.
 *
 * @module
 */
import type { RetryPolicy } from "./retry.ts";

/**
 * Every status a task can have. Exactly these six are ever written. `waiting`: enqueued with dependencies
 * (`dependsOn`) not all completed yet; it is queued when the last of them completes.
 */
export const TASK_STATUSES = ["waiting", "queued", "running", "completed", "failed", "cancelled"] as const;

/** The status of a task. */
export type TaskStatus = typeof TASK_STATUSES[number];

/** Statuses a task never leaves on its own. */
export const TERMINAL_STATUSES: readonly TaskStatus[] = ["completed", "failed", "cancelled"];

/** A task as stored. Times are epoch milliseconds. */
export interface Task<Payload = unknown> {
  id: number;
  type: string;
  /** The parsed JSON payload. */
  payload: Payload;
  status: TaskStatus;
  /** Lower numbers run first under the `priority` strategy. */
  priority: number;
  /** Claims so far, including the current one while running. */
  attempts: number;
  maxAttempts: number;
  /** The last error, kept after a retry and when the task fails for good. */
  errorMessage: string | null;
  idempotencyKey: string | null;
  /** The worker that holds, or last held, the task. */
  lockedBy: string | null;
  /** Per-attempt time limit in milliseconds, or null for the handler's default. */
  timeoutMs: number | null;
  /** The task is not claimable before this time. */
  runAfter: number;
  /** While running: when the lease expires unless extended. */
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /**
   * The task's own backoff (`retry` at enqueue), or null: only the fields it set, over its handler's and
   * its worker's (see `retryPolicyFor` in `retry.ts`).
   */
  retryPolicy: Partial<RetryPolicy> | null;
  /** What the handler returned, parsed from its JSON, once the task completed; null before, or for none. */
  result: unknown;
  /** The last value a handler gave `ctx.progress()`, parsed from its JSON; null when none did. */
  progress: unknown;
  /** The queue it belongs to: `"default"` unless it was enqueued into another. */
  queue: string;
  /** Its `unique` key (see `UniqueOptions`), or null. */
  uniqueKey: string | null;
  /**
   * How long its `unique` key is held from its creation, in milliseconds; null when it is held while the
   * task is queued or running (or there is no key).
   */
  uniqueForMs: number | null;
}

/** Everything that can happen to a task. */
export type TaskEvent =
  | "claim" // a worker takes a runnable task
  | "complete" // its handler succeeded
  | "retry_later" // its handler failed and attempts remain
  | "fail" // attempts exhausted, a non-retryable error, no handler, an invalid payload
  | "expire" // the lease ran out with attempts left: back to the queue
  | "expire_final" // the lease ran out with no attempts left
  | "release" // handed back at shutdown, the attempt not counted
  | "snooze" // its handler asked to run again later (SnoozeError), the attempt not counted
  | "cancel" // an operator cancelled it
  | "requeue" // an operator retried a failed or cancelled task whose dependencies have all completed
  | "requeue_waiting" // an operator retried a failed or cancelled task with dependencies still unfinished
  | "dependencies_done" // the last of its dependencies completed
  | "dependency_lost"; // one of its dependencies failed or was cancelled: it can never run

/** Which status each event moves a task to, from which statuses. */
export const TRANSITIONS: Readonly<Record<TaskEvent, { from: readonly TaskStatus[]; to: TaskStatus }>> = {
  claim: { from: ["queued"], to: "running" },
  complete: { from: ["running"], to: "completed" },
  retry_later: { from: ["running"], to: "queued" },
  fail: { from: ["running"], to: "failed" },
  expire: { from: ["running"], to: "queued" },
  expire_final: { from: ["running"], to: "failed" },
  release: { from: ["running"], to: "queued" },
  snooze: { from: ["running"], to: "queued" },
  cancel: { from: ["waiting", "queued", "running"], to: "cancelled" },
  requeue: { from: ["failed", "cancelled"], to: "queued" },
  requeue_waiting: { from: ["failed", "cancelled"], to: "waiting" },
  dependencies_done: { from: ["waiting"], to: "queued" },
  dependency_lost: { from: ["waiting"], to: "cancelled" },
};

/**
 * The status a task moves to when `event` happens, or `undefined` when the event is not allowed from
 * `status` (the store then changes nothing).
 */
export function nextStatus(status: TaskStatus, event: TaskEvent): TaskStatus | undefined {
  const transition = TRANSITIONS[event];
  return transition.from.includes(status) ? transition.to : undefined;
}

/** Whether `value` is one of the six statuses. */
export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === "string" && (TASK_STATUSES as readonly string[]).includes(value);
}
