/**
 * Schedules as operators see them (`prismq schedules`, `GET /api/schedules`): the linked schedules with their
 * next run, beside what the database keeps of each, and the schedules the database remembers that no linked
 * definition declares.
 *
 * @module
 */
import type { ScheduleDefinition } from "./schedule.ts";
import { slotAfter } from "./schedule_slots.ts";
import type { ScheduleState } from "./store/store.ts";

/** One schedule: a linked schedule, a remembered one, or both. */
export interface ScheduleView {
  name: string;
  /** Whether this build declares it. */
  linked: boolean;
  type: string | null;
  cron: string | null;
  timeZone: string | null;
  missed: string | null;
  /** When it fires next (epoch ms), for a linked schedule. */
  nextRun: number | null;
  /** When a worker first saw it; null before any did. */
  since: number | null;
  lastSlot: number | null;
  lastTaskId: number | null;
  firedAt: number | null;
}

/** The linked schedules and the database's states, by name, with each linked schedule's next run. */
export function describeSchedules(
  linked: readonly ScheduleDefinition[],
  states: readonly ScheduleState[],
  now: number,
): ScheduleView[] {
  const byName = new Map(states.map((state) => [state.name, state]));
  const views: ScheduleView[] = linked.map((schedule) => {
    const state = byName.get(schedule.name);
    const settled = Math.max(now, state?.lastSlot ?? -Infinity);
    return {
      name: schedule.name,
      linked: true,
      type: schedule.type,
      cron: schedule.cron,
      timeZone: schedule.timeZone,
      missed: schedule.missed,
      nextRun: slotAfter(schedule, settled),
      since: state?.since ?? null,
      lastSlot: state?.lastSlot ?? null,
      lastTaskId: state?.lastTaskId ?? null,
      firedAt: state?.firedAt ?? null,
    };
  });
  for (const state of states) {
    if (linked.some((schedule) => schedule.name === state.name)) continue;
    views.push({
      name: state.name,
      linked: false,
      type: null,
      cron: null,
      timeZone: null,
      missed: null,
      nextRun: null,
      since: state.since,
      lastSlot: state.lastSlot,
      lastTaskId: state.lastTaskId,
      firedAt: state.firedAt,
    });
  }
  return views.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
