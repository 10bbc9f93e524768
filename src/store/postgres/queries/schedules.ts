/**
 * The `schedules` table: per schedule, the latest slot fired. A fire is one transaction: an UPDATE that
 * advances the slot by compare-and-set (a fire at the same moment waits for the row's lock, then finds the
 * slot moved and changes nothing), then, only when it changed the row, the task's INSERT and its id.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { ScheduleFire, ScheduleState } from "../../store.ts";
import { columnsOf } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { type ScheduleRow, schedules } from "../schema.ts";
import { array } from "../sql.ts";
import { insertOne } from "./insert.ts";
import { scheduleState, statesInOrder } from "../../schedule_states.ts";

const COLUMNS = columnsOf(schedules);

/** The state of each named schedule, in the order given; rows for new names are made first. */
export async function ensureSchedules(
  conn: PgConnection,
  names: readonly string[],
  now: number,
): Promise<ScheduleState[]> {
  if (names.length === 0) return [];
  const select = sql`SELECT ${COLUMNS} FROM ${schedules} WHERE name = ANY(${array(names)}::text[])`;
  let rows = await conn.rows<ScheduleRow>(select);
  // Written only when a name is new, so that workers looking every second write nothing for it.
  if (rows.length < new Set(names).size) {
    const [, selected] = await conn.batch([
      sql`
        INSERT INTO ${schedules} (name, since) SELECT unnest(${array(names)}::text[]), ${now}::bigint
        ON CONFLICT (name) DO NOTHING`,
      select,
    ]);
    rows = selected as unknown as ScheduleRow[];
  }
  return statesInOrder(names, rows);
}

/** Fires one slot: advances the row from the expected slot, inserts the task, records its id. */
export function fireSchedule(
  conn: PgConnection,
  fire: ScheduleFire,
): Promise<{ fired: true; taskId: number } | { fired: false }> {
  const { name, slot, expectedSlot, task, now } = fire;
  return conn.begin(async (tx) => {
    const advanced = await conn.rows(
      sql`
        UPDATE ${schedules} SET last_slot = ${slot}::bigint, fired_at = ${now}::bigint, last_task_id = NULL
        WHERE name = ${name}::text AND last_slot IS NOT DISTINCT FROM ${expectedSlot}::bigint
          AND ${slot}::bigint > coalesce(last_slot, since)
        RETURNING 1 AS advanced`,
      tx,
    );
    if (advanced.length === 0) return { fired: false } as const;
    const { id } = await insertOne((query) => conn.rows(query, tx), task, now);
    await conn.rows(
      sql`UPDATE ${schedules} SET last_task_id = ${id}::bigint WHERE name = ${name}::text`,
      tx,
    );
    return { fired: true, taskId: id } as const;
  });
}

/** Every schedule's state, by name. */
export async function listSchedules(conn: PgConnection): Promise<ScheduleState[]> {
  const rows = await conn.rows<ScheduleRow>(sql`SELECT ${COLUMNS} FROM ${schedules} ORDER BY name`);
  return rows.map(scheduleState);
}
