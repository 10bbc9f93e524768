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
import { TASK_SELECT, type TaskTextRow, toTask } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { FINISHED_COLUMNS, keepCountsOf, keepOutcomesOf } from "../../metrics_sql.ts";
import { literalStatuses, statusAllows } from "../sql.ts";
import { cancelDependents } from "./dependencies.ts";
import { holdersOf, keyHolders } from "./insert.ts";
import { POSTGRES_METRICS } from "./metrics.ts";
import { getTask } from "./read.ts";

/**
 * Cancels a waiting, queued or running task and returns it; the tasks waiting on it, down the chain, are
 * cancelled in the same transaction.
 */
export async function cancel(conn: PgConnection, id: number, now: number): Promise<Task> {
  const [rows] = await conn.batch([
    sql`
      UPDATE task_queue SET status = 'cancelled', finished_at = ${now}::bigint, updated_at = ${now}::bigint,
        lease_until = NULL, lease_token = NULL
      WHERE id = ${id}::bigint AND ${statusAllows("cancel")}
      RETURNING ${TASK_SELECT}`,
    ...cancelDependents([id], now),
  ]);
  const row = rows![0] as TaskTextRow | undefined;
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
    AND (holder.unique_for_ms IS NOT NULL OR holder.status IN ('waiting', 'queued', 'running'))))`;

/**
 * Releases the window keys, among those of the tasks `keysOf` selects, whose window is over (locked in id
 * order, as an enqueue releases them): a retry then finds them free as an enqueue would, and is not refused
 * by a holder whose window has long passed.
 */
function releaseExpiredOf(keysOf: SQL, now: number): SQL {
  return sql`
    UPDATE task_queue SET unique_released_at = ${now}::bigint
    WHERE id IN (
      SELECT id FROM task_queue
      WHERE unique_key IN (SELECT unique_key FROM task_queue WHERE ${keysOf} AND unique_key IS NOT NULL)
        AND unique_released_at IS NULL AND unique_for_ms IS NOT NULL AND created_at + unique_for_ms <= ${now}::bigint
      ORDER BY id FOR UPDATE)
      AND unique_released_at IS NULL AND created_at + unique_for_ms <= ${now}::bigint`;
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
 * A dependency of the task (of the nearest `task_queue` in scope) failed or was cancelled: a retry leaves it.
 * The newest task of a key is picked among those that may go back, so one refused leaves the key to the next.
 */
const LOST_DEPENDENCY = sql`SELECT 1 FROM task_dependencies AS d JOIN task_queue AS r ON r.id = d.depends_on
  WHERE d.task_id = task_queue.id AND r.status IN ('failed', 'cancelled')`;

/** Whether `error` is the unique index refusing a second holder of a key (SQLSTATE 23505). */
function keyRace(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === "23505";
}

/**
 * `write` (a transaction of a requeue), made again when an enqueue took one of its keys between its check
 * and its update (the index then fails the whole statement; the next try leaves that task out).
 */
async function againOnKeyRace<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!keyRace(error) || attempt === 3) throw error;
    }
  }
}

/**
 * Queues a failed or cancelled task again, due now, with its attempts reset, and returns it: `waiting`
 * instead when some of its dependencies have not completed yet. Refused while one of them is failed or
 * cancelled (the task could never run), and while another task holds its key held while active. Its
 * dependencies are locked first (`FOR SHARE`), so that none finishes unseen between the look at them and
 * the commit.
 */
export async function requeue(conn: PgConnection, id: number, now: number): Promise<Task> {
  const [row, lost] = await againOnKeyRace(() =>
    conn.begin(async (tx) => {
      const dependencies = await conn.rows<{ id: number; status: string }>(
        sql`
        SELECT r.id, r.status FROM task_dependencies d JOIN task_queue r ON r.id = d.depends_on
        WHERE d.task_id = ${id}::bigint ORDER BY r.id FOR SHARE OF r`,
        tx,
      );
      const lost = dependencies.find((dependency) => ["failed", "cancelled"].includes(dependency.status));
      if (lost) return [undefined, lost] as const;
      const waits = dependencies.some((dependency) => dependency.status !== "completed");
      await conn.rows(releaseExpiredOf(sql`id = ${id}::bigint`, now), tx);
      await lockRollup(conn, tx);
      const [row] = await conn.rows<TaskTextRow>(
        requeueStatement(
          sql`id = ${id}::bigint AND ${statusAllows("requeue")} AND ${KEY_FREE}`,
          sql`${waits ? "waiting" : "queued"}::text`,
          now,
          TASK_SELECT,
        ),
        tx,
      );
      return [row, undefined] as const;
    })
  );
  if (row) return toTask(row);
  const task = await getTask(conn, id);
  if (lost && task && (TRANSITIONS.requeue.from as readonly string[]).includes(task.status)) {
    throw DependencyError.lost(id, Number(lost.id), lost.status);
  }
  const [holder] = task?.uniqueKey == null
    ? []
    : keyHolders(await conn.rows(holdersOf([], [task.uniqueKey])));
  throw refusalOf(id, task, "requeue", holder?.task);
}

/**
 * Queues the tasks `which` selects again, due now, with their attempts reset and the status `status`,
 * returning `returning`: one statement that locks them, adds their outcomes not folded yet into the metrics'
 * counters (a retry clears `finished_at`, which takes them out of the tail), and updates them. Run it under
 * {@link lockRollup}, as a purge is.
 */
function requeueStatement(which: SQL, status: SQL, now: number, returning: SQL): SQL {
  return sql`
    WITH target AS (SELECT id, ${FINISHED_COLUMNS} FROM task_queue WHERE ${which} FOR UPDATE),
      kept AS (${keepOutcomesOf(sql`SELECT * FROM target`, POSTGRES_METRICS)})
    UPDATE task_queue SET status = ${status}, attempts = 0, run_after = ${now}::bigint, finished_at = NULL,
      updated_at = ${now}::bigint
    WHERE id IN (SELECT id FROM target)
    RETURNING ${returning}`;
}

/** A share lock on the metrics' watermark row, which a fold takes for update. */
async function lockRollup(conn: PgConnection, tx: Parameters<PgConnection["rows"]>[1]): Promise<void> {
  await conn.rows(sql`SELECT 1 FROM metric_rollup FOR SHARE`, tx);
}

/**
 * Queues every failed task (of `type`, when given) again, as {@link requeue} does one, but those whose key
 * held while active another task holds (of several sharing one, the newest goes); returns how many.
 */
export async function requeueFailed(
  conn: PgConnection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}::text`;
  const failed = sql`status = 'failed' ${ofType}`;
  return await againOnKeyRace(() =>
    conn.begin(async (tx) => {
      await conn.rows(releaseExpiredOf(failed, now), tx);
      await lockRollup(conn, tx);
      const statement = requeueStatement(
        sql`${failed} AND ${KEY_FREE} AND ${newestPerKey(failed)}`,
        sql`'queued'`,
        now,
        sql`id`,
      );
      return (await conn.rows(statement, tx)).length;
    })
  );
}

