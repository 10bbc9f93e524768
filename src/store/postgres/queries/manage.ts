/**
 * What an operator does to tasks: cancel one, retry one or every failed one, and purge finished ones. Each
 * change is one conditional UPDATE or DELETE that allows only the transitions in `TRANSITIONS`; a refused
 * one says why.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { Task, TaskStatus } from "../../../task.ts";
import { refusalOf } from "../../refusal.ts";
import { TASK_SELECT, type TaskTextRow, toTask } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { FINISHED_COLUMNS, keepCountsOf, keepOutcomesOf } from "../../metrics_sql.ts";
import { literalStatuses, statusAllows } from "../sql.ts";
import { POSTGRES_METRICS } from "./metrics.ts";
import { getTask } from "./read.ts";

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
 * Queues the tasks `which` selects again, due now, with their attempts reset, returning `returning`: one
 * statement that locks them, adds their outcomes not folded yet into the metrics' counters (a retry clears
 * `finished_at`, which takes them out of the tail), and updates them, under a share lock on the watermark
 * row, as a purge takes it.
 */
function requeueStatement(which: SQL, now: number, returning: SQL): SQL {
  return sql`
    WITH target AS (SELECT id, ${FINISHED_COLUMNS} FROM task_queue WHERE ${which} FOR UPDATE),
      kept AS (${keepOutcomesOf(sql`SELECT * FROM target`, POSTGRES_METRICS)})
    UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}::bigint, finished_at = NULL,
      updated_at = ${now}::bigint
    WHERE id IN (SELECT id FROM target)
    RETURNING ${returning}`;
}

function lockedForRequeue<T>(conn: PgConnection, statement: SQL): Promise<T[]> {
  return conn.begin(async (tx) => {
    await conn.rows(sql`SELECT 1 FROM metric_rollup FOR SHARE`, tx);
    return await conn.rows<T>(statement, tx);
  });
}

/** Queues a failed or cancelled task again, due now, with its attempts reset, and returns it. */
export async function requeue(conn: PgConnection, id: number, now: number): Promise<Task> {
  const [row] = await lockedForRequeue<TaskTextRow>(
    conn,
    requeueStatement(sql`id = ${id}::bigint AND ${statusAllows("requeue")}`, now, TASK_SELECT),
  );
  if (row) return toTask(row);
  throw refusalOf(id, await getTask(conn, id), "requeue");
}

/** Queues every failed task (of `type`, when given) again; returns how many. */
export async function requeueFailed(
  conn: PgConnection,
  type: string | undefined,
  now: number,
): Promise<number> {
  const ofType = type === undefined ? sql`` : sql`AND type = ${type}::text`;
  const rows = await lockedForRequeue(conn, requeueStatement(sql`status = 'failed' ${ofType}`, now, sql`id`));
  return rows.length;
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
          AND id < (SELECT max(id) FROM task_queue)
        RETURNING id, ${FINISHED_COLUMNS}
      ), kept AS (${keepCountsOf(sql`SELECT * FROM deleted`, POSTGRES_METRICS)})
      SELECT count(*) AS n FROM deleted`,
      tx,
    );
    return Number(row!.n);
  });
}
