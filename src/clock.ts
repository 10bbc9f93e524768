/**
 * Where the queue and the workers read the time. Tests swap in a {@link ManualClock} to step through
 * delays and backoffs without sleeping.
 *
 * @module
 */

/** A source of the current time in epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** The real time. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told to.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(Date.now());
 * clock.advance(30_000);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number = Date.now()) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance() needs a number ≥ 0, got ${ms}.`);
    this.#now += ms;
  }
  /** Sets the clock to `epochMs`. */
  set(epochMs: number): void {
    this.#now = epochMs;
  }
}
