/**
 * The named errors that callers catch, all of them a {@link PrismqError} with a stable `code`. Misuse of an
 * API (a blank task type, a handler that is not a function, a negative delay) throws the built-in
 * `TypeError` or `RangeError` instead, marked with the code {@link INVALID_ARGUMENT}.
 *
 * @module
 */

/**
 * The base of every named error PrismQ throws. `code` is stable: switch on it rather than on the message,
 * which may be reworded. `cause`, when set, is the error underneath (a driver's, say).
 *
 * @example
 * ```ts
 * import { PrismqError, Queue, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const error = await new Queue(db).cancel(42).catch((e) => e);
 * if (!(error instanceof PrismqError) || error.code !== "TASK_NOT_FOUND") throw new Error("expected it");
 * await db.close();
 * ```
 */
export abstract class PrismqError extends Error {
  /** What went wrong, as a constant such as `"TASK_NOT_FOUND"`; never reworded. */
  abstract readonly code: string;
  constructor(message?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The `code` of the built-in `TypeError` or `RangeError` that PrismQ's own checks throw when they refuse a
 * value they were given: a mistake in the call, not a failure while doing it.
 */
export const INVALID_ARGUMENT = "INVALID_ARGUMENT";

/** A `TypeError` marked as a refused value: its `code` is {@link INVALID_ARGUMENT}. */
export function invalidType(message: string): TypeError & { code: typeof INVALID_ARGUMENT } {
  return Object.assign(new TypeError(message), { code: INVALID_ARGUMENT } as const);
}

/** A `RangeError` marked as a refused value: its `code` is {@link INVALID_ARGUMENT}. */
export function invalidRange(message: string): RangeError & { code: typeof INVALID_ARGUMENT } {
  return Object.assign(new RangeError(message), { code: INVALID_ARGUMENT } as const);
}

/** Whether `error` is a refusal by one of PrismQ's checks: an error whose `code` is {@link INVALID_ARGUMENT}. */
export function isInvalidArgument(error: unknown): boolean {
  try {
    return error instanceof Error && (error as { code?: unknown }).code === INVALID_ARGUMENT;
  } catch {
    return false; // a Proxy may refuse
  }
}

/** Formats task types the way the original Python design printed them: `['a', 'b']`. */
export function formatTypeList(types: Iterable<string>): string {
  return `[${[...types].sort().map((type) => `'${type}'`).join(", ")}]`;
}

/** A handler is already registered for this task type and `allowOverride` was not set. */
export class TaskHandlerAlreadyRegisteredError extends PrismqError {
  override name = "TaskHandlerAlreadyRegisteredError";
  override readonly code = "HANDLER_ALREADY_REGISTERED";
  constructor(readonly taskType: string) {
    super(
      `A handler is already registered for task type '${taskType}'. ` +
        `Pass { allowOverride: true } to replace it, or unregister it first.`,
    );
  }
}

/** No handler is registered for this task type. The message lists the types that are registered. */
export class TaskHandlerNotRegisteredError extends PrismqError {
  override name = "TaskHandlerNotRegisteredError";
  override readonly code = "HANDLER_NOT_REGISTERED";
  constructor(readonly taskType: string, readonly registeredTypes: ReadonlySet<string>) {
    super(
      `No handler registered for task type '${taskType}'. Registered types: ${
        formatTypeList(registeredTypes)
      }`,
    );
  }
}

/** One problem found in a payload: where it is (`to`, `items.2.id`, or `(root)`) and what is wrong. */
export interface PayloadIssue {
  path: string;
  message: string;
}

/** A payload does not match its handler's schema. Nothing was written, and a task that had it failed for good. */
export class PayloadValidationError extends PrismqError {
  override name = "PayloadValidationError";
  override readonly code = "PAYLOAD_INVALID";
  constructor(readonly taskType: string, readonly issues: readonly PayloadIssue[]) {
    super(
      `Invalid payload for task type '${taskType}': ` +
        issues.map((issue) => `${issue.path}: ${issue.message}`).join("; "),
    );
  }
}

/** A payload is larger than the queue's limit. Nothing was written. */
export class PayloadTooLargeError extends PrismqError {
  override name = "PayloadTooLargeError";
  override readonly code = "PAYLOAD_TOO_LARGE";
  constructor(readonly taskType: string, readonly sizeBytes: number, readonly limitBytes: number) {
    super(
      `The payload for task type '${taskType}' is ${sizeBytes} bytes, over the limit of ${limitBytes} bytes. ` +
        `Store large data elsewhere and enqueue a reference to it, or raise maxPayloadBytes.`,
    );
  }
}

/** No task has this id. */
export class TaskNotFoundError extends PrismqError {
  override name = "TaskNotFoundError";
  override readonly code = "TASK_NOT_FOUND";
  constructor(readonly taskId: number) {
    super(`No task with id ${taskId}.`);
  }
}

/** The task exists but its status does not allow the operation (cancelling a completed task, say). */
export class TaskStateError extends PrismqError {
  override name = "TaskStateError";
  override readonly code = "TASK_STATE_CONFLICT";
  constructor(
    readonly taskId: number,
    readonly status: string,
    operation: string,
    allowed: readonly string[],
  ) {
    super(
      `Cannot ${operation} task ${taskId}: it is '${status}', and only ${
        allowed.map((s) => `'${s}'`).join(", ").replace(/, ([^,]*)$/, " or $1")
      } tasks can be ${
        operation === "cancel" ? "cancelled" : operation === "delete" ? "deleted" : "retried"
      }.`,
    );
  }
}

/**
 * A task's dependencies (`dependsOn`) stand in the way: an enqueue names a task that does not exist (it
 * must be enqueued first, which is also why dependencies can never form a cycle), or a retry of a task one
 * of whose dependencies failed or was cancelled (retry that one first).
 *
 * @example
 * ```ts
 * import { DependencyError, Queue, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const error = await new Queue(db).enqueue("report", {}, { dependsOn: [404] }).catch((e) => e);
 * if (!(error instanceof DependencyError) || error.dependencyId !== 404) throw new Error("expected it");
 * await db.close();
 * ```
 */
export class DependencyError extends PrismqError {
  override name = "DependencyError";
  override readonly code = "DEPENDENCY";
  constructor(readonly dependencyId: number, message: string) {
    super(message);
  }

  /** No task has the id `dependencyId`. */
  static missing(dependencyId: number): DependencyError {
    return new DependencyError(
      dependencyId,
      `Cannot enqueue a task that depends on task ${dependencyId}: no task has that id. Enqueue the ` +
        `dependency first and pass the id it gets.`,
    );
  }

  /**
   * Task `dependencyId` (failed or cancelled) cannot be deleted: task `dependentId` depends on it and has
   * not completed, and would run without it once retried.
   */
  static kept(dependencyId: number, dependentId: number): DependencyError {
    return new DependencyError(
      dependencyId,
      `Cannot delete task ${dependencyId}: task ${dependentId} depends on it and has not completed, and a ` +
        `retry of it would then run without it. Delete task ${dependentId} first.`,
    );
  }

  /** Task `taskId` cannot be retried: its dependency `dependencyId` is `status` (failed or cancelled). */
  static lost(taskId: number, dependencyId: number, status: string): DependencyError {
    return new DependencyError(
      dependencyId,
      `Cannot retry task ${taskId}: its dependency, task ${dependencyId}, is '${status}', so it could never ` +
        `run. Retry task ${dependencyId} first.`,
    );
  }
}

/**
 * A retry refused because the task's `unique` key, held while a task is waiting, queued or running, is held by
 * another task now: retrying it would make two pending tasks with one key. Nothing was changed.
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase, UniqueKeyHeldError } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const queue = new Queue(db);
 * const unique = { key: "sync:42", while: "active" } as const;
 * const first = await queue.enqueue("sync", {}, { unique });
 * await queue.cancel(first.id); // the key is free again
 * const second = await queue.enqueue("sync", {}, { unique });
 * const error = await queue.retry(first.id).catch((e) => e);
 * error instanceof UniqueKeyHeldError && error.holderId === second.id; // true
 * await db.close();
 * ```
 */
export class UniqueKeyHeldError extends PrismqError {
  override name = "UniqueKeyHeldError";
  override readonly code = "UNIQUE_KEY_HELD";
  constructor(
    readonly taskId: number,
    readonly key: string,
    readonly holderId: number,
    holder?: { status: string; uniqueForMs: number | null; createdAt: number },
  ) {
    super(
      `Cannot retry task ${taskId}: its unique key ${JSON.stringify(key)} is held by task ${holderId}, ` +
        holdingWords(holderId, holder),
    );
  }
}

/** How the holder of a key holds it, and what frees it, for {@link UniqueKeyHeldError}'s message. */
function holdingWords(
  holderId: number,
  holder: { status: string; uniqueForMs: number | null; createdAt: number } | undefined,
): string {
  if (holder?.uniqueForMs != null) {
    const until = new Date(holder.createdAt + holder.uniqueForMs).toISOString();
    return `whose window on it lasts until ${until} (it is '${holder.status}'). Retry it after that.`;
  }
  const status = holder ? `which is '${holder.status}'` : "which is waiting, queued or running";
  return `${status}. Retry it once task ${holderId} has finished, or cancel task ${holderId} first.`;
}

/**
 * Thrown by a handler to fail its task for good, without the retries that other errors get.
 *
 * @example
 * ```ts
 * import { NonRetryableError } from "prismq";
 * function charge(amount: number) {
 *   if (amount <= 0) throw new NonRetryableError(`amount must be positive, got ${amount}`);
 * }
 * ```
 */
export class NonRetryableError extends PrismqError {
  override name = "NonRetryableError";
  override readonly code = "NON_RETRYABLE";
}

/**
 * Thrown by a handler to run its task again later, when it is not ready yet ("the report is still being
 * built"): the task goes back to the queue, due `delayMs` from now, and the attempt is given back (not
 * counted against `maxAttempts`), its error message untouched. Like any outcome, it is recorded only while
 * the worker still holds the task's lease. A thrown error rather than a returned value: it works from
 * anywhere in the handler's call stack, and cannot be mistaken for a result.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { defineHandler, SnoozeError } from "prismq";
 *
 * export const publish = defineHandler({
 *   type: "publish_report",
 *   schema: v.object({ reportId: v.string() }),
 *   async handle(task) {
 *     const ready = await Promise.resolve(false); // is the report built yet?
 *     if (!ready) throw new SnoozeError(30_000); // look again in 30 s; no attempt used
 *   },
 * });
 * ```
 */
export class SnoozeError extends PrismqError {
  override name = "SnoozeError";
  override readonly code = "SNOOZE";
  /** How long the task waits before it is runnable again, in milliseconds. */
  readonly delayMs: number;
  /** @throws {RangeError} for a delay that is not a whole number of milliseconds from 0 to 100 years */
  constructor(delayMs: number) {
    if (typeof delayMs !== "number" || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_SNOOZE_MS) {
      throw invalidRange(
        `A snooze must be a whole number of milliseconds from 0 to ${MAX_SNOOZE_MS}, got ${String(delayMs)}.`,
      );
    }
    super(`snoozed for ${delayMs} ms`);
    this.delayMs = delayMs;
  }
}

/** checks.ts's MAX_DURATION_MS (100 years), written out: checks.ts imports this module. */
const MAX_SNOOZE_MS = 100 * 365 * 86_400_000;

/**
 * The reason a handler's `ctx.signal` aborts when its worker no longer holds the task's lease: the task was
 * cancelled, reclaimed after the lease expired, or handed back at shutdown. Whatever the handler returns
 * afterwards is discarded.
 */
export class LeaseLostError extends PrismqError {
  override name = "LeaseLostError";
  override readonly code = "LEASE_LOST";
  constructor(readonly taskId: number, readonly why: "cancelled" | "reclaimed" | "released") {
    super(
      why === "cancelled"
        ? `Task ${taskId} was cancelled.`
        : why === "released"
        ? `Task ${taskId} was handed back to the queue because its worker is shutting down.`
        : `The lease on task ${taskId} was lost: another worker reclaimed it after the lease expired.`,
    );
  }
}

/** The reason a handler's `ctx.signal` aborts when the task ran longer than its `timeoutMs`. */
export class TaskTimeoutError extends PrismqError {
  override name = "TaskTimeoutError";
  override readonly code = "TASK_TIMEOUT";
  constructor(readonly taskId: number, readonly timeoutMs: number) {
    super(`Task ${taskId} timed out after ${timeoutMs} ms.`);
  }
}

/**
 * The database cannot be opened or used: a missing folder, a corrupt or read-only file, a bad URL. Its code
 * is `DATABASE_URL_INVALID` for a location that cannot be read as one, else `DATABASE_ERROR`.
 */
export class DatabaseError extends PrismqError {
  override name = "DatabaseError";
  override readonly code: "DATABASE_ERROR" | "DATABASE_URL_INVALID";
  constructor(
    message: string,
    options?: { cause?: unknown; code?: "DATABASE_ERROR" | "DATABASE_URL_INVALID" },
  ) {
    super(message, options);
    this.code = options?.code ?? "DATABASE_ERROR";
  }
}

/**
 * A backup was refused before anything was written: its folder is missing, its target is a folder or an
 * existing file (without `overwrite`), or it is a file of a database this process has open; or the database
 * is of a kind PrismQ cannot copy to a local file (a libSQL server), which the message names.
 */
export class BackupRefusedError extends PrismqError {
  override name = "BackupRefusedError";
  override readonly code = "BACKUP_REFUSED";
}

/**
 * `Queue.waitFor` gave up: the task had not finished within the `timeoutMs` it was given. The task itself
 * is untouched and may still finish.
 */
export class WaitTimeoutError extends PrismqError {
  override name = "WaitTimeoutError";
  override readonly code = "WAIT_TIMEOUT";
  constructor(readonly taskId: number, readonly timeoutMs: number, readonly status: string) {
    super(
      `Task ${taskId} did not finish within ${timeoutMs} ms (it is ${status}); waitFor stopped waiting, ` +
        `and the task is left as it is. Give a longer timeoutMs, or look again later with queue.get(${taskId}).`,
    );
  }
}
