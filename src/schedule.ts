/**
 * Schedules: `defineSchedule()`, a cron expression in an IANA time zone that enqueues a task of a registered
 * type with a fixed payload at each of its slots. Schedules are registered explicitly, beside their
 * handlers (`TaskHandlerRegistry.registerSchedule`); workers fire them (`src/worker/scheduler.ts`), each
 * slot exactly once across the fleet. The cron parser is croner; slot arithmetic is in `schedule_slots.ts`.
 *
 * @module
 */
import { Cron } from "croner";
import { duration, wholeNumber } from "./checks.ts";
import { invalidRange, invalidType } from "./errors.ts";
import { payloadJson, uniqueColumns, type UniqueOptions } from "./enqueue_item.ts";
import { assertTaskType } from "./handler.ts";

/**
 * What happens to the slots that passed while no worker could fire them (every worker down, say):
 *
 * - `"latest"` (the default): the latest missed slot fires once, as soon as a worker can; older ones are
 *   dropped. Right for work that brings things up to date (a sync, a report of "now").
 * - `"skip"`: missed slots are dropped; a slot fires only within `missedAfterMs` of its time. Right for work
 *   that is useless late (a reminder at 9:00).
 * - `"all"`: every missed slot fires, oldest first (at most 100 per pass of the scheduler, so a long outage
 *   catches up over several passes). Right for work owed per period (hourly billing).
 */
export type MissedSlots = "latest" | "skip" | "all";

/** The missed-slot policies, default first. */
export const MISSED_SLOTS: readonly MissedSlots[] = ["latest", "skip", "all"];

/** The `missedAfterMs` of `"skip"` schedules by default: a minute. */
export const DEFAULT_MISSED_AFTER_MS = 60_000;

/** A schedule made by {@link defineSchedule}: every field checked. */
export interface ScheduleDefinition {
  /** Its identity in the database: the slot it last fired is kept under this name. */
  readonly name: string;
  /** The task type it enqueues; its handler must be registered before the schedule. */
  readonly type: string;
  /** The cron expression: 5 fields (minute to weekday), or 6 with seconds first; or `@daily` and the like. */
  readonly cron: string;
  /** The IANA time zone the expression is read in. */
  readonly timeZone: string;
  /** The payload of every task it enqueues, as given. */
  readonly payload: unknown;
  /** The payload as the JSON text stored. */
  readonly payloadJson: string;
  readonly missed: MissedSlots;
  /** For `missed: "skip"`: how late a slot may still fire. */
  readonly missedAfterMs: number;
  readonly priority: number;
  /** Null: the handler's `maxAttempts`, else 5, decided when a slot fires. */
  readonly maxAttempts: number | null;
  readonly timeoutMs: number | null;
  /** The `unique` key of every task it enqueues, or null; see {@link ScheduleOptions.unique}. */
  readonly uniqueKey: string | null;
  /** How long that key is held from each task's creation; null: while the task is queued or running. */
  readonly uniqueForMs: number | null;
  readonly description: string;
}

