/**
 * What an attempt becomes, decided without touching anything: completed, queued again after a backoff, or
 * failed for good. The executor runs the attempt; this says what its result or error means.
 *
 * @module
 */
import { describeError, isInstance } from "../describe_error.ts";
import { NonRetryableError, PayloadValidationError, SnoozeError } from "../errors.ts";
import { backoffDelayMs, type RetryPolicy } from "../retry.ts";
import type { Fence, Finish } from "../store/store.ts";
import type { Task } from "../task.ts";

/**
 * An attempt whose handler returned (or resolved): the task is done, with `result` (JSON text) when the
 * handler returned a value.
 */
export function completedOutcome(fence: Fence, result?: string): Finish {
  return result === undefined
    ? { id: fence.id, leaseToken: fence.leaseToken, status: "completed" }
    : { id: fence.id, leaseToken: fence.leaseToken, status: "completed", result };
}

/** Failed for good, without retry: a task that cannot run here (no handler for its type), or see below. */
export function failedOutcome(fence: Fence, errorMessage: string): Finish {
  return { id: fence.id, leaseToken: fence.leaseToken, status: "failed", errorMessage };
}

/** Where a failed attempt stood, besides its error. */
export interface FailedAttempt {
  /** The task as it ran: `attempts` counts this attempt. */
  task: Pick<Task, "attempts" | "maxAttempts">;
  /** Whether the worker had lost the task (cancelled, reclaimed, handed back): nothing is recorded then. */
  lost: boolean;
  /** The time of the failure, in epoch ms: a retry is due its backoff after it. */
  now: number;
  retry: RetryPolicy;
  /** The source of jitter for the backoff. */
  random: () => number;
}

/**
 * What an attempt that threw (or rejected, or timed out) becomes. A `SnoozeError` snoozes the task (see
 * `Finish`). It fails for good when the worker had
 * lost the task, when the error is a `NonRetryableError` or a `PayloadValidationError` (another attempt
 * would end the same way), or when no attempts remain; otherwise the task is queued again, due after a
 * backoff from `now`.
 */
export function failureOutcome(fence: Fence, error: unknown, attempt: FailedAttempt): Finish {
  // A snooze is no failure: the task goes back, due after its delay, the attempt given back.
  if (!attempt.lost && isInstance(error, SnoozeError)) {
    const { delayMs } = error as SnoozeError;
    return { id: fence.id, leaseToken: fence.leaseToken, status: "snoozed", runAfter: attempt.now + delayMs };
  }
  const errorMessage = describeError(error);
  const { task } = attempt;
  if (
    attempt.lost || isInstance(error, NonRetryableError) || isInstance(error, PayloadValidationError) ||
    task.attempts >= task.maxAttempts
  ) {
    return failedOutcome(fence, errorMessage);
  }
  const delay = backoffDelayMs(attempt.retry, task.attempts, attempt.random);
  return {
    id: fence.id,
    leaseToken: fence.leaseToken,
    status: "queued",
    runAfter: attempt.now + delay,
    errorMessage,
  };
}
