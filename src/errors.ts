/**
 * The named errors that callers catch. Misuse of an API (a blank task type, a handler that is not a
 * function, a negative delay) throws the built-in `TypeError` or `RangeError` instead.
 *
 * @module
 */

/** Formats task types the way the original Python design printed them: `['a', 'b']`. */
export function formatTypeList(types: Iterable<string>): string {
  return `[${[...types].sort().map((type) => `'${type}'`).join(", ")}]`;
}

/** A handler is already registered for this task type and `allowOverride` was not set. */
export class TaskHandlerAlreadyRegisteredError extends Error {
  override name = "TaskHandlerAlreadyRegisteredError";
  constructor(readonly taskType: string) {
    super(
      `A handler is already registered for task type '${taskType}'. ` +
        `Pass { allowOverride: true } to replace it, or unregister it first.`,
    );
  }
}

/** No handler is registered for this task type. The message lists the types that are registered. */
export class TaskHandlerNotRegisteredError extends Error {
  override name = "TaskHandlerNotRegisteredError";
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
export class PayloadValidationError extends Error {
  override name = "PayloadValidationError";
  constructor(readonly taskType: string, readonly issues: readonly PayloadIssue[]) {
    super(
      `Invalid payload for task type '${taskType}': ` +
        issues.map((issue) => `${issue.path}: ${issue.message}`).join("; "),
    );
  }
}

/** A payload is larger than the queue's limit. Nothing was written. */
export class PayloadTooLargeError extends Error {
  override name = "PayloadTooLargeError";
  constructor(readonly taskType: string, readonly sizeBytes: number, readonly limitBytes: number) {
    super(
      `The payload for task type '${taskType}' is ${sizeBytes} bytes, over the limit of ${limitBytes} bytes. ` +
        `Store large data elsewhere and enqueue a reference to it, or raise maxPayloadBytes.`,
    );
  }
}

/** No task has this id. */
export class TaskNotFoundError extends Error {
  override name = "TaskNotFoundError";
  constructor(readonly taskId: number) {
    super(`No task with id ${taskId}.`);
  }
}

/** The task exists but its status does not allow the operation (cancelling a completed task, say). */
export class TaskStateError extends Error {
  override name = "TaskStateError";
  constructor(
    readonly taskId: number,
    readonly status: string,
    operation: string,
    allowed: readonly string[],
  ) {
    super(
      `Cannot ${operation} task ${taskId}: it is '${status}', and only ${
        allowed.map((s) => `'${s}'`).join(" or ")
      } tasks can be ${operation === "cancel" ? "cancelled" : "retried"}.`,
    );
  }
}

/**
 * Thrown by a handler to fail its task for good, without the retries that other errors get.
 *
 * @example
 * ```ts
 * import { NonRetryableError } from "./mod.ts";
 * function charge(amount: number) {
 *   if (amount <= 0) throw new NonRetryableError(`amount must be positive, got ${amount}`);
 * }
 * ```
 */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

/**
 * The reason a handler's `ctx.signal` aborts when its worker no longer holds the task's lease: the task was
 * cancelled, reclaimed after the lease expired, or handed back at shutdown. Whatever the handler returns
 * afterwards is discarded.
 */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
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
export class TaskTimeoutError extends Error {
  override name = "TaskTimeoutError";
  constructor(readonly taskId: number, readonly timeoutMs: number) {
    super(`Task ${taskId} timed out after ${timeoutMs} ms.`);
  }
}

/** The database cannot be opened or used: a missing folder, a corrupt or read-only file, a bad URL. */
export class DatabaseError extends Error {
  override name = "DatabaseError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A backup was refused before anything was written: its folder is missing, its target is a folder or an
 * existing file (without `overwrite`), or it is a file of a database this process has open.
 */
export class BackupRefusedError extends Error {
  override name = "BackupRefusedError";
}
