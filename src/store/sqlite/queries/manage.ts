/**
 * What an operator does to tasks: cancel one, retry one or every failed one, and purge finished ones. Each
 * change is one conditional UPDATE or DELETE that allows only the transitions in `TRANSITIONS`; a refused
 * one says why.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Task, TaskStatus } from "../../../task.ts";
import { refusalOf } from "../../refusal.ts";
import { TASK_JSON, type TaskJsonRow, toTask } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { all, literalStatuses, statusAllows } from "../sql.ts";
import { getTask } from "./read.ts";
import { holdersOf } from "./insert.ts";

/** Cancels a queued or running task and returns it. */
export async function cancel(conn: Connection, id: number, now: number): Promise<Task> {
  const rows = await all<TaskJsonRow>(
    conn,
    sql`
      UPDATE task_queue SET status = 'cancelled', finished_at = ${now}, updated_at = ${now},
        lease_until = NULL, lease_token = NULL
      WHERE id = ${id} AND ${statusAllows("cancel")}
      RETURNING ${TASK_JSON}`,
  );
  if (rows[0]) return toTask(rows[0]);
  throw refusalOf(id, await getTask(conn, id), "cancel");
}

/**
 * Whether queueing the task again leaves its `unique` key alone: it has none, or a window key (held or not
 * whatever its status), or a key held while active that no other task holds now. The last condition is the
 * unique index's own, spelled alike so that the planner reads the index.
 */
const KEY_FREE = sql`(unique_key IS NULL OR unique_for_ms IS NOT NULL OR NOT EXISTS (
  SELECT 1 FROM task_queue AS holder
  WHERE holder.unique_key = task_queue.unique_key AND holder.unique_key IS NOT NULL
    AND holder.unique_released_at IS NULL
    AND (holder.unique_for_ms IS NOT NULL OR holder.status = 'queued' OR holder.status = 'running')))`;

/**
 * Queues a failed or cancelled task again, due now, with its attempts reset, and returns it; refused while
 * another task holds its key held while active.
 */
export async function requeue(conn: Connection, id: number, now: number): Promise<Task> {
  const rows = await all<TaskJsonRow>(
    conn,
    sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
        updated_at = ${now}
      WHERE id = ${id} AND ${statusAllows("requeue")} AND ${KEY_FREE}
      RETURNING ${TASK_JSON}`,
  );
  if (rows[0]) return toTask(rows[0]);
  const task = await getTask(conn, id);
  const holders = task?.uniqueKey == null ? [] : await all<{ task: string; matched: string }>(
    conn,
    holdersOf([], [task.uniqueKey]),
  );
  throw refusalOf(id, task, "requeue", holders[0] && toTask(holders[0]));
}

/**
 * Queues every failed task (of `type`, when given) again, but those whose key held while active another
 * task holds; returns how many.
 */
export async function requeueFailed(
  conn: Connection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}`;
  // Of several failed tasks with one key held while active, only the newest goes back: two would collide.
  const rows = await all<{ id: number }>(
    conn,
    sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
        updated_at = ${now}
      WHERE status = 'failed' ${ofType} AND ${KEY_FREE}
        AND (unique_key IS NULL OR unique_for_ms IS NOT NULL OR id IN (
          SELECT max(id) FROM task_queue
          WHERE status = 'failed' ${ofType} AND unique_key IS NOT NULL AND unique_for_ms IS NULL
          GROUP BY unique_key))
      RETURNING id`,
  );
  return rows.length;
}

/** Deletes the tasks of `statuses` that finished before `finishedBefore`; returns how many. */
export async function purge(
  conn: Connection,
  statuses: readonly TaskStatus[],
  finishedBefore: number,
): Promise<number> {
  const rows = await all<{ id: number }>(
    conn,
    sql`
      DELETE FROM task_queue
      WHERE finished_at < ${finishedBefore} AND status IN ${literalStatuses(statuses)}
        -- SQLite numbers a new row after the largest id present: keeping the newest task keeps ids unique.
        AND id < (SELECT max(id) FROM task_queue)
      RETURNING id`,
  );
  return rows.length;
}
