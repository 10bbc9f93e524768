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
import { FINISHED_COLUMNS, keepCountsOf, keepOutcomesOf } from "../../metrics_sql.ts";
import { all, batch, literalStatuses, statusAllows } from "../sql.ts";
import { SQLITE_METRICS } from "./metrics.ts";
import { getTask } from "./read.ts";

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
 * Queues a failed or cancelled task again, due now, with its attempts reset, and returns it. Its outcome,
 * when not folded into the metrics' counters yet, is added to them first, in the same transaction.
 */
export async function requeue(conn: Connection, id: number, now: number): Promise<Task> {
  const which = sql`id = ${id} AND ${statusAllows("requeue")}`;
  const [, rows] = await batch(conn, [
    keepOutcomesOf(sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE ${which}`, SQLITE_METRICS),
    sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
        updated_at = ${now}
      WHERE ${which}
      RETURNING ${TASK_JSON}`,
  ]) as [unknown, TaskJsonRow[]];
  if (rows[0]) return toTask(rows[0]);
  throw refusalOf(id, await getTask(conn, id), "requeue");
}

/** Queues every failed task (of `type`, when given) again, as {@link requeue} does one; returns how many. */
export async function requeueFailed(
  conn: Connection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}`;
  const [, rows] = await batch(conn, [
    keepOutcomesOf(
      sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE status = 'failed' ${ofType}`,
      SQLITE_METRICS,
    ),
    sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
        updated_at = ${now}
      WHERE status = 'failed' ${ofType}
      RETURNING id`,
  ]);
  return rows!.length;
}

/**
 * Deletes the tasks of `statuses` that finished before `finishedBefore`; returns how many. The metrics'
 * counters keep counting them: their events not folded yet are added to the stored counters first, in the
 * same transaction.
 */
export async function purge(
  conn: Connection,
  statuses: readonly TaskStatus[],
  finishedBefore: number,
): Promise<number> {
  // SQLite numbers a new row after the largest id present: keeping the newest task keeps ids unique.
  const doomed = sql`
    finished_at < ${finishedBefore} AND status IN ${literalStatuses(statuses)}
    AND id < (SELECT max(id) FROM task_queue)`;
  const [, deleted] = await batch(conn, [
    keepCountsOf(sql`SELECT id, ${FINISHED_COLUMNS} FROM task_queue WHERE ${doomed}`, SQLITE_METRICS),
    sql`DELETE FROM task_queue WHERE ${doomed} RETURNING id`,
  ]);
  return deleted!.length;
}
