/**
 * Reads: one task, a page of tasks, the queue's counts, the two questions a worker asks when it finds
 * nothing to claim (is anything runnable or running, and when is the next task due), and the server's clock.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import { type Task, TASK_STATUSES, type TaskStatus } from "../../../task.ts";
import {
  type DependencyIds,
  type ListFilter,
  MAX_DEPENDENCY_IDS,
  type PayloadMatch,
  type QueueStats,
  type WaitingTasks,
} from "../../store.ts";
import { TASK_SELECT, type TaskTextRow, toTask } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { array, literalStatuses } from "../sql.ts";

export async function getTask(conn: PgConnection, id: number): Promise<Task | undefined> {
  const [row] = await conn.rows<TaskTextRow>(
    sql`SELECT ${TASK_SELECT} FROM task_queue WHERE id = ${id}::bigint`,
  );
  return row && toTask(row);
}

/** The tasks with these ids. */
export async function getTasks(conn: PgConnection, ids: readonly number[]): Promise<Task[]> {
  const rows = await conn.rows<TaskTextRow>(
    sql`SELECT ${TASK_SELECT} FROM task_queue WHERE id = ANY(${array(ids)}::bigint[])`,
  );
  return rows.map(toTask);
}

/** The ids of the tasks `id` depends on and of those depending on it, at most MAX_DEPENDENCY_IDS each. */
export async function dependencyIds(conn: PgConnection, id: number): Promise<DependencyIds> {
  const [dependsOn, dependents] = await conn.batch([
    sql`SELECT depends_on AS id FROM task_dependencies WHERE task_id = ${id}::bigint
      ORDER BY depends_on LIMIT ${MAX_DEPENDENCY_IDS}`,
    sql`SELECT task_id AS id FROM task_dependencies WHERE depends_on = ${id}::bigint
      ORDER BY task_id LIMIT ${MAX_DEPENDENCY_IDS}`,
  ]);
  const ids = (rows: Record<string, unknown>[] | undefined) => (rows ?? []).map((row) => Number(row.id));
  return { dependsOn: ids(dependsOn), dependents: ids(dependents) };
}

