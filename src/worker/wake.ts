/**
 * Wake-ups: how an idle loop sleeps until there may be work (a new task in this process or a commit by
 * another, a finished handler, `stop()`), and how a busy loop lets the event loop turn now and then.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { clearLongTimeout, longTimeout } from "../timers.ts";
import type { RunState } from "./state.ts";

/** A busy loop lets the event loop turn at least this often. */
const YIELD_EVERY_MS = 10;

export class Waker {
  readonly #state: RunState;
  /** Ends the current sleep, if any. */
  #wake: (() => void) | null = null;
  /**
   * A wake-up that came while the loop was not asleep (between its claim and its sleep, say, while an
   * enqueue in this process committed synchronously): its next sleep returns at once, so it is not lost.
   */
  #woken = false;
  /** Set by wake-ups that come from the event loop itself (timers, file events). */
  #turned = false;
  /** Set by a store's word that tasks were queued since the loop last looked for work. */
  #queued = false;
  #lastYield = 0;

  constructor(state: RunState) {
    this.#state = state;
  }

  /** Waits `ms` (Infinity: until woken) or until woken by new tasks, a finished handler, or stop(). */
  sleep(ms: number): Promise<void> {
    if (this.#state.stopping) return Promise.resolve();
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms)
        ? longTimeout(() => {
          this.#turned = true;
          done();
        }, ms)
        : undefined;
      const done = () => {
        clearLongTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      this.#wake = done;
    });
  }

  /** Ends the current sleep: there may be work to do. */
  wake(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /**
   * The loop is about to look for work: what it finds answers every wake-up so far. Returns whether one of
   * them was {@link tasksQueued}.
   */
  looking(): boolean {
    this.#woken = false;
    const queued = this.#queued;
    this.#queued = false;
    return queued;
  }

  /** {@link wake}, from a callback of the event loop itself (a file event): no need to yield before claiming. */
  wakeFromEventLoop(): void {
    this.#turned = true;
    this.wake();
  }

  /**
   * {@link wakeFromEventLoop}, for a notification that means tasks were queued, and nothing else (see
   * `Store.exactCommitTopics`): reason enough to claim without looking first.
   */
  tasksQueued(): void {
    this.#queued = true;
    this.wakeFromEventLoop();
  }

  /**
   * The embedded driver answers synchronously, so a busy loop would otherwise run on microtasks alone and
   * starve timers (heartbeats, grace periods), signal handlers and the driver's own finalizers, which free
   * native statements: every few milliseconds, let the event loop turn.
   */
  async yieldIfBusy(): Promise<void> {
    const now = performance.now();
    if (this.#turned) {
      // Woken by a timer or a file event: the event loop has just turned, so a task that was just added
      // is claimed without the extra delay of a yield.
      this.#turned = false;
      this.#lastYield = now;
      return;
    }
    if (now - this.#lastYield < YIELD_EVERY_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.#lastYield = performance.now();
  }
}
