/**
 * What an operator does to tasks: cancel one, retry one or every failed one, and purge finished ones. Each
 * change is one conditional UPDATE or DELETE that allows only the transitions in `TRANSITIONS`; a refused
 * one says why.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import { DependencyError } from "../../../errors.ts";
import { type Task, type TaskStatus, TERMINAL_STATUSES, TRANSITIONS } from "../../../task.ts";
import type { RequeueFilter } from "../../store.ts";
import { deleteRefused, refusalOf } from "../../refusal.ts";
import { TASK_JSON, type TaskJsonRow, toTask } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { FINISHED_COLUMNS, keepCountsOf, keepOutcomesOf } from "../../metrics_sql.ts";
import { all, batch, compile, literalStatuses, statusAllows } from "../sql.ts";
import { cancelDependents } from "./dependencies.ts";
import { holdersOf } from "./insert.ts";
import { SQLITE_METRICS } from "./metrics.ts";
import { getTask } from "./read.ts";

/**
 * Cancels a waiting, queued or running task and returns it; the tasks waiting on it, down the chain, are
 * cancelled in the same transaction.
 */
export async function cancel(conn: Connection, id: number, now: number): Promise<Task> {
  const [rows] = await conn.batch([
    compile(sql`
      UPDATE task_queue SET status = 'cancelled', finished_at = ${now}, updated_at = ${now},
        lease_until = NULL, lease_token = NULL
      WHERE id = ${id} AND ${statusAllows("cancel")}
      RETURNING ${TASK_JSON}`),
    cancelDependents([id], now),
  ]);
  const row = rows!.rows[0] as TaskJsonRow | undefined;
  if (row) return toTask(row);
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
    AND (holder.unique_for_ms IS NOT NULL OR holder.status = 'waiting' OR holder.status = 'queued'
      OR holder.status = 'running')))`;

/**
 * Releases the window keys, among those of the tasks `keysOf` selects, whose window is over: a retry then
 * finds them free as an enqueue would (it releases them the same way), and is not refused by a holder whose
 * window has long passed.
 */
function releaseExpiredOf(keysOf: SQL, now: number): SQL {
  return sql`
    UPDATE task_queue SET unique_released_at = ${now}
    WHERE unique_key IN (SELECT unique_key FROM task_queue WHERE ${keysOf} AND unique_key IS NOT NULL)
      AND unique_released_at IS NULL AND unique_for_ms IS NOT NULL AND created_at + unique_for_ms <= ${now}`;
}

/**
 * Of the tasks `matching` selects that share one key held while active, only the newest: queued again
 * together, two would collide.
 */
function newestPerKey(matching: SQL): SQL {
  return sql`(unique_key IS NULL OR unique_for_ms IS NOT NULL OR id IN (
    SELECT max(id) FROM task_queue
    WHERE ${matching} AND unique_key IS NOT NULL AND unique_for_ms IS NULL
    GROUP BY unique_key))`;
}

/**
 * Queues a failed or cancelled task again, due now, with its attempts reset, and returns it: `waiting`
 * instead when some of its dependencies have not completed yet. Refused while one of them is failed or
 * cancelled (the task could never run), and while another task holds its key held while active.
 */
export async function requeue(conn: Connection, id: number, now: number): Promise<Task> {
  const which = sql`id = ${id} AND ${statusAllows("requeue")}
    AND NOT EXISTS (${dependencies(sql`r.status IN ('failed', 'cancelled')`)}) AND ${KEY_FREE}`;
  const [, , rows] = await batch(conn, [
    releaseExpiredOf(sql`id = ${id}`, now),
    keepOutcomesOf(sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE ${which}`, SQLITE_METRICS),
    sql`
      UPDATE task_queue SET
        status = CASE WHEN EXISTS (${dependencies(sql`r.status <> 'completed'`)}) THEN 'waiting'
          ELSE 'queued' END,
        attempts = 0, run_after = ${now}, finished_at = NULL, updated_at = ${now}
      WHERE ${which}
      RETURNING ${TASK_JSON}`,
  ]) as [unknown, unknown, TaskJsonRow[]];
  if (rows[0]) return toTask(rows[0]);
  const [lost] = await all<{ id: number; status: string }>(
    conn,
    sql`
      SELECT r.id AS id, r.status AS status FROM task_dependencies AS d JOIN task_queue AS r ON r.id = d.depends_on
      WHERE d.task_id = ${id} AND r.status IN ('failed', 'cancelled') ORDER BY r.id LIMIT 1`,
  );
  const task = await getTask(conn, id);
  if (lost && task && (TRANSITIONS.requeue.from as readonly string[]).includes(task.status)) {
    throw DependencyError.lost(id, Number(lost.id), lost.status);
  }
  const holders = task?.uniqueKey == null ? [] : await all<{ task: string; matched: string }>(
    conn,
    holdersOf([], [task.uniqueKey]),
  );
  throw refusalOf(id, task, "requeue", holders[0] && toTask(holders[0]));
}

