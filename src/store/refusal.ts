/**
 * Why an operator's action changed nothing, the same on every store: there is no such task, or its status
 * does not allow the action.
 *
 * @module
 */
import { TaskNotFoundError, TaskStateError, UniqueKeyHeldError } from "../errors.ts";
import { type Task, TERMINAL_STATUSES, TRANSITIONS } from "../task.ts";

/**
 * The error for a cancel or requeue of task `id` that changed nothing; `task` is the task as it is now, and
 * `holder` the task that holds its `unique` key, when another does.
 */
export function refusalOf(
  id: number,
  task: Task | undefined,
  event: "cancel" | "requeue",
  holder?: Task,
): Error {
  if (!task) return new TaskNotFoundError(id);
  if (holder && holder.id !== id && TRANSITIONS[event].from.includes(task.status)) {
    return new UniqueKeyHeldError(id, task.uniqueKey!, holder.id, holder);
  }
  return new TaskStateError(
    id,
    task.status,
    event === "cancel" ? "cancel" : "retry",
    TRANSITIONS[event].from,
  );
}

/**
 * Why a delete of task `id` deleted nothing: there is no such task, or it has not finished; or false, for a
 * finished task kept as the newest of all.
 */
export function deleteRefused(id: number, task: Task | undefined): false {
  if (!task) throw new TaskNotFoundError(id);
  if (!TERMINAL_STATUSES.includes(task.status)) {
    throw new TaskStateError(id, task.status, "delete", TERMINAL_STATUSES);
  }
  return false;
}
