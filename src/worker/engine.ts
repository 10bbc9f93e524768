/**
 * The worker engine: claims tasks, runs their handlers under a lease, and records outcomes fenced by that
 * lease. `WorkerEngine` checks its options and calls, and wires the parts that do the work:
 *
 * - loop.ts: the run loop and its idle policy
 * - fetcher.ts: claims, and the buffer of tasks claimed ahead
 * - dispatcher.ts: free slots, and each task's way from its start to its recorded outcome
 * - executor.ts: one attempt (handler, payload validation, time limit, context); outcome.ts decides what
 *   it becomes
 * - completer.ts: grouped writes of starts and outcomes
 * - lease_keeper.ts: heartbeats, lost leases, this worker's row
 * - reaper.ts: expired leases of workers that died; leader.ts: which worker of the fleet reaps
 * - scheduler.ts: the registry's schedules, fired beside the loop while it runs
 * - shutdown.ts: stop, grace period, hand-back
 * - wake.ts, events.ts, state.ts, options.ts: wake-ups, what is reported, what the parts share, options
 * - lanes.ts: an engine per queue, when each queue has a concurrency of its own
 *
 * @module
 */
import { abortSignalOption, duration, wholeNumber } from "../checks.ts";
import { invalidType } from "../errors.ts";
import type { TaskHandler } from "../handler.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import { isQueueDatabase, storeOf } from "../store/store_of.ts";
import { Completer } from "./completer.ts";
import { Dispatcher } from "./dispatcher.ts";
import { type RunSummary, WorkerEvents } from "./events.ts";
import { Executor, type Running } from "./executor.ts";
import { Fetcher } from "./fetcher.ts";
import { Lanes } from "./lanes.ts";
import { Leadership } from "./leader.ts";
import { LeaseKeeper } from "./lease_keeper.ts";
import { Loop, type RunLoopOptions } from "./loop.ts";
import { resolveWorkerOptions, type WorkerEngineOptions } from "./options.ts";
import { Reaper } from "./reaper.ts";
import { Scheduler } from "./scheduler.ts";
import { Shutdown } from "./shutdown.ts";
import { RunState } from "./state.ts";
import { Waker } from "./wake.ts";

export type { RunSummary, WorkerEvent } from "./events.ts";
export type { RunLoopOptions } from "./loop.ts";
export type { WorkerEngineOptions } from "./options.ts";

/**
 * Claims and runs tasks.
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const registry = new TaskHandlerRegistry();
 * registry.registerHandler("hello", (task) => console.log("hello", task.payload));
 * await new Queue(db).enqueue("hello", { name: "Ada" });
 * const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
 * await worker.runLoop({ untilEmpty: true });
 * await db.close();
 * ```
 */
export class WorkerEngine {
  readonly workerId: string;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #state = new RunState();
  readonly #events: WorkerEvents;
  readonly #waker: Waker;
  readonly #fetcher: Fetcher;
  readonly #dispatcher: Dispatcher;
  readonly #reaper: Reaper;
  readonly #shutdown: Shutdown;
  readonly #loop: Loop;
  readonly #scheduler: Scheduler;
  /** The loop under way, if any. */
  #looping: Promise<RunSummary> | null = null;
  /** Measures the clock's offset from a database server's before the first time it is read; see clockFor. */
  readonly #syncClock: () => Promise<void>;
  /** A lane per queue, when `queues` gave each its own concurrency: the engine runs them instead. */
  readonly #lanes: Lanes | undefined;

