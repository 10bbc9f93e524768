/**
 * Slot arithmetic, pure: which slots of a schedule fall in a span of time, and which of them are due to
 * fire now under its missed-slot policy. Times are epoch milliseconds; slots are whole seconds (croner's
 * precision). Daylight saving time is croner's (see `defineSchedule`).
 *
 * @module
 */
import { cronOf, type ScheduleDefinition } from "./schedule.ts";

/** Most slots a `missed: "all"` schedule fires in one pass; the rest wait for the next pass. */
export const ALL_BATCH = 100;

/** The first slot strictly after `after`, or null when there is none. */
export function slotAfter(schedule: ScheduleDefinition, after: number): number | null {
  return cronOf(schedule).nextRun(new Date(after))?.getTime() ?? null;
}

/** The slots in (`after`, `upTo`], oldest first, at most `limit`. */
export function slotsBetween(
  schedule: ScheduleDefinition,
  after: number,
  upTo: number,
  limit: number,
): number[] {
  const slots: number[] = [];
  let slot = slotAfter(schedule, after);
  while (slot !== null && slot <= upTo && slots.length < limit) {
    slots.push(slot);
    slot = slotAfter(schedule, slot);
  }
  return slots;
}

/** The latest slot in (`after`, `upTo`], or null: found without walking every slot of a long outage. */
export function latestSlot(schedule: ScheduleDefinition, after: number, upTo: number): number | null {
  const first = slotAfter(schedule, after);
  if (first === null || first > upTo) return null;
  // croner's previous run, checked: the next slot after it must lie beyond upTo. Walk forward when not.
  const previous = cronOf(schedule).previousRuns(1, new Date(upTo + 1))[0]?.getTime();
  let latest = previous !== undefined && previous > after && previous <= upTo ? previous : first;
  for (
    let next = slotAfter(schedule, latest);
    next !== null && next <= upTo;
    next = slotAfter(schedule, latest)
  ) {
    latest = next;
  }
  return latest;
}

/**
 * The slots to fire now, oldest first, for a schedule whose slots up to `base` are settled (fired, or from
 * before the schedule was first seen), under its missed-slot policy:
 * `all` every slot in (base, now] (at most {@link ALL_BATCH}); `latest` the latest of them; `skip` the latest
 * of them when it is at most `missedAfterMs` old.
 */
export function dueSlots(schedule: ScheduleDefinition, base: number, now: number): number[] {
  if (schedule.missed === "all") return slotsBetween(schedule, base, now, ALL_BATCH);
  const latest = latestSlot(schedule, base, now);
  if (latest === null) return [];
  if (schedule.missed === "skip" && now - latest > schedule.missedAfterMs) return [];
  return [latest];
}
