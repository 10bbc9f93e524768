/**
 * Where the queue and the workers read the time. Two readings: the wall clock (`now`), which times are
 * stored and compared in, and elapsed time (`elapsed`), which never steps, for "how long since": a wall
 * clock stepped forward or back by NTP or an operator must not make a live worker's leases look expired,
 * nor stop its reaper. Tests swap in a {@link ManualClock} to step through delays and backoffs without
 * sleeping.
 *
 * @module
 */

import { invalidRange } from "./errors.ts";

/** A source of the current time. */
export interface Clock {
  /** Wall-clock time in epoch milliseconds. */
  now(): number;
  /**
   * Milliseconds since an arbitrary start, never stepping back or jumping: the monotonic clock.
   * @default performance.now()
   */
  elapsed?(): number;
}

/** The real time. */
export const systemClock: Clock = { now: () => Date.now(), elapsed: () => performance.now() };

/** The clock's elapsed-time reading, or the monotonic clock when it has none. */
export function elapsedOn(clock: Clock): number {
  return clock.elapsed ? clock.elapsed() : performance.now();
}

/**
 * A clock that moves only when told to: `advance()` lets time pass (both readings move), `set()` steps the
 * wall clock alone, as NTP or an operator would.
 *
 * @example
 * ```ts
 * import { ManualClock } from "prismq";
 * const clock = new ManualClock(Date.now());
 * clock.advance(30_000);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #elapsed = 0;
  constructor(start: number = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  elapsed(): number {
    return this.#elapsed;
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw invalidRange(`ManualClock.advance() needs a number ≥ 0, got ${ms}.`);
    this.#now += ms;
    this.#elapsed += ms;
  }
  /** Sets the wall clock to `epochMs`, as a step would: elapsed time does not move. */
  set(epochMs: number): void {
    this.#now = epochMs;
  }
}
