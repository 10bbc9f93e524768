/**
 * Task logs: the lines a handler writes through `ctx.log`, appended in groups and listed per task.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { TaskLog, TaskLogEntry } from "../../store.ts";
import { columnsOf } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { type TaskLogRow, taskLogs } from "../schema.ts";
import { all } from "../sql.ts";

const LOG_COLUMNS = columnsOf(taskLogs);

/** Appends `entries` in one statement. */
export async function appendLogs(conn: Connection, entries: readonly TaskLogEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const rows = JSON.stringify(entries.map((entry) => [
    entry.taskId,
    entry.at,
    entry.level,
    entry.message,
    entry.details === undefined ? null : JSON.stringify(entry.details),
  ]));
  await all(
    conn,
    sql`
      INSERT INTO ${taskLogs} (task_id, at, level, message, details)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(${rows})`,
  );
}

/** A task's log lines, in the order they were written. */
export async function listLogs(conn: Connection, taskId: number): Promise<TaskLog[]> {
  const rows = await all<TaskLogRow>(
    conn,
    sql`SELECT ${LOG_COLUMNS} FROM ${taskLogs} WHERE task_id = ${taskId} ORDER BY id`,
  );
  return rows.map((row) => ({
    id: row.id,
    taskId: row.taskId,
    at: row.at,
    level: row.level,
    message: row.message,
    details: row.details === null ? undefined : JSON.parse(row.details),
  }));
}
