/**
 * What a worker reports: the {@link WorkerEvent}s its `onEvent` listener receives, and the
 * {@link RunSummary} a loop returns. One counts what the other says, so both are kept here, in step.
 *
 * @module
 */
import type { LeaseLostError } from "../errors.ts";
import type { Finish, LeasedTask, WaitingTasks } from "../store/store.ts";
import type { Task } from "../task.ts";

/**
 * What a worker reports about the tasks it runs. A task cancelled (`Queue.cancel`) while this worker held
 * it is `cancelled`; `lease-lost` is for a task another worker reclaimed after its lease expired.
 */
export type WorkerEvent =
  | { type: "claimed"; task: Task }
  | { type: "completed"; task: Task; durationMs: number }
  | { type: "retrying"; task: Task; durationMs: number; error: string; runAfter: number }
  | { type: "snoozed"; task: Task; durationMs: number; runAfter: number }
  | { type: "failed"; task: Task; durationMs: number; error: string }
  | { type: "cancelled"; task: Task }
  | { type: "lease-lost"; task: Task; reason: LeaseLostError }
  | { type: "released"; task: Task }
  | { type: "error"; error: unknown };

/** What a `WorkerEngine.runLoop` did. */
export interface RunSummary {
  claimed: number;
  completed: number;
  retried: number;
  /** Tasks whose handler snoozed them (`SnoozeError`): queued again later, the attempt given back. */
  snoozed: number;
  failed: number;
  /** Tasks cancelled while this worker held them (running, or claimed ahead). */
  cancelled: number;
  /** Tasks another worker reclaimed after their lease expired while this one held them. */
  leaseLost: number;
  /** Tasks handed back to the queue at shutdown. */
  released: number;
  /**
   * Set when an `untilEmpty` loop stopped because nothing was runnable: the queued tasks (of its `types`)
   * that wait for a later time, scheduled or backing off, and when the soonest is due.
   */
  waiting?: WaitingTasks;
}

/** Counts what a run does into its summary and tells the listener, whose errors are ignored. */
export class WorkerEvents {
  /** The current loop's counts; a new loop starts a new one. */
  summary: RunSummary = emptySummary();
  readonly #listener: ((event: WorkerEvent) => void) | undefined;
  /** Told when a task this worker ran is recorded finished (completed or failed), for `Queue.waitFor`. */
  readonly #finished: () => void;

  constructor(listener: ((event: WorkerEvent) => void) | undefined, finished: () => void = () => {}) {
    this.#listener = listener;
    this.#finished = finished;
  }

  /** Starts a new loop's summary. */
  reset(): void {
    this.summary = emptySummary();
  }

  emit(event: WorkerEvent): void {
    try {
      this.#listener?.(event);
    } catch {
      // A listener's failure must not disturb the worker.
    }
  }

  error(error: unknown): void {
    this.emit({ type: "error", error });
  }

  claimed(leased: readonly LeasedTask[]): void {
    this.summary.claimed += leased.length;
    if (this.#listener === undefined) return;
    for (const { task } of leased) this.emit({ type: "claimed", task });
  }

  /** An attempt's outcome, recorded: the task completed, goes back for a retry or after a snooze, or failed. */
  recorded(task: Task, finish: Finish, durationMs: number): void {
    if (finish.status === "completed" || finish.status === "failed") this.#finished();
    if (finish.status === "completed") {
      this.summary.completed++;
      // The hot path: no event to build when nobody listens.
      if (this.#listener !== undefined) this.emit({ type: "completed", task, durationMs });
    } else if (finish.status === "queued") {
      this.summary.retried++;
      this.emit({
        type: "retrying",
        task,
        durationMs,
        error: finish.errorMessage,
        runAfter: finish.runAfter,
      });
    } else if (finish.status === "snoozed") {
      this.summary.snoozed++;
      this.emit({ type: "snoozed", task, durationMs, runAfter: finish.runAfter });
    } else {
      this.summary.failed++;
      this.emit({ type: "failed", task, durationMs, error: finish.errorMessage });
    }
  }

  /** A task this worker no longer holds: cancelled, or reclaimed by another worker. */
  lost(task: Task, reason: LeaseLostError): void {
    if (reason.why === "cancelled") {
      this.summary.cancelled++;
      this.emit({ type: "cancelled", task });
    } else {
      this.summary.leaseLost++;
      this.emit({ type: "lease-lost", task, reason });
    }
  }

  /** A task handed back to the queue at shutdown. */
  released(task: Task): void {
    this.summary.released++;
    this.emit({ type: "released", task });
  }
}

function emptySummary(): RunSummary {
  return {
    claimed: 0,
    completed: 0,
    retried: 0,
    snoozed: 0,
    failed: 0,
    cancelled: 0,
    leaseLost: 0,
    released: 0,
  };
}
