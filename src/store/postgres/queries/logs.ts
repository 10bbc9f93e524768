/**
 * Task logs: the lines a handler writes through `ctx.log`, appended in groups and listed per task.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { LogLevel, TaskLog, TaskLogEntry } from "../../store.ts";
import { columnsOf } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { taskLogs } from "../schema.ts";
import { array } from "../sql.ts";

const LOG_COLUMNS = columnsOf(taskLogs);

/** Appends `entries` in one statement, in the order given. */
export async function appendLogs(conn: PgConnection, entries: readonly TaskLogEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await conn.rows(sql`
    INSERT INTO task_logs (task_id, at, level, message, details)
    SELECT task_id, at, level, message, details::json
    FROM unnest(${array(entries.map((entry) => entry.taskId))}::bigint[],
      ${array(entries.map((entry) => entry.at))}::bigint[],
      ${array(entries.map((entry) => entry.level))}::text[],
      ${array(entries.map((entry) => entry.message))}::text[],
      ${
    array(entries.map((entry) => entry.details === undefined ? null : JSON.stringify(entry.details)))
  }::text[])
      WITH ORDINALITY AS e(task_id, at, level, message, details, ord)
    ORDER BY ord`);
}

/** A task's log lines, in the order they were written. */
export async function listLogs(conn: PgConnection, taskId: number): Promise<TaskLog[]> {
  const rows = await conn.rows<
    { id: number; taskId: number; at: number; level: LogLevel; message: string; details: string | null }
  >(sql`SELECT ${LOG_COLUMNS} FROM task_logs WHERE task_id = ${taskId}::bigint ORDER BY id`);
  return rows.map((row) => ({
    id: row.id,
    taskId: row.taskId,
    at: row.at,
    level: row.level,
    message: row.message,
    details: row.details === null ? undefined : JSON.parse(row.details),
  }));
}
