/**
 * Reads: one task, a page of tasks, the queue's counts, the two questions a worker asks when it finds
 * nothing to claim (is anything runnable or running, and when is the next task due), and the database
 * server's clock.
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
import type { SqlRow } from "../driver.ts";
import { TASK_JSON, type TaskJsonRow, toTask } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { all, batch, bound, literalStatuses, p, PreparedSql } from "../sql.ts";

export async function getTask(conn: Connection, id: number): Promise<Task | undefined> {
  const rows = await all<TaskJsonRow>(conn, sql`SELECT ${TASK_JSON} FROM task_queue WHERE id = ${id}`);
  return rows[0] && toTask(rows[0]);
}

/** The tasks with these ids (as a JSON array, so that one prepared statement serves any number). */
export async function getTasks(conn: Connection, ids: readonly number[]): Promise<Task[]> {
  const rows = await all<TaskJsonRow>(
    conn,
    sql`SELECT ${TASK_JSON} FROM task_queue WHERE id IN (SELECT value FROM json_each(${
      JSON.stringify(ids)
    }))`,
  );
  return rows.map(toTask);
}

/** The ids of the tasks `id` depends on and of those depending on it, at most MAX_DEPENDENCY_IDS each. */
export async function dependencyIds(conn: Connection, id: number): Promise<DependencyIds> {
  const [dependsOn, dependents] = await batch(conn, [
    sql`SELECT depends_on AS id FROM task_dependencies WHERE task_id = ${id}
      ORDER BY depends_on LIMIT ${bound(MAX_DEPENDENCY_IDS)}`,
    sql`SELECT task_id AS id FROM task_dependencies WHERE depends_on = ${id}
      ORDER BY task_id LIMIT ${bound(MAX_DEPENDENCY_IDS)}`,
  ]);
  const ids = (rows: SqlRow[] | undefined) => (rows ?? []).map((row) => Number(row.id));
  return { dependsOn: ids(dependsOn), dependents: ids(dependents) };
}

