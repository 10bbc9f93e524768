/**
 * Shutdown: `stop()` and what a loop does as it ends. Tasks claimed ahead go straight back to the queue;
 * running handlers get a grace period, after which their signals abort and their tasks go back too, the
 * attempt not counted; then every write still under way is waited for.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { DatabaseError, LeaseLostError } from "../errors.ts";
import type { Fence, Store } from "../store/store.ts";
import type { Task } from "../task.ts";
import { clearLongTimeout, type LongTimeout, longTimeout } from "../timers.ts";
import type { Completer } from "./completer.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { WorkerEvents } from "./events.ts";
import { lose } from "./executor.ts";
import type { Fetcher } from "./fetcher.ts";
import type { LeaseKeeper } from "./lease_keeper.ts";
import type { ResolvedWorkerOptions } from "./options.ts";
import type { RunState } from "./state.ts";
import type { Waker } from "./wake.ts";

/** The parts a shutdown stops, and empties. */
export interface ShutdownParts {
  state: RunState;
  waker: Waker;
  fetcher: Fetcher;
  dispatcher: Dispatcher;
  completer: Completer;
  keeper: LeaseKeeper;
  events: WorkerEvents;
}

export class Shutdown {
  readonly #store: Pick<Store, "taskReleaseMany">;
  readonly #parts: ShutdownParts;
  readonly #clock: Clock;
  readonly #workerId: string;
  readonly #leaseMs: number;
  readonly #defaultGraceMs: number;
  #stopped: Promise<void> | null = null;
  /** Resolves when running handlers have had their time to finish after stop(); until then, never. */
  #graceOver = deferredVoid();
  #graceTimer: LongTimeout | undefined = undefined;

  constructor(store: Pick<Store, "taskReleaseMany">, parts: ShutdownParts, options: ResolvedWorkerOptions) {
    this.#store = store;
    this.#parts = parts;
    this.#clock = options.clock;
    this.#workerId = options.workerId;
    this.#leaseMs = options.leaseMs;
    this.#defaultGraceMs = options.shutdownGraceMs;
  }

  /** Readies a new loop's stop. */
  reset(): void {
    this.#stopped = null;
    this.#graceOver = deferredVoid();
  }

  /**
   * Stops: no new claims, and running handlers get `graceMs` (by default the worker's `shutdownGraceMs`)
   * before they are handed back. Resolves once `loop` has ended, or without one, once {@link handBack}
   * has. A second call only shortens the grace period, to none with `graceMs` 0.
   */
  stop(graceMs: number | undefined, loop: Promise<unknown> | null): Promise<void> {
    graceMs ??= this.#defaultGraceMs;
    this.#parts.state.stopping = true;
    this.#parts.waker.wake();
    if (graceMs === 0) this.#endGrace();
    if (this.#stopped) return this.#stopped;
    if (graceMs !== Infinity) this.#graceTimer = longTimeout(() => this.#endGrace(), graceMs);
    // The loop hands everything back as it ends; without a loop, claimAndProcess calls may be running.
    const stopped = loop ? loop.then(() => {}, () => {}) : this.handBack();
    return this.#stopped = stopped;
  }

  #endGrace(): void {
    clearLongTimeout(this.#graceTimer);
    this.#graceOver.resolve();
  }

  /**
   * Hands back the tasks claimed ahead, waits for running handlers until the grace period ends (never, when
   * no stop asked for one), hands back those still running, and waits for every write to finish. Throws
   * when a hand-back could not be recorded: those tasks go back once their leases expire.
   */
  async handBack(): Promise<void> {
    const { dispatcher, completer, keeper } = this.#parts;
    let failure: unknown = undefined;
    await this.#releaseBuffered().catch((error) => (failure ??= error));
    if (dispatcher.busy) await Promise.race([dispatcher.idle(), this.#graceOver.promise]);
    clearLongTimeout(this.#graceTimer);
    await this.#releaseRunning().catch((error) => (failure ??= error));
    await dispatcher.idle();
    completer.writeDeferred();
    await completer.flushing;
    keeper.stop();
    await keeper.beating;
    if (failure !== undefined) throw failure;
  }

  /** Hands claimed-ahead tasks back; those that never started keep their attempts. */
  async #releaseBuffered(): Promise<void> {
    const buffered = this.#parts.fetcher.takeBuffered();
    if (buffered.length === 0) return;
    await this.#release(
      buffered.map(({ task, leaseToken }) => ({ task, fence: { id: task.id, leaseToken } })),
    );
  }

  /** Hands back the tasks whose handlers are still running, aborting their signals. */
  async #releaseRunning(): Promise<void> {
    const unfinished = [...this.#parts.dispatcher.running.values()].filter((running) => !running.lost);
    for (const running of unfinished) lose(running, new LeaseLostError(running.task.id, "released"));
    await this.#release(unfinished);
  }

  async #release(tasks: readonly { task: Task; fence: Fence }[]): Promise<void> {
    if (tasks.length === 0) return;
    let released: Set<number>;
    try {
      released = await this.#store.taskReleaseMany(tasks.map(({ fence }) => fence), this.#clock.now());
    } catch (error) {
      const count = `${tasks.length} task${tasks.length === 1 ? "" : "s"}`;
      throw new DatabaseError(
        `Worker '${this.#workerId}' could not hand ${count} back to the queue ` +
          `(${(error as Error)?.message ?? String(error)}); they go back by themselves when their leases ` +
          `expire, within ${this.#leaseMs} ms.`,
        { cause: error },
      );
    }
    for (const { task } of tasks) if (released.has(task.id)) this.#parts.events.released(task);
  }
}

/** A promise and the function that resolves it. */
function deferredVoid(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
