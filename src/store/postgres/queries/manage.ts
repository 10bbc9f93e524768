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
import { TASK_SELECT, type TaskTextRow, toTask } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { literalStatuses, statusAllows } from "../sql.ts";
import { getTask } from "./read.ts";
import { holdersOf, keyHolders } from "./insert.ts";

/** Cancels a queued or running task and returns it. */
export async function cancel(conn: PgConnection, id: number, now: number): Promise<Task> {
  const [row] = await conn.rows<TaskTextRow>(sql`
    UPDATE task_queue SET status = 'cancelled', finished_at = ${now}::bigint, updated_at = ${now}::bigint,
      lease_until = NULL, lease_token = NULL
    WHERE id = ${id}::bigint AND ${statusAllows("cancel")}
    RETURNING ${TASK_SELECT}`);
  if (row) return toTask(row);
  throw refusalOf(id, await getTask(conn, id), "cancel");
}

/**
 * Whether queueing the task again leaves its `unique` key alone: it has none, or a window key (held or not
 * whatever its status), or a key held while active that no other task holds now. The last condition is the
 * unique index's own, spelled alike so that the planner reads the index. An enqueue that commits the key
 * between this check and the update makes the update fail on the index instead: see {@link keyRace}.
 */
const KEY_FREE = sql`(unique_key IS NULL OR unique_for_ms IS NOT NULL OR NOT EXISTS (
  SELECT 1 FROM task_queue AS holder
  WHERE holder.unique_key = task_queue.unique_key AND holder.unique_key IS NOT NULL
    AND holder.unique_released_at IS NULL
    AND (holder.unique_for_ms IS NOT NULL OR holder.status IN ('queued', 'running'))))`;

/** Whether `error` is the unique index refusing a second holder of a key (SQLSTATE 23505). */
function keyRace(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === "23505";
}

/**
 * Queues a failed or cancelled task again, due now, with its attempts reset, and returns it; refused while
 * another task holds its key held while active.
 */
export async function requeue(conn: PgConnection, id: number, now: number): Promise<Task> {
  let row: TaskTextRow | undefined;
  try {
    [row] = await conn.rows<TaskTextRow>(sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}::bigint, finished_at = NULL,
        updated_at = ${now}::bigint
      WHERE id = ${id}::bigint AND ${statusAllows("requeue")} AND ${KEY_FREE}
      RETURNING ${TASK_SELECT}`);
  } catch (error) {
    if (!keyRace(error)) throw error;
  }
  if (row) return toTask(row);
  const task = await getTask(conn, id);
  const [holder] = task?.uniqueKey == null
    ? []
    : keyHolders(await conn.rows(holdersOf([], [task.uniqueKey])));
  throw refusalOf(id, task, "requeue", holder?.task);
}

/**
 * Queues every failed task (of `type`, when given) again, but those whose key held while active another
 * task holds; returns how many.
 */
export async function requeueFailed(
  conn: PgConnection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}::text`;
  // Of several failed tasks with one key held while active, only the newest goes back: two would collide.
  const statement = sql`
    UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}::bigint, finished_at = NULL,
      updated_at = ${now}::bigint
    WHERE status = 'failed' ${ofType} AND ${KEY_FREE}
      AND (unique_key IS NULL OR unique_for_ms IS NOT NULL OR id IN (
        SELECT max(id) FROM task_queue
        WHERE status = 'failed' ${ofType} AND unique_key IS NOT NULL AND unique_for_ms IS NULL
        GROUP BY unique_key))
    RETURNING id`;
  // An enqueue that took one of the keys meanwhile fails the whole statement: the next one leaves it out.
  for (let attempt = 1;; attempt++) {
    try {
      return (await conn.rows(statement)).length;
    } catch (error) {
      if (!keyRace(error) || attempt === 3) throw error;
    }
  }
}

/**
 * Deletes the tasks of `statuses` that finished before `finishedBefore`, but the newest task of all; returns
 * how many. Ids come from a sequence that never goes back, so PostgreSQL would not need the newest task to
 * keep them unique as SQLite does; it stays all the same, so that purge means one thing on every store.
 */
export async function purge(
  conn: PgConnection,
  statuses: readonly TaskStatus[],
  finishedBefore: number,
): Promise<number> {
  if (statuses.length === 0) return 0;
  const rows = await conn.rows(sql`
    DELETE FROM task_queue
    WHERE finished_at < ${finishedBefore}::bigint AND status IN ${literalStatuses(statuses)}
      AND id < (SELECT max(id) FROM task_queue)
    RETURNING id`);
  return rows.length;
}
