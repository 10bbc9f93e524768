/**
 * The completer: writes the starts and outcomes of many tasks in one statement, and tells each waiter
 * whether its lease still held. Quick handlers finish hundreds at a time; one write records them all, and
 * the next claim takes what is still waiting into its own transaction. While the loop is on its way to a
 * claim, the write waits for it: the claim then records the outcomes in its own round trip and commit,
 * rather than a write of their own just before. A start nobody waits for does not call for a write of its
 * own at once: it rides with the next outcome or claim, or is written after {@link START_DEFER_MS} when
 * neither comes (a worker that dies first gives the task back uncharged, which a claimed-ahead task's start
 * already allows; see the dispatcher's recordStart).
 *
 * @module
 */
import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import type { Clock } from "../clock.ts";
import type { Finish, Progress, Recorded, Start, Store } from "../store/store.ts";

/**
 * How long a start may wait for an outcome or a claim to ride with. Quick handlers finish long before it,
 * so a drain writes no start on its own; a long handler's start is durable within this.
 */
export const START_DEFER_MS = 100;

/** An outcome waiting for the next grouped write, and whoever waits for it. */
interface PendingFinish {
  finish: Finish;
  resolve: (held: boolean) => void;
  reject: (error: unknown) => void;
}

/** The start of a task claimed ahead, waiting for the next grouped write; some wait for it to be written. */
interface PendingStart {
  start: Start;
  resolve?: (held: boolean) => void;
  reject?: (error: unknown) => void;
}

/** Starts and outcomes taken for one write, and how to tell their waiters what it did. */
export class PendingWrite {
  readonly progress: Progress;
  readonly #starts: PendingStart[];
  readonly #finishes: PendingFinish[];

  constructor(starts: PendingStart[], finishes: PendingFinish[]) {
    this.#starts = starts;
    this.#finishes = finishes;
    this.progress = {
      starts: starts.map((item) => item.start),
      finishes: finishes.map((item) => item.finish),
    };
  }

  /** Tells each waiter whether its fence held, or, when the write failed, rejects them all with its error. */
  settle(outcome: Recorded | unknown): void {
    const recorded = outcome as Recorded;
    const failed = !(recorded?.finished instanceof Set);
    for (const item of this.#starts) {
      if (failed) item.reject?.(outcome);
      else item.resolve?.(recorded.started.has(item.start.id));
    }
    for (const item of this.#finishes) {
      if (failed) item.reject(outcome);
      else item.resolve(recorded.finished.has(item.finish.id));
    }
  }
}

export class Completer {
  readonly #store: Pick<Store, "taskRecord">;
  readonly #clock: Clock;
  /** By lease token: a start nobody waits for leaves when its task's outcome comes (see {@link finish}). */
  #starts = new Map<string, PendingStart>();
  #finishes: PendingFinish[] = [];
  #flushing: Promise<void> | null = null;
  /** Set while the loop is on its way to a claim; resolves when it has claimed (or given up). */
  #claimComing: Promise<void> | null = null;
  /** Writes the starts nobody waits for, should no outcome or claim take them first. */
  #deferredStarts: ReturnType<typeof setTimeout> | null = null;

  constructor(store: Pick<Store, "taskRecord">, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** The write under way, if any: resolves once nothing is left to write. */
  get flushing(): Promise<void> | null {
    return this.#flushing;
  }

  /** Queues the start of a task claimed ahead for the next grouped write, without waiting for it. */
  start(start: Start): void {
    this.#starts.set(start.leaseToken, { start });
    if (!this.#flushing) this.#deferStarts();
  }

  /** Writes the starts waiting to ride with something else, now (the worker is stopping, or time is up). */
  writeDeferred(): void {
    this.#cancelDeferred();
    if (this.#starts.size > 0) this.#flushing ??= this.#flush(true);
  }

  /** Queues the start of a task claimed ahead; resolves once written, with whether the lease still held. */
  startAndWait(start: Start): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#starts.set(start.leaseToken, { start, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /**
   * Queues an outcome for the next grouped write; resolves with whether the lease still held. The task's
   * start, when it still waits to be written and nobody waits for it, goes with it: the outcome counts the
   * attempt of a task whose start was not recorded (a drain's write then carries no start at all).
   */
  finish(finish: Finish): Promise<boolean> {
    if (this.#starts.get(finish.leaseToken)?.resolve === undefined) this.#starts.delete(finish.leaseToken);
    return new Promise((resolve, reject) => {
      this.#finishes.push({ finish, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /**
   * The loop is about to claim, and the claim takes what waits to be written: until the returned function
   * is called (once the claim is made, or not made after all), the grouped write waits for it.
   */
  holdForClaim(): () => void {
    let release!: () => void;
    const claimed = new Promise<void>((resolve) => (release = resolve));
    this.#claimComing = claimed;
    return () => {
      if (this.#claimComing === claimed) this.#claimComing = null;
      release();
    };
  }

  /** Takes the starts and outcomes waiting to be written, for a write made elsewhere (a claim's). */
  take(): PendingWrite {
    this.#cancelDeferred();
    const write = new PendingWrite([...this.#starts.values()], this.#finishes);
    this.#starts = new Map();
    this.#finishes = [];
    return write;
  }

  #deferStarts(): void {
    if (this.#deferredStarts) return;
    this.#deferredStarts = setTimeout(() => this.writeDeferred(), START_DEFER_MS);
    // A pending start never keeps a process alive: shutdown writes it (writeDeferred) or gives it back.
    this.#deferredStarts.unref?.();
  }

  #cancelDeferred(): void {
    if (this.#deferredStarts === null) return;
    clearTimeout(this.#deferredStarts);
    this.#deferredStarts = null;
  }

  /** Whether anything waiting calls for a write now: an outcome, a start someone waits for, or `all`. */
  #due(all: boolean): boolean {
    if (this.#finishes.length > 0 || (all && this.#starts.size > 0)) return true;
    for (const item of this.#starts.values()) if (item.resolve) return true;
    return false;
  }

  async #flush(all = false): Promise<void> {
    // Let every handler that is starting or finishing in this turn of the event loop join the write: quick
    // handlers finish hundreds at a time, and one statement records them all.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#claimComing) await this.#claimComing;
    while (this.#due(all)) {
      const write = this.take();
      try {
        write.settle(await this.#store.taskRecord(write.progress, this.#clock.now()));
      } catch (error) {
        write.settle(error);
      }
    }
    this.#flushing = null;
    if (this.#starts.size > 0) this.#deferStarts();
  }
}
