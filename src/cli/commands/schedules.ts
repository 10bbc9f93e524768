/**
 * `prismq schedules`: the schedules linked into this build, each with its next run and the last slot fired
 * (from the database, shared by every worker), and the schedules the database knows that this build does
 * not declare.
 *
 * @module
 */
import { describeSchedules, type ScheduleView } from "../../schedule_views.ts";

export type { ScheduleView };
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
