/**
 * Timers for waits of any length. Every runtime's `setTimeout` takes at most 2^31 − 1 ms (about 24.8
 * days) and fires a longer one after 1 ms, with only a warning: a 25-day task timeout would time out every
 * attempt at once. A long wait here is split into waits the runtime honours.
 *
 * @module
 */

/** The longest delay `setTimeout` honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending {@link longTimeout}. */
export interface LongTimeout {
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Calls `fn` once, `ms` milliseconds from now, however long that is. Time is measured on the monotonic
 * clock, so a step of the wall clock neither shortens nor lengthens the wait.
 */
export function longTimeout(fn: () => void, ms: number): LongTimeout {
  const handle: LongTimeout = { timer: undefined };
  const due = performance.now() + ms;
  const arm = () => {
    const left = due - performance.now();
    handle.timer = left <= MAX_TIMER_MS ? setTimeout(fn, Math.max(0, left)) : setTimeout(arm, MAX_TIMER_MS);
  };
  arm();
  return handle;
}

/** Cancels a {@link longTimeout}; nothing happens for one that has fired, or for undefined. */
export function clearLongTimeout(handle: LongTimeout | undefined): void {
  if (handle) clearTimeout(handle.timer);
}