/**
 * Queues every task of `filter.status` (of its type and queue, when given) again, as {@link requeue} does
 * one: `waiting` while some of its dependencies have not completed, and left alone while one of them is
 * failed or cancelled, or while another task holds its key held while active (of several sharing one, the
 * newest goes). The dependencies are locked first (`FOR SHARE`), so that none finishes unseen.
 * Returns how many were queued again.
 */
export async function requeueWhere(conn: PgConnection, filter: RequeueFilter, now: number): Promise<number> {
  const ofType = filter.type === undefined ? sql`` : sql`AND type = ${filter.type}::text`;
  const ofQueue = filter.queue === undefined ? sql`` : sql`AND queue = ${filter.queue}::text`;
  const matching = sql`status IN ${literalStatuses([filter.status])} AND ${statusAllows("requeue")} ${ofType}
    ${ofQueue}`;
  return await againOnKeyRace(() =>
    conn.begin(async (tx) => {
      await conn.rows(releaseExpiredOf(matching, now), tx);
      await lockRollup(conn, tx);
      const rows = await conn.rows(
        sql`
      WITH candidate AS (
        SELECT id FROM task_queue
        WHERE ${matching} AND ${KEY_FREE} AND ${
          newestPerKey(sql`${matching} AND NOT EXISTS (${LOST_DEPENDENCY})`)
        }
        FOR UPDATE),
      dependency AS (
        SELECT d.task_id, r.status FROM task_dependencies d JOIN task_queue r ON r.id = d.depends_on
        WHERE d.task_id IN (SELECT id FROM candidate) FOR SHARE OF r),
      target AS (
        SELECT t.id, ${FINISHED_COLUMNS} FROM task_queue t JOIN candidate c ON c.id = t.id
        WHERE NOT EXISTS (
          SELECT 1 FROM dependency
          WHERE dependency.task_id = t.id AND dependency.status IN ('failed', 'cancelled'))),
      kept AS (${keepOutcomesOf(sql`SELECT * FROM target`, POSTGRES_METRICS)})
      UPDATE task_queue SET
        status = CASE WHEN EXISTS (
          SELECT 1 FROM dependency WHERE dependency.task_id = task_queue.id AND dependency.status <> 'completed'
        ) THEN 'waiting' ELSE 'queued' END,
        attempts = 0, run_after = ${now}::bigint, finished_at = NULL, updated_at = ${now}::bigint
      WHERE id IN (SELECT id FROM target)
      RETURNING id`,
        tx,
      );
      return rows.length;
    })
  );
}

