/**
 * The `schedules` table: per schedule, the latest slot fired. A fire is one batch (one transaction) whose
 * first statement advances the slot by compare-and-set, so that it takes the write lock before it reads;
 * the task is inserted only when that statement changed the row (`changes()`), and the row then learns the
 * task's id.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { ScheduleFire, ScheduleState } from "../../store.ts";
import { columnsOf, INSERT_KEYS, insertColumns, insertRow } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { type ScheduleRow, schedules } from "../schema.ts";
import { all, batch } from "../sql.ts";
import { releaseExpired } from "./insert.ts";
import { scheduleState, statesInOrder } from "../../schedule_states.ts";

const COLUMNS = columnsOf(schedules);

/** The state of each named schedule, in the order given; rows for new names are made first. */
export async function ensureSchedules(
  conn: Connection,
  names: readonly string[],
  now: number,
): Promise<ScheduleState[]> {
  if (names.length === 0) return [];
  const list = JSON.stringify(names);
  const select =
    sql`SELECT ${COLUMNS} FROM ${schedules} WHERE name IN (SELECT value FROM json_each(${list}))`;
  let rows = await all<ScheduleRow>(conn, select);
  // Written only when a name is new, so that workers looking every second take no write lock for it.
  if (rows.length < new Set(names).size) {
    [, rows] = await batch(conn, [
      sql`
        INSERT INTO ${schedules} (name, since)
        SELECT value, ${now} FROM json_each(${list}) WHERE true
        ON CONFLICT (name) DO NOTHING`,
      select,
    ]) as [unknown, ScheduleRow[]];
  }
  return statesInOrder(names, rows);
}

/**
 * Fires one slot: advances the row from the expected slot, inserts the task, records its id. A task whose
 * `unique` key another task holds is not inserted: the slot is done all the same, and the row records the
 * holder's id (a window over is released first, as any enqueue of the key would).
 */
export async function fireSchedule(
  conn: Connection,
  fire: ScheduleFire,
): Promise<{ fired: true; taskId: number } | { fired: false }> {
  const { name, slot, expectedSlot, task, now } = fire;
  const values = [...insertRow(task), now, now];
  const keyed = task.uniqueKey !== null;
  const results = await batch(conn, [
    ...(keyed ? [releaseExpired([task.uniqueKey!], now)] : []),
    sql`
      UPDATE ${schedules} SET last_slot = ${slot}, fired_at = ${now}, last_task_id = NULL
      WHERE name = ${name} AND last_slot IS ${expectedSlot} AND ${slot} > coalesce(last_slot, since)`,
    sql`
      INSERT INTO task_queue (${insertColumns(INSERT_KEYS)})
      SELECT ${sql.join(values.map((value) => sql`${value}`), sql`, `)} WHERE changes() = 1
      ${keyed ? sql`ON CONFLICT DO NOTHING` : sql``}
      RETURNING id`,
    sql`UPDATE ${schedules} SET last_task_id = last_insert_rowid() WHERE name = ${name} AND changes() = 1`,
    // Advanced by this fire (no other fire of the slot leaves the id NULL), but the key was held.
    ...(keyed
      ? [sql`
        UPDATE ${schedules} SET last_task_id = (
          SELECT id FROM task_queue
          WHERE unique_key = ${task.uniqueKey} AND unique_key IS NOT NULL AND unique_released_at IS NULL
            AND (unique_for_ms IS NOT NULL OR status = 'waiting' OR status = 'queued' OR status = 'running'))
        WHERE name = ${name} AND last_slot = ${slot} AND fired_at = ${now} AND last_task_id IS NULL
        RETURNING last_task_id AS id`]
      : []),
  ]);
  const inserted = results[keyed ? 2 : 1] as { id: number }[];
  const held = keyed ? results[4] as { id: number | null }[] : [];
  const taskId = inserted[0]?.id ?? held[0]?.id;
  return taskId === undefined || taskId === null ? { fired: false } : { fired: true, taskId: Number(taskId) };
}

/** Every schedule's state, by name. */
export async function listSchedules(conn: Connection): Promise<ScheduleState[]> {
  const rows = await all<ScheduleRow>(conn, sql`SELECT ${COLUMNS} FROM ${schedules} ORDER BY name`);
  return rows.map(scheduleState);
}
