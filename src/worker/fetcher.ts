/**
 * The fetcher: claims tasks (only of the worker's `types`, from its `queues`) and holds those claimed ahead of free slots in a
 * buffer, judging how far ahead is worth it from how long handlers have been taking and how large payloads
 * have been.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { ClaimStrategy, LeasedTask, Store, WaitingTasks } from "../store/store.ts";
import type { Completer } from "./completer.ts";
import type { WorkerEvents } from "./events.ts";
import type { ResolvedWorkerOptions } from "./options.ts";

/** Claimed-ahead tasks should start within about this long. */
const PREFETCH_HORIZON_MS = 10;
/** And their payloads should take no more memory than this, in UTF-16 code units of JSON. */
const PREFETCH_PAYLOAD_LENGTH = 16 * 1024 * 1024;

type FetcherStore = Pick<
  Store,
  "taskRecordAndClaim" | "taskPending" | "taskWaiting" | "queuePausedNames" | "queueCountAgain"
>;

export class Fetcher {
  readonly #store: FetcherStore;
  readonly #completer: Completer;
  readonly #events: WorkerEvents;
  readonly #clock: Clock;
  readonly #workerId: string;
  readonly #strategy: ClaimStrategy;
  readonly #leaseMs: number;
  readonly #types: readonly string[] | undefined;
  readonly #queues: readonly string[] | undefined;
  readonly #prefetch: number;
  readonly #concurrency: number;
  /** Claimed, not started yet: their leases are held (and renewed) like those of running tasks. */
  #buffer: LeasedTask[] = [];
  /** The paused queues as {@link mayStart} last read them. */
  #paused: ReadonlySet<string> = new Set();
  /** Claimed-ahead tasks past their rate window, taken from the buffer to start, until they are decided. */
  readonly #deciding = new Set<LeasedTask>();
  /** The count of late tasks under way (see {@link mayStart}), if any. */
  #counting: Promise<void> | null = null;
  /** Moving average of how long a handler takes, in ms; NaN until one has run. */
  #averageRunMs = NaN;
  /** Moving average of the payload length of claimed tasks. */
  #averagePayloadLength = NaN;

  constructor(
    store: FetcherStore,
    completer: Completer,
    events: WorkerEvents,
    options: ResolvedWorkerOptions,
  ) {
    this.#store = store;
    this.#completer = completer;
    this.#events = events;
    this.#clock = options.clock;
    this.#workerId = options.workerId;
    this.#strategy = options.strategy;
    this.#leaseMs = options.leaseMs;
    this.#types = options.types;
    this.#queues = options.queues;
    this.#prefetch = options.prefetch;
    this.#concurrency = options.concurrency;
  }

  /** The tasks claimed ahead, oldest first. */
  get buffered(): readonly LeasedTask[] {
    return this.#buffer;
  }

  /** Adds claimed tasks to the buffer, to start as slots free up. */
  hold(claimed: readonly LeasedTask[]): void {
    this.#buffer.push(...claimed);
  }

  /** The next claimed-ahead task to start, taken from the buffer. */
  next(): LeasedTask | undefined {
    return this.#buffer.shift();
  }

  /** Empties the buffer, returning what it held. */
  takeBuffered(): LeasedTask[] {
    const buffered = this.#buffer;
    this.#buffer = [];
    return buffered;
  }

  /** Removes tasks from the buffer: this worker no longer holds them. */
  drop(gone: readonly LeasedTask[]): void {
    this.#buffer = this.#buffer.filter((leased) => !gone.includes(leased));
  }

  /** The loop is on its way to {@link claim}: outcomes wait for it until the returned function is called. */
  claimComing(): () => void {
    return this.#completer.holdForClaim();
  }

