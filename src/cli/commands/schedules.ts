/**
 * `prismq schedules`: the schedules linked into this build, each with its next run and the last slot fired
 * (from the database, shared by every worker), and the schedules the database knows that this build does
 * not declare.
 *
 * @module
 */
import type { ScheduleDefinition, ScheduleState } from "../../../mod.ts";
import { slotAfter } from "../../schedule_slots.ts";
import { expectArguments, parseCommand } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, withQueue } from "../context.ts";
import { formatTime, json, styleFor, table } from "../format.ts";

const HELP = `Usage: prismq schedules [--json]

Lists the schedules linked into this build (declared beside the handlers in handlers/, as
'export const schedules = [defineSchedule({...})]'), each with its cron expression and time zone, what
happens to slots missed while no worker ran, its next run, and the last slot fired with that slot's task.
Workers ('prismq run') fire them, each slot once across every worker and host. Schedules the database
remembers but this build does not declare are listed too, marked not linked: no worker of this build fires
them.
${COMMON_HELP}`;

/** One line of `prismq schedules`: a linked schedule, a remembered one, or both. */
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

export const schedulesCommand: Command = {
  name: "schedules",
  summary: "List schedules: next run, last slot fired",
  help: HELP,
  async run(argv, { io, schedules }) {
    const { values, positionals } = parseCommand("schedules", argv, { ...COMMON_OPTIONS });
    expectArguments(positionals, 0);
    const states = await withQueue(io, values, (queue) => queue.schedules());
    const views = describeSchedules(schedules, states, Date.now());
    if (values.json) {
      io.stdout.write(json(views));
      return 0;
    }
    if (views.length === 0) {
      io.stdout.write(
        "No schedules. Declare them beside a handler in handlers/ with " +
          "'export const schedules = [defineSchedule({...})]', then build again.\n",
      );
      return 0;
    }
    const style = styleFor(io.stdout, io);
    const rows = views.map((view) => [
      view.name,
      view.type ?? "-",
      view.cron === null ? style.dim("not linked") : `${view.cron} ${view.timeZone}`,
      view.missed ?? "-",
      view.nextRun === null ? "-" : formatTime(view.nextRun),
      view.lastSlot === null ? "never" : formatTime(view.lastSlot),
      view.lastTaskId === null ? "-" : String(view.lastTaskId),
    ]);
    io.stdout.write(
      table(["NAME", "TYPE", "CRON", "MISSED", "NEXT RUN", "LAST FIRED SLOT", "TASK"], rows, style, [6]),
    );
    return 0;
  },
};