/**
 * A failed or cancelled task is kept while a task that depends on it is kept and has not completed: gone,
 * it would no longer stop that task, which a retry would then run without it.
 */
const KEPT_FOR_DEPENDENTS = sql`NOT (status IN ('failed', 'cancelled') AND EXISTS (
  SELECT 1 FROM task_dependencies AS d JOIN task_queue AS dependent ON dependent.id = d.task_id
  WHERE d.depends_on = task_queue.id AND dependent.status <> 'completed'))`;

/**
 * Deletes a finished task (but the newest of all, as purge keeps it) and its logs; its events not folded
 * into the metrics' counters yet are added to them in the same statement, as a purge does.
 */
export async function deleteTask(conn: PgConnection, id: number): Promise<boolean> {
  const deleted = await conn.begin(async (tx) => {
    await lockRollup(conn, tx);
    const [row] = await conn.rows<{ n: number }>(
      sql`
      WITH deleted AS (
        DELETE FROM task_queue
        WHERE id = ${id}::bigint AND status IN ${literalStatuses(TERMINAL_STATUSES)}
          AND id < (SELECT max(id) FROM task_queue) AND ${KEPT_FOR_DEPENDENTS}
        RETURNING id, ${FINISHED_COLUMNS}
      ), kept AS (${keepCountsOf(sql`SELECT * FROM deleted`, POSTGRES_METRICS)})
      SELECT count(*) AS n FROM deleted`,
      tx,
    );
    return Number(row!.n);
  });
  if (deleted > 0) return true;
  const [dependent] = await conn.rows<{ id: number }>(unfinishedDependent(id));
  if (dependent) throw DependencyError.kept(id, Number(dependent.id));
  return deleteRefused(id, await getTask(conn, id));
}

/**
 * Deletes the tasks of `statuses` that finished before `finishedBefore`, but the newest task of all; returns
 * how many. Ids come from a sequence that never goes back, so PostgreSQL would not need the newest task to
 * keep them unique as SQLite does; it stays all the same, so that purge means one thing on every store. The
 * metrics' counters keep counting them: one statement deletes them and adds their events not folded yet to
 * the stored counters, under a share lock on the watermark row, which a fold takes for update.
 */
export async function purge(
  conn: PgConnection,
  statuses: readonly TaskStatus[],
  finishedBefore: number,
): Promise<number> {
  if (statuses.length === 0) return 0;
  return await conn.begin(async (tx) => {
    await conn.rows(sql`SELECT 1 FROM metric_rollup FOR SHARE`, tx);
    const [row] = await conn.rows<{ n: number }>(
      sql`
      WITH deleted AS (
        DELETE FROM task_queue
        WHERE finished_at < ${finishedBefore}::bigint AND status IN ${literalStatuses(statuses)}
          AND id < (SELECT max(id) FROM task_queue) AND ${KEPT_FOR_DEPENDENTS}
        RETURNING id, ${FINISHED_COLUMNS}
      ), kept AS (${keepCountsOf(sql`SELECT * FROM deleted`, POSTGRES_METRICS)})
      SELECT count(*) AS n FROM deleted`,
      tx,
    );
    return Number(row!.n);
  });
}

/** A task that depends on the failed or cancelled task `id` and has not completed, if any. */
function unfinishedDependent(id: number): SQL {
  return sql`
    SELECT d.task_id AS id FROM task_dependencies AS d JOIN task_queue AS dependent ON dependent.id = d.task_id
    JOIN task_queue AS t ON t.id = d.depends_on
    WHERE d.depends_on = ${id}::bigint AND t.status IN ('failed', 'cancelled') AND dependent.status <> 'completed'
    ORDER BY d.task_id LIMIT 1`;
}