  /**
   * Claims up to `limit` tasks, of which the first `start` start at once (the rest are claimed ahead),
   * recording in the same transaction any starts and outcomes waiting to be written.
   */
  async claim(limit: number, start: number): Promise<LeasedTask[]> {
    const waiting = this.#completer.take();
    let leased: LeasedTask[];
    try {
      const result = await this.#store.taskRecordAndClaim(waiting.progress, {
        workerId: this.#workerId,
        limit,
        start,
        leaseMs: this.#leaseMs,
        now: this.#clock.now(),
        strategy: this.#strategy,
        types: this.#types,
        queues: this.#queues,
      });
      waiting.settle(result);
      leased = result.leased;
    } catch (error) {
      waiting.settle(error);
      throw error;
    }
    for (const { payloadLength } of leased) {
      if (payloadLength === undefined) continue;
      this.#averagePayloadLength = movingAverage(this.#averagePayloadLength, payloadLength);
    }
    this.#events.claimed(leased);
    return leased;
  }

  /** How many tasks to claim beyond the free slots: about {@link PREFETCH_HORIZON_MS} of work. */
  prefetchTarget(): number {
    if (this.#prefetch === 0 || !(this.#averageRunMs >= 0)) return 0;
    const perSlot = PREFETCH_HORIZON_MS / Math.max(this.#averageRunMs, 0.001);
    const fitting = PREFETCH_PAYLOAD_LENGTH / Math.max(this.#averagePayloadLength || 0, 1);
    return Math.floor(Math.min(this.#prefetch, perSlot * this.#concurrency, fitting));
  }

  /** Counts how long a handler took, for {@link prefetchTarget}. */
  recordRunTime(ms: number): void {
    this.#averageRunMs = movingAverage(this.#averageRunMs, ms);
  }

  /**
   * Whether a claimed-ahead task may start now: not past the end of the rate window its claim was counted
   * in (a start then would be one more in a later window), unless it is counted again in the window it
   * would start in, as far as the queue's rate limit leaves room there; nor when its queue has been paused
   * since the claim, as this worker knows (at once after a pause made in this process, within a second of
   * one made in another). Answered at once (not as a promise) when the store knows the paused queues and
   * the task is within its window. The pause is asked first and the window last, after anything the answer
   * waits for: a window may end while the paused queues are read (a round trip once a second), and a task
   * found in time before that read would start in the next window without being counted there.
   */
  mayStart(leased: LeasedTask): boolean | Promise<boolean> {
    const notPaused = this.#notPaused(leased);
    if (notPaused instanceof Promise) return notPaused.then((ok) => ok && this.#inWindow(leased));
    return notPaused && this.#inWindow(leased);
  }

  /** Whether the task may start in a rate window that counted it: its claim's, or the current one. */
  #inWindow(leased: LeasedTask): boolean | Promise<boolean> {
    return isLate(leased, this.#clock.now()) ? this.#mayStartLate(leased) : true;
  }

  /** Whether the task's queue is not paused, as this worker last knows; at once when the store knows. */
  #notPaused(leased: LeasedTask): boolean | Promise<boolean> {
    const paused = this.#store.queuePausedNames();
    if (paused instanceof Promise) {
      return paused.then((names) => (this.#paused = names, !names.has(leased.task.queue)));
    }
    this.#paused = paused;
    return !paused.has(leased.task.queue);
  }

  /** {@link mayStart} for a task past its window: counted again, as one of those being decided. */
  async #mayStartLate(leased: LeasedTask): Promise<boolean> {
    this.#deciding.add(leased);
    try {
      return await this.#countAgain(leased);
    } finally {
      this.#deciding.delete(leased);
    }
  }

  /**
   * Counts `leased`, whose window ended before it could start, again in its queue's current window, with
   * every other task of its queue held here in the same case (in the buffer, or being started beside it):
   * one write at the end of a window, not one a task, and no task handed back and claimed again while the
   * window has room. Those the window has no room for keep their deadline, and go back to the queue
   * unstarted ({@link takeUnstartable}). One count at a time: a task waits for the count under way, which
   * may have counted it. A count whose answer comes after the window it counted in ended is made once
   * more, in the window then (else every task it counted would go back). True when `leased` may start.
   */
  async #countAgain(leased: LeasedTask): Promise<boolean> {
    // The tasks being started beside this one reach mayStart before this resumes, and join its count.
    await null;
    for (let counts = 0;; counts++) {
      while (this.#counting !== null) await this.#counting;
      const now = this.#clock.now();
      if (!isLate(leased, now)) return true;
      if (counts === 2 || !await this.#count(leased, now)) return false;
    }
  }

  /** One count of {@link countAgain}: whether it counted `leased` (its window had room, and it was made). */
  async #count(leased: LeasedTask, now: number): Promise<boolean> {
    const { queue } = leased.task;
    const late = [...new Set([leased, ...this.#deciding, ...this.#buffer])]
      .filter((item) => item.task.queue === queue && isLate(item, now));
    const counting = this.#store.queueCountAgain(queue, late.length, now).then(({ counted, startBy }) => {
      for (const item of late.slice(0, counted)) {
        if (startBy === null) delete item.startBy;
        else item.startBy = startBy;
      }
      // `leased` comes first.
      return counted > 0;
    });
    this.#counting = counting.then(() => {}, () => {}).finally(() => {
      this.#counting = null;
    });
    try {
      return await counting;
    } catch (error) {
      // Not counted: it goes back to the queue, as a late task did before it could be counted again.
      this.#events.error(error);
      return false;
    }
  }

  /**
   * Takes from the buffer every task that may not start either (see {@link mayStart}), as last known, so
   * that they go back together: at the end of a rate window, hundreds may be waiting.
   */
  takeUnstartable(): LeasedTask[] {
    const now = this.#clock.now();
    const unstartable = (leased: LeasedTask) => isLate(leased, now) || this.#paused.has(leased.task.queue);
    const taken = this.#buffer.filter(unstartable);
    if (taken.length > 0) this.#buffer = this.#buffer.filter((leased) => !unstartable(leased));
    return taken;
  }

  /** How many tasks this worker could claim now, and how many of its types are running anywhere. */
  pending(now: number): Promise<{ runnable: number; running: number }> {
    return this.#store.taskPending(now, this.#types, this.#queues);
  }

  /** The tasks of this worker's types that wait for a later time, and when the soonest is due. */
  waiting(now: number): Promise<WaitingTasks> {
    return this.#store.taskWaiting(now, this.#types, this.#queues);
  }
}

/** Whether a task claimed ahead is past the end of the rate window its claim was counted in. */
function isLate(leased: LeasedTask, now: number): boolean {
  return leased.startBy !== undefined && now >= leased.startBy;
}

/** An exponential moving average that starts at the first value. */
function movingAverage(average: number, value: number): number {
  return Number.isNaN(average) ? value : average * 0.9 + value * 0.1;
}