/** A page of tasks, the newest first. */
export async function listTasks(conn: PgConnection, filter: ListFilter): Promise<Task[]> {
  const conditions = [
    filter.status ? sql`status IN ${literalStatuses([filter.status])}` : undefined,
    filter.type ? sql`type = ${filter.type}::text` : undefined,
    filter.queue ? sql`queue = ${filter.queue}::text` : undefined,
    filter.createdAfter !== undefined ? sql`created_at > ${filter.createdAfter}::bigint` : undefined,
    filter.createdBefore !== undefined ? sql`created_at < ${filter.createdBefore}::bigint` : undefined,
    filter.beforeId !== undefined ? sql`id < ${filter.beforeId}::bigint` : undefined,
    filter.fromId !== undefined ? sql`id >= ${filter.fromId}::bigint` : undefined,
    ...(filter.payload ?? []).map(payloadCondition),
  ].filter((condition) => condition !== undefined);
  const where = conditions.length ? sql`WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
  const rows = await conn.rows<TaskTextRow>(sql`
    SELECT ${TASK_SELECT} FROM task_queue ${where}
    ORDER BY id DESC LIMIT ${filter.limit}::bigint OFFSET ${filter.offset}::bigint`);
  return rows.map(toTask);
}

/**
 * The payload holds `match.value` at `match.path`. Keys go one `->` each, with a text operand, so that a
 * segment "0" names a key and never an array's element (as `#>` would); jsonb equality compares JSON
 * values: the number 42 equals 42.0 and not the string "42". The value goes as text, cast: sent as jsonb,
 * the driver would encode it as JSON a second time.
 */
function payloadCondition(match: PayloadMatch): SQL {
  const keys = match.path.map((segment) => sql` -> ${segment}::text`);
  return sql`(payload::jsonb${sql.join(keys, sql``)}) = ${JSON.stringify(match.value)}::text::jsonb`;
}

/**
 * Counts by status and type, the age of the oldest runnable task, and what finished in the last minute: one
 * statement, so one snapshot. Read apart (three statements, even on one connection under READ COMMITTED),
 * a drain under way made them disagree: more completed in the last minute than completed at all.
 */
export async function stats(conn: PgConnection, now: number): Promise<QueueStats> {
  const [row] = await conn.rows<{
    groups: [type: string, status: TaskStatus, n: number][];
    runAfter: number | null;
    completed: number;
    failed: number;
  }>(sql`
    SELECT
      (SELECT coalesce(json_agg(json_build_array(type, status, n)), '[]'::json)
        FROM (SELECT type, status, count(*) AS n FROM task_queue GROUP BY type, status) AS g) AS groups,
      (SELECT min(run_after) FROM task_queue
        WHERE status = 'queued' AND run_after <= ${now}::bigint) AS "runAfter",
      r.completed, r.failed
    FROM (SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed
      FROM task_queue
      WHERE finished_at >= ${now - 60_000}::bigint AND status IN ('completed', 'failed')) AS r`);
  const { groups, runAfter: oldestRunAfter, completed, failed } = row!;
  const zero = () => Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  const counts = zero();
  const byType: Record<string, Record<TaskStatus, number>> = {};
  for (const [type, status, n] of groups) {
    counts[status] += n;
    (byType[type] ??= zero())[status] = n;
  }
  const lastMinute = { completed, failed };
  return {
    counts,
    byType,
    oldestQueuedAgeMs: oldestRunAfter == null ? null : Math.max(0, now - oldestRunAfter),
    lastMinute,
  };
}

/** `AND type = ANY(types)`, or nothing. */
function ofTypes(types: readonly string[] | undefined) {
  return types ? sql`AND type = ANY(${array(types)}::text[])` : sql``;
}

/** `AND queue = ANY(queues)`, or nothing. */
function ofQueues(queues: readonly string[] | undefined) {
  return queues ? sql`AND queue = ANY(${array(queues)}::text[])` : sql``;
}

/**
 * The query of {@link pending}. The runnable part walks the claim index in its order to the first runnable
 * task: an EXISTS (which drops an ORDER BY) made the planner, whose statistics still counted the tasks
 * queued when it last looked, expect a match at once and scan the whole table (50 ms a look at the end of
 * a 50,000-task drain). The paused queues are left out twice: as the store last read them (`paused`, bound,
 * so that a paused queue's backlog is passed by the index entries alone, without a lookup in `queues` for
 * each), and as they are now (the anti-join), so that the answer is exact.
 */
export function pendingQuery(
  now: number,
  paused: readonly string[],
  types?: readonly string[],
  queues?: readonly string[],
): SQL {
  return sql`
    SELECT
      (
        SELECT id FROM task_queue t WHERE status = 'queued' AND run_after <= ${now}::bigint ${ofTypes(types)}
          ${ofQueues(queues)} AND queue <> ALL(${array(paused)}::text[])
          AND NOT EXISTS (SELECT 1 FROM queues q WHERE q.name = t.queue AND q.paused)
        ORDER BY priority, run_after, id LIMIT 1
      ) IS NOT NULL AS runnable,
      EXISTS (SELECT 1 FROM task_queue WHERE status = 'running' ${ofTypes(types)} ${
    ofQueues(queues)
  }) AS running`;
}

/**
 * Whether any task (of `types`, in `queues`) is runnable now, in a queue not paused, and whether any is
 * running: 1 or 0 each.
 */
export async function pending(
  conn: PgConnection,
  now: number,
  paused: readonly string[],
  types?: readonly string[],
  queues?: readonly string[],
): Promise<{ runnable: number; running: number }> {
  const [row] = await conn.rows<{ runnable: boolean; running: boolean }>(
    pendingQuery(now, paused, types, queues),
  );
  return { runnable: Number(row!.runnable), running: Number(row!.running) };
}

/** How many queued tasks (of `types`, in `queues`) are not due yet, and when the first of them is. */
export async function waiting(
  conn: PgConnection,
  now: number,
  types?: readonly string[],
  queues?: readonly string[],
): Promise<WaitingTasks> {
  const [row] = await conn.rows<{ count: number; nextRunAfter: number | null }>(sql`
    SELECT count(*) AS count, min(run_after) AS "nextRunAfter" FROM task_queue
    WHERE status = 'queued' AND run_after > ${now}::bigint ${ofTypes(types)} ${ofQueues(queues)}`);
  // An aggregate without GROUP BY: always one row.
  return { count: row!.count, nextRunAfter: row!.nextRunAfter };
}

/**
 * The server's clock, in whole epoch milliseconds, rounded down as `Date.now()` is: a reading rounded to
 * the nearest would put the server half a millisecond ahead of a host sharing its clock, and such hosts'
 * offsets would come out 0 or 1 at random.
 */
export async function serverTime(conn: PgConnection): Promise<number> {
  const [row] = await conn.rows<{ now: number }>(
    sql`SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint AS now`,
  );
  return row!.now;
}