  /** @throws {TypeError | RangeError} at once, naming the first option that is wrong and what it must be */
  constructor(options: WorkerEngineOptions) {
    const { db } = options;
    if (!isQueueDatabase(db)) throw invalidType("WorkerEngine needs a QueueDatabase as `db`.");
    const checked = resolveWorkerOptions(options);
    // On a database server, leases and due times are compared on the server's clock.
    const resolved = { ...checked, clock: db.clockFor(checked.clock) };
    this.#syncClock = () => db.syncClock(resolved.clock);
    this.workerId = resolved.workerId;
    this.#registry = resolved.registry;
    this.#lanes = resolved.lanes && new Lanes(
      [...resolved.lanes].map(([queue, concurrency]) =>
        new WorkerEngine({
          ...options,
          workerId: `${resolved.workerId}/${queue}`,
          queues: [queue],
          concurrency,
        })
      ),
    );
    const store = storeOf(db);
    const state = this.#state;
    const events = this.#events = new WorkerEvents(resolved.onEvent, () => db.notifyTasksFinished());
    const waker = this.#waker = new Waker(state);
    const completer = new Completer(store, resolved.clock);
    const fetcher = this.#fetcher = new Fetcher(store, completer, events, resolved);
    const executor = new Executor(db, store, resolved);
    // The attempts under way: the dispatcher keeps them, the lease keeper renews their leases.
    const running = new Map<number, Running>();
    const keeper = new LeaseKeeper(store, state, running, fetcher, events, resolved);
    const dispatcher = this.#dispatcher = new Dispatcher(
      running,
      store,
      { state, fetcher, executor, completer, keeper, waker, events },
      resolved,
    );
    const leadership = new Leadership(store, resolved.clock, {
      workerId: resolved.workerId,
      ttlMs: resolved.leaderLeaseMs,
    });
    const reaper = this.#reaper = new Reaper(store, resolved.clock, leadership, {
      intervalMs: resolved.reapIntervalMs,
      graceMs: resolved.reapGraceMs,
    });
    const shutdown = this.#shutdown = new Shutdown(
      store,
      { state, waker, fetcher, dispatcher, completer, keeper, events },
      resolved,
    );
    this.#scheduler = new Scheduler({
      store,
      registry: resolved.registry,
      clock: resolved.clock,
      syncClock: this.#syncClock,
      leadership: new Leadership(store, resolved.clock, {
        workerId: resolved.workerId,
        ttlMs: resolved.leaderLeaseMs,
        name: "schedules",
      }),
      onError: (error) => events.error(error),
      onFired: () => db.notifyTasksAvailable(),
    });
    this.#loop = new Loop(
      db,
      store,
      { state, waker, fetcher, dispatcher, keeper, reaper, leadership, shutdown, events },
      resolved,
    );
  }

  /** Tasks this engine is running right now. */
  get runningCount(): number {
    if (this.#lanes) return this.#lanes.runningCount;
    return this.#dispatcher.running.size;
  }

  /**
   * Claims one task and runs it to its recorded outcome. Returns true when a task was claimed, even if it
   * then failed; false when none was runnable.
   *
   * @param taskHandler used instead of the registry for this call
   */
  async claimAndProcess(taskHandler?: TaskHandler): Promise<boolean> {
    this.#assertCanRoute(taskHandler);
    if (this.#lanes) return this.#lanes.claimAndProcess(taskHandler);
    await this.#syncClock();
    await this.#waker.yieldIfBusy();
    await this.#reaper.reapIfDue();
    const [leased] = await this.#fetcher.claim(1, 1);
    if (!leased) return false;
    await this.#dispatcher.run(leased, taskHandler);
    return true;
  }

  /**
   * Claims and runs tasks until stopped, until `maxIterations` claim attempts, or (with `untilEmpty`) until
   * nothing is runnable or running. Resolves once every handler it started has finished and been recorded.
   *
   * @throws {TypeError | RangeError} before starting, for an option that is wrong (a `signal` that is not an
   *   AbortSignal, a `maxIterations` that is not a whole number) or when a loop is running already
   */
  runLoop(options: RunLoopOptions = {}): Promise<RunSummary> {
    this.#assertCanRoute(options.taskHandler);
    if (this.#looping) throw new Error(`Worker '${this.workerId}' is already running a loop.`);
    const { maxIterations, signal } = options;
    if (maxIterations !== undefined) wholeNumber("maxIterations", maxIterations, 0);
    if (signal !== undefined) abortSignalOption("signal", signal);
    if (this.#lanes) {
      const lanes = this.#lanes.runLoop(options).finally(() => {
        this.#looping = null;
      });
      this.#looping = lanes;
      return lanes;
    }
    this.#state.reset();
    this.#shutdown.reset();
    this.#events.reset();
    this.#state.inLoop = true;
    this.#scheduler.start();
    const loop = this.#loop.run(options, () => this.stop()).finally(async () => {
      await this.#scheduler.stop();
      this.#state.inLoop = false;
      this.#looping = null;
    });
    this.#looping = loop;
    return loop;
  }

  /**
   * Stops gracefully: no new claims; tasks claimed ahead go straight back to the queue; running handlers
   * get `graceMs` to finish, after which their signals abort and their tasks go straight back too, with
   * the attempt not counted. Resolves once every task is recorded or handed back and the loop has ended.
   * A hand-back that cannot be written (the database stays locked past its busy timeout, say) ends in a
   * DatabaseError saying that those tasks go back only when their leases expire: `runLoop` rejects with it
   * (and this promise still resolves, once the loop has ended); without a loop, this promise rejects with
   * it. A second call with `graceMs: 0` (a second Ctrl-C, say) ends the grace period at once.
   *
   * @param options.graceMs how long running handlers may take to finish @default the worker's shutdownGraceMs
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    const graceMs = options.graceMs === undefined
      ? undefined
      : duration("graceMs", options.graceMs, 0, { infinite: true });
    if (this.#lanes) return this.#lanes.stop(graceMs === undefined ? {} : { graceMs });
    return this.#shutdown.stop(graceMs, this.#looping);
  }

  #assertCanRoute(taskHandler: TaskHandler | undefined): void {
    if (taskHandler !== undefined && typeof taskHandler !== "function") {
      throw invalidType("taskHandler must be a function.");
    }
    if (!taskHandler && !this.#registry) {
      throw invalidType(
        `Worker '${this.workerId}' has no handlerRegistry and no taskHandler was given: ` +
          `pass one of them so that tasks can be routed.`,
      );
    }
  }
}
