/**
 * The run loop and its idle policy: while slots are free, claim (with tasks claimed ahead when handlers are
 * quick), start what was claimed, and when nothing is runnable sleep until woken or until the next poll. An
 * idle worker woken by another process's commit looks before it claims (unless the store said that the
 * commit queued tasks), and an `untilEmpty` loop ends once nothing is runnable or running. However it ends,
 * it hands back what it holds before it resolves.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { QueueDatabase } from "../database.ts";
import type { TaskHandler } from "../handler.ts";
import type { LeasedTask, Store } from "../store/store.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { RunSummary, WorkerEvents } from "./events.ts";
import type { Fetcher } from "./fetcher.ts";
import type { Leadership } from "./leader.ts";
import type { LeaseKeeper } from "./lease_keeper.ts";
import type { ResolvedWorkerOptions } from "./options.ts";
import type { Reaper } from "./reaper.ts";
import type { Shutdown } from "./shutdown.ts";
import type { RunState } from "./state.ts";
import type { Waker } from "./wake.ts";

/** Options of `WorkerEngine.runLoop`. */
export interface RunLoopOptions {
  /** Used for every task instead of the registry. */
  taskHandler?: TaskHandler | undefined;
  /**
   * Stop after this many claim attempts; an attempt that finds nothing counts. Each attempt claims at most
   * the free slots (no claiming ahead), so that the count of tasks run is predictable.
   */
  maxIterations?: number | undefined;
  /** Stop once no task is runnable now and none is running (tasks scheduled for later do not count). */
  untilEmpty?: boolean | undefined;
  /** Aborting it stops the loop gracefully, as `stop()` does. */
  signal?: AbortSignal | undefined;
}

/** The parts a loop drives. */
export interface LoopParts {
  state: RunState;
  waker: Waker;
  fetcher: Fetcher;
  dispatcher: Dispatcher;
  keeper: LeaseKeeper;
  reaper: Reaper;
  leadership: Leadership;
  shutdown: Shutdown;
  events: WorkerEvents;
}

type LoopStore = Pick<Store, "watchCommits" | "exactCommitTopics" | "workerDelete">;

export class Loop {
  readonly #db: QueueDatabase;
  readonly #store: LoopStore;
  readonly #parts: LoopParts;
  readonly #clock: Clock;
  readonly #workerId: string;
  readonly #concurrency: number;
  readonly #pollIntervalMs: number;

  /** @param db whose tasks added in this process wake the loop */
  constructor(db: QueueDatabase, store: LoopStore, parts: LoopParts, options: ResolvedWorkerOptions) {
    this.#db = db;
    this.#store = store;
    this.#parts = parts;
    this.#clock = options.clock;
    this.#workerId = options.workerId;
    this.#concurrency = options.concurrency;
    this.#pollIntervalMs = options.pollIntervalMs;
  }

  /**
   * Runs until stopped, after `maxIterations` claim attempts, or (`untilEmpty`) once nothing is runnable
   * or running; then hands back what it holds and deletes this worker's row. Throws the error that ended it.
   *
   * @param stop what an abort of `signal` calls
   */
  async run(
    { taskHandler, maxIterations, untilEmpty, signal }: RunLoopOptions,
    stop: () => Promise<void>,
  ): Promise<RunSummary> {
    const { state, waker, fetcher, dispatcher, keeper, reaper, leadership, shutdown, events } = this.#parts;
    const onAbort = () => void stop().catch((error) => events.error(error));
    if (signal?.aborted) return { ...events.summary };
    signal?.addEventListener("abort", onAbort, { once: true });
    let unsubscribe = () => {};
    try {
      await this.#db.syncClock(this.#clock);
      state.startedAt = this.#clock.now();
      await keeper.heartbeat();
      // After a first write, so that the file's write-ahead log exists to be watched. A store without
      // commit notifications leaves the loop to poll, as it does anyway.
      const exact = this.#store.exactCommitTopics === true;
      const unwatch = this.#store.watchCommits?.(
        "tasks",
        exact ? () => waker.tasksQueued() : () => waker.wakeFromEventLoop(),
      ) ?? (() => {});
      const unlisten = this.#db.onTasksAvailable(() => waker.wake());
      unsubscribe = () => {
        unwatch();
        unlisten();
      };
      keeper.start();
      dispatcher.loopHandler = taskHandler;
      let iterations = 0;
      let idle = false;
      /** The last look found runnable tasks that the claim before it did not get. */
      let heldBack = false;
      while (!state.stopping && (maxIterations === undefined || iterations < maxIterations)) {
        dispatcher.startBuffered();
        const free = this.#concurrency - dispatcher.running.size;
        if (free <= 0 || fetcher.buffered.length > 0) {
          await waker.sleep(Infinity);
          continue;
        }
        iterations++;
        const queued = waker.looking();
        // Outcomes of the tasks just run go with the claim, in its transaction, instead of just before it.
        const claimMade = fetcher.claimComing();
        let claimed: LeasedTask[];
        try {
          await waker.yieldIfBusy();
          await reaper.reapIfDue();
          const ahead = maxIterations === undefined ? fetcher.prefetchTarget() : 0;
          // An idle worker woken by any commit first looks without writing: a claim takes the write lock,
          // which would slow the workers that are busy. Told that tasks were queued, it claims at once: the
          // look would say no more, and cost a round trip before every task an idle worker starts.
          const worthClaiming: boolean = !idle || queued ||
            (await fetcher.pending(this.#clock.now())).runnable > 0;
          claimed = worthClaiming ? await fetcher.claim(free + ahead, free) : [];
        } finally {
          claimMade();
        }
        idle = claimed.length === 0;
        fetcher.hold(claimed);
        dispatcher.startBuffered();
        if (claimed.length > 0) {
          heldBack = false;
          continue;
        }
        if (untilEmpty) {
          if (dispatcher.running.size > 0) {
            await waker.sleep(Infinity);
            continue;
          }
          const now = this.#clock.now();
          const pending = await fetcher.pending(now);
          if (pending.runnable === 0 && pending.running === 0) {
            events.summary.waiting = await fetcher.waiting(now);
            break;
          }
          // Runnable yet not claimed: another worker took it first (claim again at once), or a queue's
          // limits hold it back (then wait for the next poll rather than claim again and again).
          if (pending.runnable > 0 && !heldBack) {
            heldBack = true;
            continue;
          }
        }
        await waker.sleep(this.#pollIntervalMs);
      }
    } catch (error) {
      state.fatal ??= error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      unsubscribe();
      // The loop ends only once every task it claimed is recorded or handed back, so that whoever closes
      // the database after it closes nothing under a write still to come.
      await shutdown.handBack().catch((error) => {
        state.fatal ??= error;
        events.error(error);
      });
      dispatcher.loopHandler = undefined;
      // A leader that stops lets another worker take over its maintenance at once.
      await leadership.resign().catch((error) => events.error(error));
      await this.#store.workerDelete(this.#workerId).catch((error) => events.error(error));
    }
    if (state.fatal !== undefined) throw state.fatal;
    return { ...events.summary };
  }
}
