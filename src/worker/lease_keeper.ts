/**
 * The lease keeper: while this worker holds tasks (running, or claimed ahead), extends their leases every
 * heartbeat interval, and inside a loop refreshes this worker's row (`prismq workers`). A task whose lease
 * did not hold (cancelled, or reclaimed by another worker) is let go: a running handler's signal aborts,
 * a task claimed ahead leaves the buffer, and either is reported.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import type { Store, WorkerInfo } from "../store/store.ts";
import { clearLongTimeout, type LongTimeout, longTimeout } from "../timers.ts";
import type { WorkerEvents } from "./events.ts";
import { lose, lossOf, type Running } from "./executor.ts";
import type { Fetcher } from "./fetcher.ts";
import type { ResolvedWorkerOptions } from "./options.ts";
import type { RunState } from "./state.ts";

export class LeaseKeeper {
  readonly #store: Pick<Store, "workerHeartbeat">;
  readonly #state: RunState;
  readonly #running: ReadonlyMap<number, Running>;
  readonly #fetcher: Fetcher;
  readonly #events: WorkerEvents;
  readonly #clock: Clock;
  readonly #workerId: string;
  readonly #host: string | null;
  readonly #pid: number | null;
  readonly #concurrency: number;
  readonly #types: readonly string[] | undefined;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #intervalMs: number;
  readonly #leaseMs: number;
  #timer: LongTimeout | null = null;
  #beating: Promise<void> | null = null;

  /**
   * @param running the attempts under way, as the dispatcher keeps them
   * @param fetcher whose buffer holds the tasks claimed ahead
   */
  constructor(
    store: Pick<Store, "workerHeartbeat">,
    state: RunState,
    running: ReadonlyMap<number, Running>,
    fetcher: Fetcher,
    events: WorkerEvents,
    options: ResolvedWorkerOptions,
  ) {
    this.#store = store;
    this.#state = state;
    this.#running = running;
    this.#fetcher = fetcher;
    this.#events = events;
    this.#clock = options.clock;
    this.#workerId = options.workerId;
    this.#host = options.host;
    this.#pid = options.pid;
    this.#concurrency = options.concurrency;
    this.#types = options.types;
    this.#registry = options.registry;
    this.#intervalMs = options.heartbeatIntervalMs;
    this.#leaseMs = options.leaseMs;
  }

  /** The heartbeat under way, if any. */
  get beating(): Promise<void> | null {
    return this.#beating;
  }

  /** Beats every interval from now on, unless it does already. */
  start(): void {
    if (this.#timer !== null) return;
    const tick = () => {
      this.#beating = this.heartbeat()
        .catch((error) => this.#events.error(error))
        .finally(() => {
          this.#beating = null;
          if (this.#timer !== null) this.#timer = longTimeout(tick, this.#intervalMs);
        });
    };
    this.#timer = longTimeout(tick, this.#intervalMs);
  }

  /** Beats no more (a heartbeat under way still finishes: see {@link beating}). */
  stop(): void {
    if (this.#timer !== null) clearLongTimeout(this.#timer);
    this.#timer = null;
  }

  /** Extends the leases of running and claimed-ahead tasks and, inside a loop, refreshes this worker's row. */
  async heartbeat(): Promise<void> {
    const now = this.#clock.now();
    const holding = [...this.#running.values()].filter((running) => !running.lost);
    const buffered = this.#fetcher.buffered.map(({ task, leaseToken }) => ({ id: task.id, leaseToken }));
    const worker: WorkerInfo | null = !this.#state.inLoop ? null : {
      id: this.#workerId,
      host: this.#host,
      pid: this.#pid,
      startedAt: this.#state.startedAt,
      heartbeatAt: now,
      concurrency: this.#concurrency,
      handlerTypes: [...(this.#types ?? this.#registry?.getRegisteredTypes() ?? [])].sort(),
    };
    const fences = [...holding.map((r) => r.fence), ...buffered];
    const lost = await this.#store.workerHeartbeat(worker, fences, now + this.#leaseMs);
    // Only the claims that were sent are lost: while the heartbeat waited, a task may have finished and been
    // claimed again by this worker, under a new token that still holds.
    const sent = new Map(fences.map((fence) => [fence.id, fence.leaseToken]));
    const lostStatus = new Map(lost.map(({ id, status }) => [id, status]));
    const isLost = (id: number, leaseToken: string) => lostStatus.has(id) && sent.get(id) === leaseToken;
    const gone = this.#fetcher.buffered.filter(({ task, leaseToken }) => isLost(task.id, leaseToken));
    if (gone.length > 0) {
      // Cancelled or reclaimed before it started: drop it, and say so as for a running task.
      this.#fetcher.drop(gone);
      for (const { task } of gone) this.#events.lost(task, lossOf(task.id, lostStatus.get(task.id)));
    }
    for (const { id, status } of lost) {
      const running = this.#running.get(id);
      if (running && isLost(id, running.fence.leaseToken)) lose(running, lossOf(id, status));
    }
  }
}
