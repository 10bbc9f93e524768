/**
 * What the database keeps of a schedule, as every store reads it back from its `schedules` table: the row
 * to `ScheduleState`, and the states in the order of the names asked for. The SQL stays in each store's
 * `queries/schedules.ts`.
 *
 * @module
 */
import type { ScheduleState } from "./store.ts";

type Time = number | bigint | string;

/** A `schedules` row as a store's driver returns it: times as numbers, or as bigints or text. */
export interface ScheduleRowOf {
  name: string;
  since: Time;
  lastSlot: Time | null;
  lastTaskId: Time | null;
  firedAt: Time | null;
}

const orNull = (value: Time | null) => value === null ? null : Number(value);

/** A row as a `ScheduleState`, its times as numbers. */
export function scheduleState(row: ScheduleRowOf): ScheduleState {
  return {
    name: row.name,
    since: Number(row.since),
    lastSlot: orNull(row.lastSlot),
    lastTaskId: orNull(row.lastTaskId),
    firedAt: orNull(row.firedAt),
  };
}

/** The states of `rows` in the order of `names`; each name must have its row. */
export function statesInOrder(names: readonly string[], rows: readonly ScheduleRowOf[]): ScheduleState[] {
  const byName = new Map(rows.map((row) => [row.name, scheduleState(row)]));
  return names.map((name) => byName.get(name)!);
}