/** What {@link defineSchedule} takes. */
export interface ScheduleOptions {
  /**
   * A name of its own, kept for good: the database remembers the last slot fired under it, so renaming a
   * schedule starts it afresh (and a new name never fires slots from before it was first seen). Letters,
   * digits, `_`, `-`, `.` and `:`.
   */
  name: string;
  /** The task type to enqueue. */
  type: string;
  /**
   * When: a cron expression of 5 fields (`"30 2 * * *"`: 02:30 every day) or 6, seconds first
   * (`"* * * * * *"`: every second), or a nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
   * Day of month and day of week both restrict (AND), unlike Vixie cron's OR.
   */
  cron: string;
  /** The IANA time zone the expression is read in, such as `"Europe/Berlin"`. @default "UTC" */
  timeZone?: string | undefined;
  /** The payload of every task, checked against the handler's schema when the schedule is registered. @default {} */
  payload?: unknown;
  /** What happens to slots missed while no worker ran: see {@link MissedSlots}. @default "latest" */
  missed?: MissedSlots | undefined;
  /** With `missed: "skip"`, how late a slot may still fire. @default 60000 */
  missedAfterMs?: number | undefined;
  /** The tasks' priority. @default 100 */
  priority?: number | undefined;
  /** The tasks' attempts before they fail for good. @default the handler's `maxAttempts`, else 5 */
  maxAttempts?: number | undefined;
  /** The tasks' per-attempt time limit. @default the handler's, or none */
  timeoutMs?: number | undefined;
  /**
   * A `unique` key for every task it enqueues (see `UniqueOptions`). A slot whose task's key another task
   * holds fires nothing new: the slot counts as done, and the schedule's `lastTaskId` names the holder. With
   * `{ key, while: "active" }`, runs never overlap: a slot due while the last run is queued or running is
   * skipped. A handler definition's `unique` does not apply to schedules. @default none
   *
   * @example
   * ```ts
   * import { defineSchedule } from "prismq";
   * defineSchedule({
   *   name: "sync_all",
   *   type: "sync_all",
   *   cron: "* * * * *",
   *   unique: { key: "schedule:sync_all", while: "active" }, // skip a minute while the last one runs
   * });
   * ```
   */
  unique?: UniqueOptions | undefined;
  /** Shown by `prismq schedules`. @default "" */
  description?: string | undefined;
}

/** As `Queue`'s default `maxPayloadBytes` (queue.ts, which imports the registry, which imports this). */
const MAX_PAYLOAD_BYTES = 1024 * 1024;

const NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/** The croner job of each definition: made once, when the definition is. */
const CRONS = new WeakMap<ScheduleDefinition, Cron>();

/**
 * Defines a schedule: a cron expression, read in an IANA time zone, that enqueues a task of `type` with
 * `payload` at each of its slots. Register it with `registry.registerSchedule(schedule)` after its handler;
 * a worker on that registry fires it, each slot exactly once however many workers and hosts run. A task
 * fired for a slot has that slot as its `runAfter`. In the `prismq` binary, a handler file declares its
 * schedules beside its handler: `export const schedules = [defineSchedule({...})]`.
 *
 * Daylight saving time: a slot whose time does not exist on the day clocks go forward (02:30 in
 * Europe/Berlin on the last Sunday of March) fires at the first time after the gap (03:00); a slot whose
 * time occurs twice when they go back fires once, at the first. This holds for every expression whose
 * seconds, minutes and hours have no wildcard or step, lists and ranges included (`0,30 2 * * *`, `30 1-3 * *
 * *`). Expressions with a wildcard or a step there (`*\/15 * * * *`) run on elapsed time instead: no slot in
 * the gap, and both occurrences of the repeated hour.
 *
 * @throws {TypeError | RangeError} naming what is wrong: a name that is not one, an empty type, a cron
 *   expression croner cannot read (with croner's reason) or one that never fires, an unknown time zone, a
 *   payload that cannot be JSON or is over 1 MiB, an unknown `missed`, a number out of range
 *
 * @example
 * ```ts
 * import { defineSchedule } from "prismq";
 *
 * export const nightlyReport = defineSchedule({
 *   name: "nightly_report",
 *   type: "send_email",
 *   cron: "30 2 * * *", // 02:30 every day
 *   timeZone: "Europe/Berlin",
 *   payload: { to: "ops@example.com", subject: "Nightly report", body: "..." },
 *   missed: "latest", // after downtime, send the latest missed one once (the default)
 * });
 * ```
 */
