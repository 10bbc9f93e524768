/**
 * The scheduler: fires the schedules of the worker's registry (`registry.registerSchedule`), each slot
 * exactly once across the fleet. Beside the run loop, on a timer of its own, so that a worker whose slots
 * are all busy still fires on time.
 *
 * Exactly once rests on the store, not on this part: a fire advances the schedule's last slot by
 * compare-and-set in the transaction that inserts the slot's task (`Store.scheduleFire`), so workers racing
 * for a slot, a worker with a stale view, or one that restarts around a slot cannot fire it twice; and the
 * state outlives the task, so purging tasks fires nothing again. On a store that elects leaders
 * (PostgreSQL) only the leader of `"schedules"` fires, so that workers on many hosts do not all race for
 * every slot; it is elected apart from the reaper's leader, since a busy worker still fires. On SQLite every
 * worker tries and the compare-and-set picks one.
 *
 * A pass reads the database only when a slot is due by what this worker knows: it remembers, per schedule,
 * up to when every slot is settled (fired by anyone, or dropped by its missed-slot policy), and sleeps until
 * the next slot after that, at most a minute (so that a registry changed at run time is seen).
 *
 * @module
 */
import { DEFAULT_QUEUE } from "../queue_name.ts";
import type { Clock } from "../clock.ts";
import type { TaskHandlerInfo, TaskHandlerRegistry } from "../registry.ts";
import type { ScheduleDefinition } from "../schedule.ts";
import { ALL_BATCH, dueSlots, slotAfter } from "../schedule_slots.ts";
import type { NewTask, Store } from "../store/store.ts";
import { clearLongTimeout, type LongTimeout, longTimeout } from "../timers.ts";
import type { Leadership } from "./leader.ts";

/** The longest sleep between passes. */
const MAX_SLEEP_MS = 60_000;
/** A scheduled task's attempts when neither its schedule nor its handler says: an enqueue's default. */
const DEFAULT_SCHEDULED_ATTEMPTS = 5;
/** How soon a pass is made again after an error, or when another worker leads. */
const RETRY_MS = 1000;

type SchedulerStore = Pick<Store, "scheduleEnsure" | "scheduleFire">;

export interface SchedulerParts {
  store: SchedulerStore;
  registry: TaskHandlerRegistry | undefined;
  clock: Clock;
  /**
   * Corrects `clock` to the database server's, once: a pass reads no time before it, since a slot or a
   * lease bid on a host's uncorrected clock would be minutes off on a host whose clock is.
   */
  syncClock(): Promise<void>;
  /** The lease of `"schedules"`; always held on a store without elections. */
  leadership: Leadership;
  /** Called with what went wrong in a pass; the next pass tries again. */
  onError(error: unknown): void;
  /** Called after a pass that inserted tasks, to wake this process's workers. */
  onFired(): void;
}

export class Scheduler {
  readonly #parts: SchedulerParts;
  /** Per schedule, the time up to which all its slots are settled. */
  readonly #settled = new Map<ScheduleDefinition, number>();
  #timer: LongTimeout | undefined;
  #pass: Promise<void> | undefined;
  #running = false;

  constructor(parts: SchedulerParts) {
    this.#parts = parts;
  }

  /** Starts passes, the first at once. Nothing when already started. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops passes; resolves once a pass under way has ended and this worker resigned its lead. */
  async stop(): Promise<void> {
    this.#running = false;
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
    await this.#parts.leadership.resign().catch((error) => this.#parts.onError(error));
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = longTimeout(() => {
      this.#pass = this.runPass().then(
        (next) => this.#schedule(next),
        (error) => {
          this.#parts.onError(error);
          this.#schedule(RETRY_MS);
        },
      );
    }, ms);
  }

  /**
   * One pass: fires every slot due now (under each schedule's missed-slot policy). Resolves with how long to
   * sleep before the next.
   */
  async runPass(): Promise<number> {
    const { store, registry, clock, leadership } = this.#parts;
    const schedules = registry?.getSchedules() ?? [];
    await this.#parts.syncClock();
    const now = clock.now();
    for (const known of this.#settled.keys()) {
      if (!schedules.includes(known)) this.#settled.delete(known);
    }
    const due = schedules.filter((schedule) => this.#nextSlot(schedule) <= now);
    if (due.length === 0) return this.#sleep(schedules, now);
    // Another worker leads: bid again at the next slot, when this one would have work if that one died.
    if (!(await leadership.leads())) return this.#untilNextSlot(due, now);
    const states = await store.scheduleEnsure(due.map((schedule) => schedule.name), now);
    let fired = 0;
    let again = false;
    for (const [i, schedule] of due.entries()) {
      const state = states[i]!;
      let expected = state.lastSlot;
      const slots = dueSlots(schedule, expected ?? state.since, now);
      let settled = true;
      for (const slot of slots) {
        const result = await store.scheduleFire({
          name: schedule.name,
          slot,
          expectedSlot: expected,
          task: taskFor(schedule, slot, registry?.getHandlerInfo(schedule.type)),
          now,
        });
        // Another worker fired it first (or a later slot): read its state again at once.
        if (!result.fired) {
          settled = false;
          break;
        }
        expected = slot;
        fired++;
      }
      if (slots.length === ALL_BATCH) settled = false;
      if (settled) this.#settled.set(schedule, now);
      else again = true;
    }
    if (fired > 0) this.#parts.onFired();
    return again ? 0 : this.#sleep(schedules, clock.now());
  }

  /** The first slot after the time up to which `schedule` is settled; -Infinity when nothing is known. */
  #nextSlot(schedule: ScheduleDefinition): number {
    const settled = this.#settled.get(schedule);
    return settled === undefined ? -Infinity : slotAfter(schedule, settled) ?? Infinity;
  }

  /** How long until the first slot after `now` of any of `schedules`: at least RETRY_MS, at most a minute. */
  #untilNextSlot(schedules: readonly ScheduleDefinition[], now: number): number {
    const next = Math.min(...schedules.map((schedule) => slotAfter(schedule, now) ?? Infinity));
    return Math.max(RETRY_MS, Math.min(MAX_SLEEP_MS, next - now));
  }

  #sleep(schedules: readonly ScheduleDefinition[], now: number): number {
    const next = Math.min(...schedules.map((schedule) => this.#nextSlot(schedule)));
    return Math.max(0, Math.min(MAX_SLEEP_MS, next - now));
  }
}

/**
 * The task a schedule enqueues for `slot`: due at the slot, so that its handler sees it as `runAfter`; with
 * its handler's `maxAttempts` and queue where the schedule sets none, as an enqueue through a `Queue` that
 * knows the handler would have.
 */
function taskFor(schedule: ScheduleDefinition, slot: number, handler: TaskHandlerInfo | undefined): NewTask {
  return {
    type: schedule.type,
    payload: schedule.payloadJson,
    priority: schedule.priority,
    maxAttempts: schedule.maxAttempts ?? handler?.maxAttempts ?? DEFAULT_SCHEDULED_ATTEMPTS,
    runAfter: slot,
    idempotencyKey: null,
    timeoutMs: schedule.timeoutMs,
    retryPolicy: null,
    queue: handler?.queue ?? DEFAULT_QUEUE,
    uniqueKey: schedule.uniqueKey,
    uniqueForMs: schedule.uniqueForMs,
  };
}
