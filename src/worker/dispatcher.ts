/**
 * The dispatcher: starts claimed tasks in free slots and carries each from its start to its recorded
 * outcome: the start written (grouped), one attempt run by the executor, the outcome written (grouped), and
 * what happened reported. It keeps the attempts under way, one per slot.
 *
 * @module
 */
import { type Clock, elapsedOn } from "../clock.ts";
import type { TaskHandler } from "../handler.ts";
import type { LeasedTask, Start, Store } from "../store/store.ts";
import { TaskAbort } from "../task_abort.ts";
import type { Completer } from "./completer.ts";
import type { WorkerEvents } from "./events.ts";
import { type Executor, lossFrom, type Running } from "./executor.ts";
import type { Fetcher } from "./fetcher.ts";
import type { LeaseKeeper } from "./lease_keeper.ts";
import type { RunState } from "./state.ts";
import type { Waker } from "./wake.ts";

/** The parts a dispatcher hands each task to. */
export interface DispatcherParts {
  state: RunState;
  fetcher: Fetcher;
  executor: Executor;
  completer: Completer;
  keeper: LeaseKeeper;
  waker: Waker;
  events: WorkerEvents;
}

export class Dispatcher {
  /** The handler a loop runs every task with, instead of the registry's. */
  loopHandler: TaskHandler | undefined = undefined;
  readonly #running: Map<number, Running>;
  /** Tasks on their way to their recorded outcome, and who waits for there to be none. */
  #inFlight = 0;
  #whenIdle: (() => void)[] = [];
  readonly #store: Pick<Store, "taskGet" | "taskReleaseMany">;
  readonly #clock: Clock;
  readonly #concurrency: number;
  readonly #state: RunState;
  readonly #fetcher: Fetcher;
  readonly #executor: Executor;
  readonly #completer: Completer;
  readonly #keeper: LeaseKeeper;
  readonly #waker: Waker;
  readonly #events: WorkerEvents;

  /** @param running where the attempts under way are kept: the lease keeper renews their leases */
  constructor(
    running: Map<number, Running>,
    store: Pick<Store, "taskGet" | "taskReleaseMany">,
    parts: DispatcherParts,
    options: { clock: Clock; concurrency: number },
  ) {
    this.#running = running;
    this.#store = store;
    this.#clock = options.clock;
    this.#concurrency = options.concurrency;
    this.#state = parts.state;
    this.#fetcher = parts.fetcher;
    this.#executor = parts.executor;
    this.#completer = parts.completer;
    this.#keeper = parts.keeper;
    this.#waker = parts.waker;
    this.#events = parts.events;
  }

  /** The attempts under way, by task id. */
  get running(): ReadonlyMap<number, Running> {
    return this.#running;
  }

  /** Whether a task is still on its way to its recorded outcome. */
  get busy(): boolean {
    return this.#inFlight > 0;
  }

  /** Runs one claimed task to its recorded outcome. */
  run(leased: LeasedTask, explicit: TaskHandler | undefined): Promise<void> {
    return this.#process(leased, explicit);
  }

  /** Starts claimed-ahead tasks while slots are free. */
  startBuffered(): void {
    while (
      this.#fetcher.buffered.length > 0 && this.#running.size < this.#concurrency && !this.#state.stopping
    ) {
      void this.#process(this.#fetcher.next()!, this.loopHandler);
    }
  }

  /** Resolves once every task started is recorded (or given up). */
  async idle(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#whenIdle.push(resolve));
  }

  /** Runs one task to its recorded outcome (or its loss, or its hand-back). Never rejects. */
  async #process(leased: LeasedTask, explicit: TaskHandler | undefined): Promise<void> {
    this.#inFlight++;
    try {
      const { leaseToken } = leased;
      let started = this.#clock.now();
      const startedElapsed = elapsedOn(this.#clock);
      // A task claimed ahead starts now: its attempt counts from here.
      const task = leased.task.startedAt !== null
        ? leased.task
        : { ...leased.task, attempts: leased.task.attempts + 1, startedAt: started };
      const running: Running = {
        task,
        fence: { id: task.id, leaseToken },
        abort: new TaskAbort(),
        lost: null,
        over: false,
      };
      this.#running.set(task.id, running);
      this.#keeper.start();
      if (leased.task.startedAt === null) {
        const mayStart = this.#fetcher.mayStart(leased);
        if (!(mayStart instanceof Promise ? await mayStart : mayStart)) {
          return await this.#handBack([leased, ...this.#fetcher.takeUnstartable()]);
        }
        // It starts once allowed, in the rate window that counted it: the answer may have waited for a count.
        started = task.startedAt = this.#clock.now();
      }
      if (leased.task.startedAt === null && !(await this.#recordStart(running, started, leased))) {
        return this.#reportLost(running);
      }
      const startedAt = performance.now();
      const finish = await this.#executor.run(running, explicit);
      running.over = true;
      this.#fetcher.recordRunTime(performance.now() - startedAt);
      if (running.lost) return this.#reportLost(running);
      // The handler is done: free its slot now, start the next claimed-ahead task in it, and let the
      // outcome join the next grouped write.
      this.#running.delete(task.id);
      if (this.#state.inLoop) this.startBuffered();
      this.#waker.wake();
      const held = await this.#completer.finish(finish);
      if (!held) {
        // Cancelled, or reclaimed, after the last heartbeat and before the outcome was written.
        running.lost = await lossFrom(this.#store, task.id);
        return this.#reportLost(running);
      }
      this.#events.recorded(task, finish, elapsedOn(this.#clock) - startedElapsed);
    } catch (error) {
      // Recording the outcome failed: the task stays leased and is reclaimed when its lease expires.
      this.#events.error(error);
      this.#state.fatal ??= error;
      this.#state.stopping = true;
    } finally {
      this.#running.delete(leased.task.id);
      if (this.#running.size === 0 && !this.#state.inLoop) this.#keeper.stop();
      this.#inFlight--;
      this.#waker.wake();
      if (this.#inFlight === 0) { for (const resolve of this.#whenIdle.splice(0)) resolve(); }
    }
  }

  /**
   * Records that a task claimed ahead started. Usually with the next grouped write, while its handler
   * runs (should the worker die first, the task goes back with its attempts untouched); but first, before
   * its handler runs, when a worker died holding it since its last recorded outcome, so that a task that
   * kills its worker every time goes uncharged for one death at most. False when the worker no longer holds
   * the task.
   */
  async #recordStart(running: Running, at: number, leased: LeasedTask): Promise<boolean> {
    const start: Start = { ...running.fence, at };
    if (!leased.recordStartFirst) {
      this.#completer.start(start);
      return true;
    }
    const held = await this.#completer.startAndWait(start);
    if (!held && !running.lost) running.lost = await lossFrom(this.#store, running.task.id);
    return held && !running.lost;
  }

  /**
   * Hands claimed-ahead tasks that may not start (their queue paused since their claim, or their rate
   * window over) back to the queue, unstarted and their attempts not counted, in one write. A fence that no
   * longer holds means the task was taken from this worker meanwhile (cancelled, reclaimed).
   */
  async #handBack(tasks: readonly LeasedTask[]): Promise<void> {
    const fences = tasks.map(({ task, leaseToken }) => ({ id: task.id, leaseToken }));
    const released = await this.#store.taskReleaseMany(fences, this.#clock.now());
    for (const { task } of tasks) if (released.has(task.id)) this.#events.released(task);
  }

  #reportLost(running: Running): void {
    // A task handed back at shutdown is reported once, as "released", by the shutdown.
    if (running.lost!.why === "released") return;
    this.#events.lost(running.task, running.lost!);
  }
}