export function defineSchedule(options: ScheduleOptions): ScheduleDefinition {
  if (typeof options !== "object" || options === null) {
    throw invalidType("defineSchedule takes an object: { name, type, cron, timeZone, payload }.");
  }
  const { name } = options;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw invalidType(
      `A schedule's name must be 1 to 200 letters, digits, '_', '-', '.' or ':', got ${
        JSON.stringify(name)
      }.`,
    );
  }
  const label = `Schedule '${name}'`;
  try {
    assertTaskType(options.type);
  } catch (error) {
    throw invalidType(`${label}: ${(error as Error).message}`);
  }
  const timeZone = options.timeZone ?? "UTC";
  if (typeof timeZone !== "string" || !isTimeZone(timeZone)) {
    throw invalidRange(
      `${label}: unknown time zone ${JSON.stringify(timeZone)}. Use an IANA name such as "Europe/Berlin", ` +
        `"America/New_York" or "UTC".`,
    );
  }
  if (typeof options.cron !== "string") {
    throw invalidType(`${label}: cron must be a string such as "30 2 * * *", got ${typeof options.cron}.`);
  }
  let cron: Cron;
  try {
    cron = new Cron(options.cron, {
      timezone: timeZone,
      paused: true,
      mode: "5-or-6-parts",
      // Lists and ranges of times are fixed times too, as in Vixie cron: `0,30 2 * * *` must not skip the
      // spring-forward day or run twice in autumn.
      fixedTimeRule: "no-wildcard",
    });
  } catch (error) {
    throw invalidRange(
      `${label}: invalid cron expression ${JSON.stringify(options.cron)}: ` +
        `${(error as Error).message.replace(/^CronPattern: /, "")}. Write 5 fields (minute hour day month ` +
        `weekday, e.g. "30 2 * * *") or 6 with seconds first.`,
    );
  }
  if (cron.nextRun(new Date()) === null) {
    throw invalidRange(`${label}: the cron expression ${JSON.stringify(options.cron)} never fires.`);
  }
  const missed = options.missed ?? "latest";
  if (!MISSED_SLOTS.includes(missed)) {
    throw invalidType(
      `${label}: missed must be one of ${MISSED_SLOTS.map((m) => `"${m}"`).join(", ")}, got ` +
        `${JSON.stringify(missed)}.`,
    );
  }
  const payload = options.payload ?? {};
  const made: ScheduleDefinition = {
    name,
    type: options.type,
    cron: options.cron,
    timeZone,
    payload,
    payloadJson: payloadJson(options.type, payload, MAX_PAYLOAD_BYTES),
    missed,
    missedAfterMs: options.missedAfterMs === undefined
      ? DEFAULT_MISSED_AFTER_MS
      : duration(`${label}: missedAfterMs`, options.missedAfterMs, 0),
    priority: options.priority === undefined
      ? 100
      : wholeNumber(`${label}: priority`, options.priority, -Number.MAX_SAFE_INTEGER),
    maxAttempts: options.maxAttempts === undefined
      ? null
      : wholeNumber(`${label}: maxAttempts`, options.maxAttempts, 1),
    timeoutMs: options.timeoutMs === undefined ? null : duration(`${label}: timeoutMs`, options.timeoutMs, 1),
    ...scheduleUnique(label, options.unique),
    description: String(options.description ?? ""),
  };
  Object.freeze(made);
  CRONS.set(made, cron);
  return made;
}

/** A schedule's `unique`, checked, as its two columns; a wrong one names the schedule. */
function scheduleUnique(
  label: string,
  unique: unknown,
): { uniqueKey: string | null; uniqueForMs: number | null } {
  try {
    return uniqueColumns(unique);
  } catch (error) {
    if (error instanceof Error) error.message = `${label}: ${error.message}`;
    throw error;
  }
}

/** Whether `value` was made by {@link defineSchedule}. */
export function isScheduleDefinition(value: unknown): value is ScheduleDefinition {
  return typeof value === "object" && value !== null && CRONS.has(value as ScheduleDefinition);
}

/** The croner job of a definition made by {@link defineSchedule}. */
export function cronOf(schedule: ScheduleDefinition): Cron {
  const cron = CRONS.get(schedule);
  if (!cron) {
    throw invalidType(
      `Schedule '${schedule.name}' was not made by defineSchedule; make it with defineSchedule.`,
    );
  }
  return cron;
}

function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}
