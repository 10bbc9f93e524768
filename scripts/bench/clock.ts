/**
 * The system clock the latency benchmark's processes share, read with a microsecond's resolution.
 *
 * `performance.timeOrigin` is fixed when a process starts, only to a fraction of a millisecond, and a process
 * that has run for a while drifts from the system clock as the system slews it (by tens of milliseconds over
 * minutes here). So the benchmark and its worker both measure their origin again at the same moment, just
 * before the run: the benchmark calibrates, sends the worker SIGUSR1 and waits for its "calibrated" line.
 * After that both drift alike.
 *
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";

let origin = performance.timeOrigin;

/**
 * Measures the origin again at ticks of `Date.now()`. A pause between seeing the tick and reading
 * `performance.now()` can only make an estimate early, so the latest of a few is the closest.
 */
export function calibrateClock(): void {
  let latest = -Infinity;
  for (let reading = 0; reading < 3; reading++) {
    const before = Date.now();
    let now = before;
    // At most a millisecond.
    while (now === before) now = Date.now();
    latest = Math.max(latest, now - performance.now());
  }
  origin = latest;
}

/** Milliseconds on the system clock, with a microsecond's resolution. */
export function clockNow(): number {
  return origin + performance.now();
}

/** For a worker: calibrate on each SIGUSR1, then print "calibrated". */
export function calibrateOnSignal(): void {
  process.on("SIGUSR1", () => {
    calibrateClock();
    writeSync(1, "calibrated\n");
  });
}