/** The dependencies of the task being updated whose row `r` meets `condition`, as a subquery. */
function dependencies(condition: SQL): SQL {
  return sql`
    SELECT 1 FROM task_dependencies AS d JOIN task_queue AS r ON r.id = d.depends_on
    WHERE d.task_id = task_queue.id AND ${condition}`;
}

/**
 * Queues every failed task (of `type`, when given) again, as {@link requeue} does one, but those whose key
 * held while active another task holds (of several sharing one, the newest goes); returns how many.
 */
export async function requeueFailed(
  conn: Connection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}`;
  const failed = sql`status = 'failed' ${ofType}`;
  const which = sql`${failed} AND ${KEY_FREE} AND ${newestPerKey(failed)}`;
  const [, , rows] = await batch(conn, [
    releaseExpiredOf(failed, now),
    keepOutcomesOf(sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE ${which}`, SQLITE_METRICS),
    sql`
      UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
        updated_at = ${now}
      WHERE ${which}
      RETURNING id`,
  ]);
  return rows!.length;
}

/**
 * Queues every task of `filter.status` (of its type and queue, when given) again, as {@link requeue} does
 * one: `waiting` while some of its dependencies have not completed, and left alone while one of them is
 * failed or cancelled, or while another task holds its key held while active (of several sharing one, the
 * newest goes). Returns how many were queued again.
 */
export async function requeueWhere(conn: Connection, filter: RequeueFilter, now: number): Promise<number> {
  const ofType = filter.type === undefined ? sql`` : sql`AND type = ${filter.type}`;
  const ofQueue = filter.queue === undefined ? sql`` : sql`AND queue = ${filter.queue}`;
  const matching = sql`status IN ${literalStatuses([filter.status])} AND ${statusAllows("requeue")} ${ofType}
    ${ofQueue}`;
  // The newest of a key among those that may go back: one refused for its dependencies leaves it to the next.
  const lostDependency = dependencies(sql`r.status IN ('failed', 'cancelled')`);
  const which = sql`${matching} AND NOT EXISTS (${lostDependency})
    AND ${KEY_FREE} AND ${newestPerKey(sql`${matching} AND NOT EXISTS (${lostDependency})`)}`;
  const [, , rows] = await batch(conn, [
    releaseExpiredOf(matching, now),
    keepOutcomesOf(sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE ${which}`, SQLITE_METRICS),
    sql`
      UPDATE task_queue SET
        status = CASE WHEN EXISTS (${dependencies(sql`r.status <> 'completed'`)}) THEN 'waiting'
          ELSE 'queued' END,
        attempts = 0, run_after = ${now}, finished_at = NULL, updated_at = ${now}
      WHERE ${which}
      RETURNING id`,
  ]);
  return rows!.length;
}

/**
 * A failed or cancelled task is kept while a task that depends on it is kept and has not completed: gone,
 * it would no longer stop that task, which a retry would then run without it.
 */
const KEPT_FOR_DEPENDENTS = sql`NOT (status IN ('failed', 'cancelled') AND EXISTS (
  SELECT 1 FROM task_dependencies AS d JOIN task_queue AS dependent ON dependent.id = d.task_id
  WHERE d.depends_on = task_queue.id AND dependent.status <> 'completed'))`;

/**
 * Deletes a finished task (but the newest of all, which keeps ids unique) and its logs; its events not
 * folded into the metrics' counters yet are added to them first, in the same transaction.
 */
export async function deleteTask(conn: Connection, id: number): Promise<boolean> {
  const doomed = sql`id = ${id} AND status IN ${literalStatuses(TERMINAL_STATUSES)}
    AND id < (SELECT max(id) FROM task_queue) AND ${KEPT_FOR_DEPENDENTS}`;
  const [, rows] = await batch(conn, [
    keepCountsOf(sql`SELECT id, ${FINISHED_COLUMNS} FROM task_queue WHERE ${doomed}`, SQLITE_METRICS),
    sql`DELETE FROM task_queue WHERE ${doomed} RETURNING id`,
  ]);
  if (rows!.length > 0) return true;
  const [dependent] = await all<{ id: number }>(conn, unfinishedDependent(id));
  if (dependent) throw DependencyError.kept(id, Number(dependent.id));
  return deleteRefused(id, await getTask(conn, id));
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
    AND id < (SELECT max(id) FROM task_queue) AND ${KEPT_FOR_DEPENDENTS}`;
  const [, deleted] = await batch(conn, [
    keepCountsOf(sql`SELECT id, ${FINISHED_COLUMNS} FROM task_queue WHERE ${doomed}`, SQLITE_METRICS),
    sql`DELETE FROM task_queue WHERE ${doomed} RETURNING id`,
  ]);
  return deleted!.length;
}

/** A task that depends on the failed or cancelled task `id` and has not completed, if any. */
function unfinishedDependent(id: number): SQL {
  return sql`
    SELECT d.task_id AS id FROM task_dependencies AS d JOIN task_queue AS dependent ON dependent.id = d.task_id
    JOIN task_queue AS t ON t.id = d.depends_on
    WHERE d.depends_on = ${id} AND t.status IN ('failed', 'cancelled') AND dependent.status <> 'completed'
    ORDER BY d.task_id LIMIT 1`;
}
