/**
 * The worker's outcome decision on its own, without a database or a worker: what an attempt's result or
 * error becomes.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_RETRY_POLICY,
  LeaseLostError,
  NonRetryableError,
  PayloadValidationError,
  type RetryPolicy,
  TaskTimeoutError,
} from "../mod.ts";
import {
  completedOutcome,
  type FailedAttempt,
  failedOutcome,
  failureOutcome,
} from "../src/worker/outcome.ts";

const fence = { id: 7, leaseToken: "token-7" };
const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const half = () => 0.5;

/** The third attempt of five, failing at NOW under the default policy with no jitter drawn. */
function attempt(overrides: Partial<FailedAttempt> = {}): FailedAttempt {
  return {
    task: { attempts: 3, maxAttempts: 5 },
    lost: false,
    now: NOW,
    retry: DEFAULT_RETRY_POLICY,
    random: half,
    ...overrides,
  };
}

describe("the outcome of an attempt", () => {
  test("a handler that returned completes the task, under the attempt's fence", () => {
    assert.deepEqual(completedOutcome(fence), { id: 7, leaseToken: "token-7", status: "completed" });
  });

  test("a refused task fails with the reason given", () => {
    assert.deepEqual(failedOutcome(fence, "No handler registered for task type 'x'. Registered types: []"), {
      id: 7,
      leaseToken: "token-7",
      status: "failed",
      errorMessage: "No handler registered for task type 'x'. Registered types: []",
    });
  });

  test("an error with attempts left queues the task again, due after the policy's backoff from now", () => {
    assert.deepEqual(failureOutcome(fence, new Error("flaky"), attempt()), {
      id: 7,
      leaseToken: "token-7",
      status: "queued",
      runAfter: NOW + 4000, // 1 s × 2^(3 − 1)
      errorMessage: "flaky",
    });
  });

  test("the backoff follows the given policy and takes its jitter from the given source", () => {
    const retry: RetryPolicy = { initialDelayMs: 100, multiplier: 3, maxDelayMs: 10_000, jitter: 0.5 };
    const lowest = failureOutcome(fence, new Error("x"), attempt({ retry, random: () => 0 }));
    assert.equal(lowest.status === "queued" && lowest.runAfter, NOW + 450); // 900 × (1 − 0.5)
    const capped = failureOutcome(
      fence,
      new Error("x"),
      attempt({ task: { attempts: 9, maxAttempts: 10 }, retry }),
    );
    assert.equal(capped.status === "queued" && capped.runAfter, NOW + 10_000);
  });

  test("a timeout is retried like any other error", () => {
    const finish = failureOutcome(fence, new TaskTimeoutError(7, 50), attempt());
    assert.equal(finish.status, "queued");
    assert.equal(
      finish.status === "queued" && finish.errorMessage,
      "TaskTimeoutError: Task 7 timed out after 50 ms.",
    );
  });

  test("the last attempt's error fails the task", () => {
    const finish = failureOutcome(
      fence,
      new Error("still broken"),
      attempt({ task: { attempts: 5, maxAttempts: 5 } }),
    );
    assert.deepEqual(finish, {
      id: 7,
      leaseToken: "token-7",
      status: "failed",
      errorMessage: "still broken",
    });
  });

  test("a NonRetryableError or an invalid payload fails the task with attempts left", () => {
    const nonRetryable = failureOutcome(fence, new NonRetryableError("card declined"), attempt());
    assert.equal(nonRetryable.status, "failed");
    const invalid = new PayloadValidationError("greet", [{ path: "name", message: "Invalid type" }]);
    const finish = failureOutcome(fence, invalid, attempt());
    assert.deepEqual(finish, {
      id: 7,
      leaseToken: "token-7",
      status: "failed",
      errorMessage: "PayloadValidationError: Invalid payload for task type 'greet': name: Invalid type",
    });
  });

  test("an error after the task was lost is not retried", () => {
    const finish = failureOutcome(fence, new LeaseLostError(7, "cancelled"), attempt({ lost: true }));
    assert.equal(finish.status, "failed");
  });

  test("whatever is thrown is described, and the decision draws jitter only for a retry", () => {
    let draws = 0;
    const counting = () => (draws++, 0.5);
    const thrown = failureOutcome(
      fence,
      42,
      attempt({ random: counting, task: { attempts: 1, maxAttempts: 1 } }),
    );
    assert.equal(thrown.status === "failed" && thrown.errorMessage, "42");
    assert.equal(draws, 0);
    failureOutcome(fence, "oops", attempt({ random: counting }));
    assert.equal(draws, 1);
  });
});