/** A page of tasks, the newest first. */
export async function listTasks(conn: Connection, filter: ListFilter): Promise<Task[]> {
  const conditions = [
    filter.status ? sql`status IN ${literalStatuses([filter.status])}` : undefined,
    filter.type ? sql`type = ${filter.type}` : undefined,
    filter.queue ? sql`queue = ${filter.queue}` : undefined,
    filter.createdAfter !== undefined ? sql`created_at > ${filter.createdAfter}` : undefined,
    filter.createdBefore !== undefined ? sql`created_at < ${filter.createdBefore}` : undefined,
    filter.beforeId !== undefined ? sql`id < ${filter.beforeId}` : undefined,
    filter.fromId !== undefined ? sql`id >= ${filter.fromId}` : undefined,
    ...(filter.payload ?? []).map(payloadCondition),
  ].filter((condition) => condition !== undefined);
  const where = conditions.length ? sql`WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
  const rows = await all<TaskJsonRow>(
    conn,
    sql`
      SELECT ${TASK_JSON} FROM task_queue ${where}
      ORDER BY id DESC LIMIT ${bound(filter.limit)} OFFSET ${bound(filter.offset)}`,
  );
  return rows.map(toTask);
}

/**
 * The payload holds `match.value` at `match.path`, of the same JSON type: json_type tells the number 42
 * from the string "42", which json_extract alone gives as equal-looking SQL values.
 */
function payloadCondition(match: PayloadMatch): SQL {
  // Segments are letters, digits and '_' (checked by the caller); quoted all the same.
  const path = "$" + match.path.map((segment) => `."${segment}"`).join("");
  const { value } = match;
  if (value === null) return sql`json_type(payload, ${path}) = 'null'`;
  if (typeof value === "boolean") return sql`json_type(payload, ${path}) = ${value ? "true" : "false"}`;
  if (typeof value === "number") {
    return sql`(json_type(payload, ${path}) IN ('integer', 'real') AND json_extract(payload, ${path}) = ${value})`;
  }
  return sql`(json_type(payload, ${path}) = 'text' AND json_extract(payload, ${path}) = ${value})`;
}

/** Counts by status and type, the age of the oldest runnable task, and what finished in the last minute. */
export async function stats(conn: Connection, now: number): Promise<QueueStats> {
  const [perTypeStatus, oldest, recent] = await batch(conn, [
    sql`SELECT type, status, count(*) AS n FROM task_queue GROUP BY type, status`,
    sql`SELECT min(run_after) AS "runAfter" FROM task_queue WHERE status = 'queued' AND run_after <= ${now}`,
    sql`
      SELECT status, count(*) AS n FROM task_queue
      WHERE finished_at >= ${now - 60_000} AND status IN ('completed', 'failed')
      GROUP BY status`,
  ]) as [
    { type: string; status: TaskStatus; n: number }[],
    { runAfter: number | null }[],
    { status: "completed" | "failed"; n: number }[],
  ];
  const zero = () => Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  const counts = zero();
  const byType: Record<string, Record<TaskStatus, number>> = {};
  for (const { type, status, n } of perTypeStatus) {
    counts[status] += Number(n);
    (byType[type] ??= zero())[status] = Number(n);
  }
  const lastMinute = { completed: 0, failed: 0 };
  for (const { status, n } of recent) lastMinute[status] = Number(n);
  const oldestRunAfter = oldest[0]?.runAfter;
  return {
    counts,
    byType,
    oldestQueuedAgeMs: oldestRunAfter == null ? null : Math.max(0, now - Number(oldestRunAfter)),
    lastMinute,
  };
}

function pendingQuery(typed: boolean, queued: boolean): PreparedSql {
  const ofTypes = typed ? sql`AND type IN (SELECT value FROM json_each(${p("types")}))` : sql``;
  const ofQueues = queued ? sql`AND queue IN (SELECT value FROM json_each(${p("queues")}))` : sql``;
  // A paused queue's tasks are not runnable: no claim takes them.
  return new PreparedSql(sql`
    SELECT
      EXISTS (
        SELECT 1 FROM task_queue WHERE status = 'queued' AND run_after <= ${p("now")} ${ofTypes} ${ofQueues}
          AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      ) AS runnable,
      EXISTS (SELECT 1 FROM task_queue WHERE status = 'running' ${ofTypes} ${ofQueues}) AS running`);
}

const PENDING = [
  [pendingQuery(false, false), pendingQuery(false, true)],
  [pendingQuery(true, false), pendingQuery(true, true)],
];

/**
 * Whether any task (of `types`, in `queues`) is runnable now, in a queue not paused, and whether any is
 * running: 1 or 0 each.
 */
export async function pending(
  conn: Connection,
  now: number,
  types?: readonly string[],
  queues?: readonly string[],
): Promise<{ runnable: number; running: number }> {
  const query = PENDING[Number(types !== undefined)]![Number(queues !== undefined)]!;
  const { rows: [row] } = await conn.execute(
    query.bind({ now, types: types && JSON.stringify(types), queues: queues && JSON.stringify(queues) }),
  );
  return { runnable: Number(row!.runnable), running: Number(row!.running) };
}

/** How many queued tasks (of `types`, in `queues`) are not due yet, and when the first of them is. */
export async function waiting(
  conn: Connection,
  now: number,
  types?: readonly string[],
  queues?: readonly string[],
): Promise<WaitingTasks> {
  const ofTypes = types ? sql`AND type IN (SELECT value FROM json_each(${JSON.stringify(types)}))` : sql``;
  const ofQueues = queues
    ? sql`AND queue IN (SELECT value FROM json_each(${JSON.stringify(queues)}))`
    : sql``;
  const [row] = await all<{ count: number; nextRunAfter: number | null }>(
    conn,
    sql`
      SELECT count(*) AS count, min(run_after) AS "nextRunAfter" FROM task_queue
      WHERE status = 'queued' AND run_after > ${now} ${ofTypes} ${ofQueues}`,
  );
  // An aggregate without GROUP BY: always one row.
  const { count, nextRunAfter } = row!;
  return { count: Number(count), nextRunAfter: nextRunAfter === null ? null : Number(nextRunAfter) };
}

/** The database's clock, in epoch milliseconds. */
export async function serverTime(conn: Connection): Promise<number> {
  // julianday('now') works on every SQLite a server may run (unixepoch('subsec') needs 3.42).
  const [row] = await all<{ now: number }>(
    conn,
    sql`SELECT CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) AS now`,
  );
  return Number(row!.now);
}
