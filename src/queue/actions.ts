/**
 * `Queue`'s operator actions on tasks and workers: cancel, retry (one task, every failed one, or by
 * filter), delete, purge, and forgetting workers that went silent.
 *
 * @module
 */
import { invalidType } from "../errors.ts";
import { MAX_EPOCH_MS, wellFormed, wholeNumber } from "../checks.ts";
import { queueName } from "../queue_name.ts";
import type { RequeueFilter } from "../store/store.ts";
import { type Task, type TaskStatus, TERMINAL_STATUSES } from "../task.ts";
import { atNow, type QueueContext, taskId } from "./context.ts";

/** {@link Queue.cancel}'s work. */
export async function cancel(context: QueueContext, id: number): Promise<Task> {
  const checkedId = taskId(id);
  const task = await atNow(context, (now) => context.store.taskCancel(checkedId, now));
  context.db.notifyTasksFinished();
  return task;
}

/** {@link Queue.retry}'s work. */
export async function retry(context: QueueContext, id: number): Promise<Task> {
  const checkedId = taskId(id);
  const task = await atNow(context, (now) => context.store.taskRequeue(checkedId, now));
  context.db.notifyTasksAvailable();
  return task;
}

/** {@link Queue.retryFailed}'s work. */
export async function retryFailed(context: QueueContext, options: { type?: string }): Promise<number> {
  const n = await atNow(context, (now) => context.store.taskRequeueFailed(options.type, now));
  if (n > 0) context.db.notifyTasksAvailable();
  return n;
}

/** {@link Queue.retryWhere}'s work. */
export async function retryWhere(context: QueueContext, filter: RequeueFilter): Promise<number> {
  if (typeof filter !== "object" || filter === null) throw invalidType("The filter must be an object.");
  if (filter.status !== "failed" && filter.status !== "cancelled") {
    throw invalidType(`Cannot retry '${filter.status}' tasks: only failed or cancelled ones.`);
  }
  const checked: RequeueFilter = {
    status: filter.status,
    type: filter.type === undefined ? undefined : wellFormed("type", String(filter.type)),
    queue: filter.queue === undefined ? undefined : queueName(filter.queue),
  };
  const n = await atNow(context, (now) => context.store.taskRequeueWhere(checked, now));
  if (n > 0) context.db.notifyTasksAvailable();
  return n;
}

/** {@link Queue.delete}'s work. */
export function deleteTask(context: QueueContext, id: number): Promise<boolean> {
  return context.store.taskDelete(taskId(id));
}

/** {@link Queue.purge}'s work. */
export function purge(
  context: QueueContext,
  options: { statuses: readonly TaskStatus[]; olderThanMs: number },
): Promise<number> {
  for (const status of options.statuses) {
    if (!TERMINAL_STATUSES.includes(status)) {
      throw invalidType(`Cannot purge '${status}' tasks: only completed, failed and cancelled ones.`);
    }
  }
  const olderThanMs = wholeNumber("olderThanMs", options.olderThanMs, 0);
  return atNow(
    context,
    (now) => context.store.taskPurge(options.statuses, Math.max(now - olderThanMs, -MAX_EPOCH_MS)),
  );
}

/** {@link Queue.pruneWorkers}'s work. */
export function pruneWorkers(context: QueueContext, options: { staleAfterMs: number }): Promise<string[]> {
  const staleAfterMs = wholeNumber("staleAfterMs", options.staleAfterMs, 0);
  return atNow(context, (now) => context.store.workerPrune(Math.max(now - staleAfterMs, -MAX_EPOCH_MS)));
}
