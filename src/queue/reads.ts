/**
 * `Queue`'s reads: tasks one at a time, many by id or by filter, their dependencies and logs, the stats,
 * what is kept of schedules and workers; and waiting for a task to finish (src/wait_for.ts does the waiting).
 *
 * @module
 */
import { invalidRange, invalidType } from "../errors.ts";
import type { DependencyIds, QueueStats, ScheduleState, TaskLog, WorkerInfo } from "../store/store.ts";
import { listFilter } from "../list_filter.ts";
import type { Task } from "../task.ts";
import { type WaitForOptions, waitForTask } from "../wait_for.ts";
import type { ListOptions } from "../enqueue_item.ts";
import { atNow, type QueueContext, taskId } from "./context.ts";

/** {@link Queue.get}'s work. */
export function get(context: QueueContext, id: number): Promise<Task | undefined> {
  return context.store.taskGet(taskId(id));
}

/** {@link Queue.getMany}'s work. */
export async function getMany(context: QueueContext, ids: readonly number[]): Promise<(Task | undefined)[]> {
  if (!Array.isArray(ids)) throw invalidType("getMany takes an array of task ids.");
  const checked = ids.map((id) => taskId(id));
  if (checked.length > 1000) {
    throw invalidRange(`getMany reads at most 1,000 tasks, got ${checked.length}.`);
  }
  const byId = new Map(
    (await context.store.taskGetMany([...new Set(checked)])).map((task) => [task.id, task]),
  );
  return checked.map((id) => byId.get(id));
}

/** {@link Queue.dependencies}'s work. */
export function dependencies(context: QueueContext, id: number): Promise<DependencyIds> {
  return context.store.taskDependencyIds(taskId(id));
}

/** {@link Queue.list}'s work. */
export function list(context: QueueContext, options: ListOptions): Promise<Task[]> {
  return context.store.taskList(listFilter(options));
}

/** {@link Queue.waitFor}'s work. */
export function waitFor(context: QueueContext, id: number, options: WaitForOptions): Promise<Task> {
  const checkedId = taskId(id);
  return waitForTask(context.db, context.store, checkedId, options ?? {});
}

/** {@link Queue.stats}'s work. */
export function stats(context: QueueContext): Promise<QueueStats> {
  return atNow(context, (now) => context.store.taskStats(now));
}

/** {@link Queue.logs}'s work. */
export function logs(context: QueueContext, id: number): Promise<TaskLog[]> {
  return context.store.taskLogList(taskId(id));
}

/** {@link Queue.schedules}'s work. */
export function schedules(context: QueueContext): Promise<ScheduleState[]> {
  return context.store.scheduleList();
}

/** {@link Queue.workers}'s work. */
export function workers(context: QueueContext): Promise<WorkerInfo[]> {
  return context.store.workerList();
}
