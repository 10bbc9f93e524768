/**
 * Where S6 reads a worker's memory: many times over a window of completions at the start of its drain and
 * again over one at the end, rather than once at each end. A worker compiled with Bun runs on
 * JavaScriptCore, whose heap rises and falls by about 30 MiB of RSS every 15,000–20,000 no-op tasks
 * (objects that outlive a young-generation collection pile up until a full one) with no trend through a
 * million tasks; one reading at each end measured mostly where each fell in that cycle: the same build gave
 * a median growth of 20 MiB in one run of the bench and −2 MiB in the next. The medians of two windows that
 * each span a cycle do not depend on it.
 *
 * @module
 */
import { median } from "./report.ts";

/** Readings per window, spread evenly across it, ends included. */
const STEPS_PER_WINDOW = 20;

export class MemoryWindows {
  readonly #first: number;
  readonly #total: number;
  readonly #window: number;
  readonly #step: number;
  readonly #start: number[] = [];
  readonly #end: number[] = [];

  /**
   * @param first completions where the first window starts
   * @param total completions where the last window ends (the drain's last)
   * @param window completions each window spans
   * @throws {RangeError} when the windows would overlap, or one would start before the first completion
   */
  constructor(first: number, total: number, window: number) {
    if (!(first >= 1 && window >= 1 && first + window <= total - window)) {
      throw new RangeError(
        `memory windows of ${window} tasks from ${first} and up to ${total} completions would overlap`,
      );
    }
    this.#first = first;
    this.#total = total;
    this.#window = window;
    this.#step = Math.max(1, Math.floor(window / STEPS_PER_WINDOW));
  }

  /** Whether the memory is to be read once `completed` tasks are reported. */
  wants(completed: number): boolean {
    const fromFirst = completed - this.#first;
    const toTotal = this.#total - completed;
    return (fromFirst >= 0 && fromFirst <= this.#window && fromFirst % this.#step === 0) ||
      (toTotal >= 0 && toTotal <= this.#window && toTotal % this.#step === 0);
  }

  /** Keeps a reading taken at `completed` (one {@link wants}); a reading that failed is left out. */
  record(completed: number, kib: number | undefined): void {
    if (kib === undefined) return;
    (completed <= this.#first + this.#window ? this.#start : this.#end).push(kib);
  }

  /** The median reading of the first window and of the last, in MiB. */
  medians(): { first: number; end: number } {
    if (this.#start.length === 0 || this.#end.length === 0) {
      throw new Error("the worker's memory was not read in both windows");
    }
    return { first: median(this.#start) / 1024, end: median(this.#end) / 1024 };
  }
}
