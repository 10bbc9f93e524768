/**
 * The worker engine: claims tasks, runs their handlers under a lease, and records outcomes fenced by that
 * lease.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { type Clock, elapsedOn } from "./clock.ts";
import type { QueueDatabase } from "./database.ts";
import {
  DatabaseError,
  LeaseLostError,
  NonRetryableError,
  PayloadValidationError,
  TaskHandlerNotRegisteredError,
  TaskTimeoutError,
} from "./errors.ts";
import { type HandlerContext, parsePayloadNow, type PayloadSchema, type TaskHandler } from "./handler.ts";
import type { TaskHandlerRegistry } from "./registry.ts";
import { backoffDelayMs, type RetryPolicy } from "./retry.ts";
import { duration, wholeNumber } from "./checks.ts";
import { resolveWorkerOptions } from "./worker_options.ts";
import { Reaper } from "./worker/reaper.ts";
import {
  type ClaimStrategy,
  type Fence,
  type Finish,
  type LeasedTask,
  type LogLevel,
  type Recorded,
  type Start,
  type Store,
  type WorkerInfo,
} from "./store/store.ts";
import { TaskAbort } from "./task_abort.ts";
import { clearLongTimeout, type LongTimeout, longTimeout } from "./timers.ts";
import { describeError, isInstance } from "./describe_error.ts";
import type { Task } from "./task.ts";

export interface WorkerEngineOptions {
  db: QueueDatabase;
  /** Unique among the workers sharing the database. */
  workerId: string;
  /** Routes each task to the handler registered for its type. */
  handlerRegistry?: TaskHandlerRegistry | undefined;
  /** @default "priority" */
  strategy?: ClaimStrategy | undefined;
  /** How long a claim holds a task before another worker may take it over. Extended while alive. @default 60000 */
  leaseMs?: number | undefined;
  /** How often an idle worker looks for tasks added by other processes. @default 100 */
  pollIntervalMs?: number | undefined;
  /** Handlers run at once by this engine. @default 1 */
  concurrency?: number | undefined;
  /**
   * Most tasks claimed ahead of free slots, so that quick tasks are claimed many per statement. The worker
   * claims ahead only as many as it expects to start within about 10 ms (judged by how long its handlers
   * have been taking), so slow tasks are never held back from other workers, and no more than about
   * 16 MiB of payloads (judged by the payloads it has claimed). 0 turns it off.
   * @default 512
   */
  prefetch?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Claim only these task types. @default every type */
  types?: readonly string[] | undefined;
  /** How often leases are extended and the worker's row refreshed. @default min(leaseMs / 3, 1000) */
  heartbeatIntervalMs?: number | undefined;
  /** How often expired leases are looked for. @default 1000 */
  reapIntervalMs?: number | undefined;
  /**
   * How long (in elapsed time, which clock steps do not move) an expired lease must stay expired and
   * unrenewed before this worker takes it: a live worker renews its leases meanwhile, so a clock step
   * cannot take them from it. Keep it above the heartbeat interval of every worker sharing the database.
   * 0 takes expired leases at once. @default twice heartbeatIntervalMs
   */
  reapGraceMs?: number | undefined;
  /** How long `stop()` (and an aborted `runLoop` signal) waits for running handlers. @default Infinity */
  shutdownGraceMs?: number | undefined;
  /** Shown by `prismq workers`. */
  host?: string | null | undefined;
  pid?: number | null | undefined;
  clock?: Clock | undefined;
  /** Source of jitter; tests pass their own. */
  random?: (() => number) | undefined;
  /** Called for every task outcome; errors it throws are ignored. */
  onEvent?: ((event: WorkerEvent) => void) | undefined;
}

/** What a worker reports about the tasks it runs. */
export type WorkerEvent =
  | { type: "claimed"; task: Task }
  | { type: "completed"; task: Task; durationMs: number }
  | { type: "retrying"; task: Task; durationMs: number; error: string; runAfter: number }
  | { type: "failed"; task: Task; durationMs: number; error: string }
  | { type: "lease-lost"; task: Task; reason: LeaseLostError }
  | { type: "released"; task: Task }
  | { type: "error"; error: unknown };

/** Options of {@link WorkerEngine.runLoop}. */
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

/** What a {@link WorkerEngine.runLoop} did. */
export interface RunSummary {
  claimed: number;
  completed: number;
  retried: number;
  failed: number;
  /** Tasks cancelled or reclaimed by another worker while this one ran them. */
  leaseLost: number;
  /** Tasks handed back to the queue at shutdown. */
  released: number;
}

interface Running {
  task: Task;
  fence: Fence;
  abort: TaskAbort;
  /** Set once the worker no longer holds the task: its outcome must not be recorded. */
  lost: LeaseLostError | null;
  /** Set once the handler has returned (or thrown): its attempt is over, and with it the lease. */
  over: boolean;
}

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

type Resolved =
  | { handler: TaskHandler; schema?: PayloadSchema | undefined; timeoutMs?: number | undefined }
  | { refusal: string };

const YIELD_EVERY_MS = 10;
/** Claimed-ahead tasks should start within about this long. */
const PREFETCH_HORIZON_MS = 10;
/** And their payloads should take no more memory than this, in UTF-16 code units of JSON. */
const PREFETCH_PAYLOAD_LENGTH = 16 * 1024 * 1024;

/**
 * Claims and runs tasks.
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "./mod.ts";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const registry = new TaskHandlerRegistry();
 * registry.registerHandler("hello", (task) => console.log("hello", task.payload));
 * await new Queue(db).enqueue("hello", { name: "Ada" });
 * const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
 * await worker.runLoop({ untilEmpty: true });
 * db.close();
 * ```
 */
export class WorkerEngine {
  readonly workerId: string;
  readonly #db: QueueDatabase;
  readonly #store: Store;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #strategy: ClaimStrategy;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #concurrency: number;
  readonly #prefetch: number;
  readonly #retry: RetryPolicy;
  readonly #types: readonly string[] | undefined;
  readonly #heartbeatIntervalMs: number;
  readonly #reaper: Reaper;
  readonly #shutdownGraceMs: number;
  readonly #host: string | null;
  readonly #pid: number | null;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #onEvent: ((event: WorkerEvent) => void) | undefined;

  readonly #running = new Map<number, Running>();
  /** Claimed, not started yet: their leases are held (and renewed) like those of running tasks. */
  #buffer: LeasedTask[] = [];
  #loopHandler: TaskHandler | undefined = undefined;
  /** Moving average of how long a handler takes, in ms; NaN until one has run. */
  #averageRunMs = NaN;
  /** Moving average of the payload length of claimed tasks. */
  #averagePayloadLength = NaN;
  readonly #inFlight = new Set<Promise<void>>();
  #pendingStarts: PendingStart[] = [];
  #pendingFinishes: PendingFinish[] = [];
  #flushing: Promise<void> | null = null;
  #heartbeatTimer: LongTimeout | null = null;
  #heartbeatRunning: Promise<void> | null = null;
  #lastYield = 0;
  /** Set by wake-ups that come from the event loop itself (timers, file events). */
  #turned = false;
  #loop: Promise<RunSummary> | null = null;
  #inLoop = false;
  #startedAt = 0;
  #stopping = false;
  #stopped: Promise<void> | null = null;
  /** Resolves when running handlers have had their time to finish after stop(); until then, never. */
  #graceOver = deferredVoid();
  #graceTimer: LongTimeout | undefined = undefined;
  #fatal: unknown = undefined;
  #wake: (() => void) | null = null;
  #summary: RunSummary = { claimed: 0, completed: 0, retried: 0, failed: 0, leaseLost: 0, released: 0 };

  constructor(options: WorkerEngineOptions) {
    const { db, workerId } = options;
    if (!db || typeof db.store !== "object") {
      throw new TypeError("WorkerEngine needs a QueueDatabase as `db`.");
    }
    if (typeof workerId !== "string" || workerId.trim() === "") {
      throw new TypeError("WorkerEngine needs a non-empty `workerId`.");
    }
    this.workerId = workerId;
    this.#db = db;
    this.#store = db.store;
    this.#registry = options.handlerRegistry;
    const resolved = resolveWorkerOptions(options);
    this.#strategy = resolved.strategy;
    this.#leaseMs = resolved.leaseMs;
    this.#pollIntervalMs = resolved.pollIntervalMs;
    this.#concurrency = resolved.concurrency;
    this.#prefetch = resolved.prefetch;
    this.#retry = resolved.retry;
    this.#types = resolved.types;
    this.#heartbeatIntervalMs = resolved.heartbeatIntervalMs;
    this.#reaper = new Reaper(this.#store, resolved.clock, {
      intervalMs: resolved.reapIntervalMs,
      graceMs: resolved.reapGraceMs,
    });
    this.#shutdownGraceMs = resolved.shutdownGraceMs;
    this.#host = resolved.host;
    this.#pid = resolved.pid;
    this.#clock = resolved.clock;
    this.#random = resolved.random;
    this.#onEvent = resolved.onEvent;
  }

  /** Tasks this engine is running right now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /**
   * Claims one task and runs it to its recorded outcome. Returns true when a task was claimed, even if it
   * then failed; false when none was runnable.
   *
   * @param taskHandler used instead of the registry for this call
   */
  async claimAndProcess(taskHandler?: TaskHandler): Promise<boolean> {
    this.#assertCanRoute(taskHandler);
    await this.#yieldIfBusy();
    await this.#reaper.reapIfDue();
    const [leased] = await this.#claim(1, 1);
    if (!leased) return false;
    await this.#track(this.#process(leased, taskHandler));
    return true;
  }

  /**
   * Claims and runs tasks until stopped, until `maxIterations` claim attempts, or (with `untilEmpty`) until
   * nothing is runnable or running. Resolves once every handler it started has finished and been recorded.
   */
  runLoop(options: RunLoopOptions = {}): Promise<RunSummary> {
    this.#assertCanRoute(options.taskHandler);
    if (this.#loop) throw new Error(`Worker '${this.workerId}' is already running a loop.`);
    const { maxIterations } = options;
    if (maxIterations !== undefined) wholeNumber("maxIterations", maxIterations, 0);
    this.#stopping = false;
    this.#stopped = null;
    this.#graceOver = deferredVoid();
    this.#fatal = undefined;
    this.#summary = { claimed: 0, completed: 0, retried: 0, failed: 0, leaseLost: 0, released: 0 };
    this.#inLoop = true;
    const loop = this.#runLoop(options).finally(() => {
      this.#inLoop = false;
      this.#loop = null;
    });
    this.#loop = loop;
    return loop;
  }

  async #runLoop({ taskHandler, maxIterations, untilEmpty, signal }: RunLoopOptions): Promise<RunSummary> {
    const onAbort = () => void this.stop().catch((error) => this.#emit({ type: "error", error }));
    if (signal?.aborted) return { ...this.#summary };
    signal?.addEventListener("abort", onAbort, { once: true });
    let unsubscribe = () => {};
    this.#startedAt = this.#clock.now();
    try {
      await this.#heartbeat();
      // After a first write, so that the file's write-ahead log exists to be watched.
      const unwatch = this.#store.watchCommits(() => {
        this.#turned = true;
        this.#wakeUp();
      });
      const unlisten = this.#db.onTasksAvailable(() => this.#wakeUp());
      unsubscribe = () => {
        unwatch();
        unlisten();
      };
      this.#startHeartbeat();
      this.#loopHandler = taskHandler;
      let iterations = 0;
      let idle = false;
      while (!this.#stopping && (maxIterations === undefined || iterations < maxIterations)) {
        this.#startBuffered();
        const free = this.#concurrency - this.#running.size;
        if (free <= 0 || this.#buffer.length > 0) {
          await this.#sleep(Infinity);
          continue;
        }
        iterations++;
        await this.#yieldIfBusy();
        await this.#reaper.reapIfDue();
        const ahead = maxIterations === undefined ? this.#prefetchTarget() : 0;
        // An idle worker woken by any commit first looks without writing: a claim takes the write lock,
        // which would slow the workers that are busy.
        const worthClaiming: boolean = !idle ||
          (await this.#store.taskPending(this.#clock.now(), this.#types)).runnable > 0;
        const claimed: LeasedTask[] = worthClaiming ? await this.#claim(free + ahead, free) : [];
        idle = claimed.length === 0;
        this.#buffer.push(...claimed);
        this.#startBuffered();
        if (claimed.length > 0) continue;
        if (untilEmpty) {
          if (this.#running.size > 0) {
            await this.#sleep(Infinity);
            continue;
          }
          const pending = await this.#store.taskPending(this.#clock.now(), this.#types);
          if (pending.runnable === 0 && pending.running === 0) break;
          if (pending.runnable > 0) continue;
        }
        await this.#sleep(this.#pollIntervalMs);
      }
    } catch (error) {
      this.#fatal ??= error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      unsubscribe();
      // The loop ends only once every task it claimed is recorded or handed back, so that whoever closes
      // the database after it closes nothing under a write still to come.
      await this.#shutdown().catch((error) => this.#fail(error));
      this.#loopHandler = undefined;
      await this.#store.workerDelete(this.workerId).catch((error) => this.#emit({ type: "error", error }));
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    return { ...this.#summary };
  }

  /**
   * Stops gracefully: no new claims; tasks claimed ahead go straight back to the queue; running handlers
   * get `graceMs` to finish, after which their signals abort and their tasks go straight back too, with
   * the attempt not counted. Resolves once every task is recorded or handed back and the loop has ended.
   * A second call with `graceMs: 0` (a second Ctrl-C, say) ends the grace period at once.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    const graceMs = options.graceMs === undefined
      ? this.#shutdownGraceMs
      : duration("graceMs", options.graceMs, 0, { infinite: true });
    this.#stopping = true;
    this.#wakeUp();
    if (graceMs === 0) this.#endGrace();
    if (this.#stopped) return this.#stopped;
    if (graceMs !== Infinity) this.#graceTimer = longTimeout(() => this.#endGrace(), graceMs);
    // The loop hands everything back as it ends; without a loop, claimAndProcess calls may be running.
    const stopped = this.#loop ? this.#loop.then(() => {}, () => {}) : this.#shutdown();
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
  async #shutdown(): Promise<void> {
    let failure: unknown = undefined;
    await this.#releaseBuffered().catch((error) => (failure ??= error));
    if (this.#inFlight.size > 0) await Promise.race([this.#idleHandlers(), this.#graceOver.promise]);
    clearLongTimeout(this.#graceTimer);
    await this.#releaseRunning().catch((error) => (failure ??= error));
    await this.#drain();
    if (failure !== undefined) throw failure;
  }

  /** Hands claimed-ahead tasks back; those that never started keep their attempts. */
  async #releaseBuffered(): Promise<void> {
    const buffered = this.#buffer;
    if (buffered.length === 0) return;
    this.#buffer = [];
    await this.#release(
      buffered.map(({ task, leaseToken }) => ({ task, fence: { id: task.id, leaseToken } })),
    );
  }

  /** Hands back the tasks whose handlers are still running, aborting their signals. */
  async #releaseRunning(): Promise<void> {
    const unfinished = [...this.#running.values()].filter((running) => !running.lost);
    for (const running of unfinished) this.#lose(running, new LeaseLostError(running.task.id, "released"));
    await this.#release(unfinished);
  }

  async #release(tasks: readonly { task: Task; fence: Fence }[]): Promise<void> {
    if (tasks.length === 0) return;
    let released: Set<number>;
    try {
      released = await this.#store.taskReleaseMany(tasks.map(({ fence }) => fence), this.#clock.now());
    } catch (error) {
      throw new DatabaseError(
        `Worker '${this.workerId}' could not hand ${tasks.length} task${
          tasks.length === 1 ? "" : "s"
        } back ` +
          `to the queue (${(error as Error)?.message ?? String(error)}); they go back by themselves when ` +
          `their leases expire, within ${this.#leaseMs} ms.`,
        { cause: error },
      );
    }
    for (const { task } of tasks) {
      if (!released.has(task.id)) continue;
      this.#summary.released++;
      this.#emit({ type: "released", task });
    }
  }

  /** Starts claimed-ahead tasks while slots are free. */
  #startBuffered(): void {
    while (this.#buffer.length > 0 && this.#running.size < this.#concurrency && !this.#stopping) {
      void this.#track(this.#process(this.#buffer.shift()!, this.#loopHandler));
    }
  }

  /** How many tasks to claim beyond the free slots: about {@link PREFETCH_HORIZON_MS} of work. */
  #prefetchTarget(): number {
    if (this.#prefetch === 0 || !(this.#averageRunMs >= 0)) return 0;
    const perSlot = PREFETCH_HORIZON_MS / Math.max(this.#averageRunMs, 0.001);
    const fitting = PREFETCH_PAYLOAD_LENGTH / Math.max(this.#averagePayloadLength || 0, 1);
    return Math.floor(Math.min(this.#prefetch, perSlot * this.#concurrency, fitting));
  }

  async #idleHandlers(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #drain(): Promise<void> {
    await this.#idleHandlers();
    await this.#flushing;
    this.#stopHeartbeat();
    await this.#heartbeatRunning;
  }

  #assertCanRoute(taskHandler: TaskHandler | undefined): void {
    if (taskHandler !== undefined && typeof taskHandler !== "function") {
      throw new TypeError("taskHandler must be a function.");
    }
    if (!taskHandler && !this.#registry) {
      throw new TypeError(
        `Worker '${this.workerId}' has no handlerRegistry and no taskHandler was given: ` +
          `pass one of them so that tasks can be routed.`,
      );
    }
  }

  /**
   * Claims up to `limit` tasks, of which the first `start` start at once (the rest are claimed ahead),
   * recording in the same transaction any starts and outcomes waiting to be written.
   */
  async #claim(limit: number, start: number): Promise<LeasedTask[]> {
    const waiting = this.#takePending();
    let leased: LeasedTask[];
    try {
      const result = await this.#store.taskRecordAndClaim(waiting.progress, {
        workerId: this.workerId,
        limit,
        start,
        leaseMs: this.#leaseMs,
        now: this.#clock.now(),
        strategy: this.#strategy,
        types: this.#types,
      });
      waiting.settle(result);
      leased = result.leased;
    } catch (error) {
      waiting.settle(error);
      throw error;
    }
    this.#summary.claimed += leased.length;
    for (const { payloadLength } of leased) {
      if (payloadLength === undefined) continue;
      this.#averagePayloadLength = movingAverage(this.#averagePayloadLength, payloadLength);
    }
    for (const { task } of leased) this.#emit({ type: "claimed", task });
    return leased;
  }

  /**
   * The embedded driver answers synchronously, so a busy loop would otherwise run on microtasks alone and
   * starve timers (heartbeats, grace periods), signal handlers and the driver's own finalizers, which free
   * native statements: every few milliseconds, let the event loop turn.
   */
  async #yieldIfBusy(): Promise<void> {
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

  #track(work: Promise<void>): Promise<void> {
    this.#inFlight.add(work);
    return work.finally(() => {
      this.#inFlight.delete(work);
      this.#wakeUp();
    });
  }

  #recordRunTime(ms: number): void {
    this.#averageRunMs = movingAverage(this.#averageRunMs, ms);
  }

  async #process(leased: LeasedTask, explicit: TaskHandler | undefined): Promise<void> {
    const { leaseToken } = leased;
    const started = this.#clock.now();
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
    this.#startHeartbeat();
    try {
      if (leased.task.startedAt === null && !(await this.#recordStart(running, started, leased))) {
        return this.#reportLost(running);
      }
      const startedAt = performance.now();
      const finish = await this.#attempt(running, this.#resolve(task, explicit));
      running.over = true;
      this.#recordRunTime(performance.now() - startedAt);
      if (running.lost) return this.#reportLost(running);
      // The handler is done: free its slot now, start the next claimed-ahead task in it, and let the
      // outcome join the next grouped write.
      this.#running.delete(task.id);
      if (this.#inLoop) this.#startBuffered();
      this.#wakeUp();
      const held = await this.#finish(finish);
      if (!held) {
        running.lost = new LeaseLostError(task.id, "reclaimed");
        return this.#reportLost(running);
      }
      const durationMs = elapsedOn(this.#clock) - startedElapsed;
      if (finish.status === "completed") {
        this.#summary.completed++;
        this.#emit({ type: "completed", task, durationMs });
      } else if (finish.status === "queued") {
        this.#summary.retried++;
        this.#emit({
          type: "retrying",
          task,
          durationMs,
          error: finish.errorMessage,
          runAfter: finish.runAfter,
        });
      } else {
        this.#summary.failed++;
        this.#emit({ type: "failed", task, durationMs, error: finish.errorMessage });
      }
    } catch (error) {
      // Recording the outcome failed: the task stays leased and is reclaimed when its lease expires.
      this.#emit({ type: "error", error });
      this.#fatal ??= error;
      this.#stopping = true;
    } finally {
      this.#running.delete(task.id);
      if (this.#running.size === 0 && !this.#inLoop) this.#stopHeartbeat();
    }
  }

  /**
   * Records that a task claimed ahead started. Usually with the next grouped write, while its handler
   * runs (should the worker die first, the task goes back with its attempts untouched); but first, before
   * its handler runs, when a worker died holding it before, so that a task that kills its worker still runs
   * out of attempts. False when the worker no longer holds the task.
   */
  async #recordStart(running: Running, at: number, leased: LeasedTask): Promise<boolean> {
    const start: Start = { ...running.fence, at };
    if (!leased.recordStartFirst) {
      this.#pendingStarts.push({ start });
      this.#flushing ??= this.#flush();
      return true;
    }
    const held = await new Promise<boolean>((resolve, reject) => {
      this.#pendingStarts.push({ start, resolve, reject });
      this.#flushing ??= this.#flush();
    });
    if (!held && !running.lost) {
      const status = (await this.#store.taskGet(running.task.id))?.status;
      running.lost = new LeaseLostError(running.task.id, status === "cancelled" ? "cancelled" : "reclaimed");
    }
    return held && !running.lost;
  }

  /** Records an error that ends the loop, and reports it. */
  #fail(error: unknown): void {
    this.#fatal ??= error;
    this.#emit({ type: "error", error });
  }

  #reportLost(running: Running): void {
    // A task handed back at shutdown is reported once, as "released", by stop().
    if (running.lost!.why === "released") return;
    this.#summary.leaseLost++;
    this.#emit({ type: "lease-lost", task: running.task, reason: running.lost! });
  }

  #resolve(task: Task, explicit: TaskHandler | undefined): Resolved {
    if (explicit) return { handler: explicit };
    const info = this.#registry!.getHandlerInfo(task.type);
    if (!info) {
      return {
        refusal: new TaskHandlerNotRegisteredError(task.type, this.#registry!.getRegisteredTypes()).message,
      };
    }
    return { handler: info.handler, schema: info.schema, timeoutMs: info.timeoutMs };
  }

  /** Runs one attempt and decides its outcome. Never throws. */
  async #attempt(running: Running, resolved: Resolved): Promise<Finish> {
    const { task, fence, abort } = running;
    const fail = (errorMessage: string): Finish => ({ ...fence, status: "failed", errorMessage });
    if ("refusal" in resolved) return fail(resolved.refusal);
    const timeoutMs = task.timeoutMs ?? resolved.timeoutMs;
    const timer = timeoutMs === undefined
      ? undefined
      : longTimeout(() => abort.abort(new TaskTimeoutError(task.id, timeoutMs)), timeoutMs);
    try {
      let payload = resolved.schema
        ? parsePayloadNow(task.type, resolved.schema, task.payload)
        : task.payload;
      if (payload instanceof Promise) payload = await payload;
      const outcome = resolved.handler({ ...task, payload }, this.#context(running));
      // A handler that returned a promise is raced against its abort; one that returned a value is done.
      if (isPromiseLike(outcome)) await abort.race(outcome);
      else if (abort.aborted) await abort.race(Promise.resolve());
      return { ...fence, status: "completed" };
    } catch (error) {
      const errorMessage = describeError(error);
      if (running.lost) return fail(errorMessage);
      if (isInstance(error, NonRetryableError) || isInstance(error, PayloadValidationError)) {
        return fail(errorMessage);
      }
      if (task.attempts >= task.maxAttempts) return fail(errorMessage);
      const delay = backoffDelayMs(this.#retry, task.attempts, this.#random);
      return { ...fence, status: "queued", runAfter: this.#clock.now() + delay, errorMessage };
    } finally {
      clearLongTimeout(timer);
    }
  }

  #context(running: Running): HandlerContext {
    const { task, fence, abort } = running;
    return {
      get signal() {
        return abort.signal;
      },
      workerId: this.workerId,
      db: this.#db,
      attempt: task.attempts,
      heartbeat: async () => {
        if (running.over) {
          throw new Error(
            `Task ${task.id}: heartbeat() was called after its handler returned, so there is no lease left to ` +
              `extend. Await the work that calls it before returning from the handler.`,
          );
        }
        if (running.lost) throw running.lost;
        const now = this.#clock.now();
        if (!await this.#store.taskExtendLease(fence, now + this.#leaseMs, now)) {
          const status = (await this.#store.taskGet(task.id))?.status;
          this.#lose(
            running,
            new LeaseLostError(task.id, status === "cancelled" ? "cancelled" : "reclaimed"),
          );
          throw running.lost;
        }
      },
      log: (level: LogLevel, message: string, details?: unknown) =>
        this.#store.taskLogAppend([{ taskId: task.id, at: this.#clock.now(), level, message, details }]),
    };
  }

  #lose(running: Running, reason: LeaseLostError): void {
    if (running.lost) return;
    running.lost = reason;
    running.abort.abort(reason);
  }

  /** Queues an outcome for the next grouped write; resolves with whether the lease still held. */
  #finish(finish: Finish): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#pendingFinishes.push({ finish, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    // Let every handler that is starting or finishing in this turn of the event loop join the write: quick
    // handlers finish hundreds at a time, and one statement records them all.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#pendingFinishes.length > 0 || this.#pendingStarts.length > 0) {
      const batch = this.#takePending();
      try {
        batch.settle(await this.#store.taskRecord(batch.progress, this.#clock.now()));
      } catch (error) {
        batch.settle(error);
      }
    }
    this.#flushing = null;
  }

  /** The starts and outcomes waiting to be written, taken for one write, and how to tell their waiters. */
  #takePending() {
    const starts = this.#pendingStarts;
    const finishes = this.#pendingFinishes;
    this.#pendingStarts = [];
    this.#pendingFinishes = [];
    return {
      progress: { starts: starts.map((item) => item.start), finishes: finishes.map((item) => item.finish) },
      settle(outcome: Recorded | unknown): void {
        const recorded = outcome as Recorded;
        const failed = !(recorded?.finished instanceof Set);
        for (const item of starts) {
          if (failed) item.reject?.(outcome);
          else item.resolve?.(recorded.started.has(item.start.id));
        }
        settle(finishes, failed ? outcome : recorded.finished);
      },
    };
  }

  #startHeartbeat(): void {
    if (this.#heartbeatTimer !== null) return;
    const tick = () => {
      this.#heartbeatRunning = this.#heartbeat()
        .catch((error) => this.#emit({ type: "error", error }))
        .finally(() => {
          this.#heartbeatRunning = null;
          if (this.#heartbeatTimer !== null) {
            this.#heartbeatTimer = longTimeout(tick, this.#heartbeatIntervalMs);
          }
        });
    };
    this.#heartbeatTimer = longTimeout(tick, this.#heartbeatIntervalMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== null) clearLongTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  /** Extends the leases of running tasks and, inside a loop, refreshes this worker's row. */
  async #heartbeat(): Promise<void> {
    const now = this.#clock.now();
    const holding = [...this.#running.values()].filter((running) => !running.lost);
    const buffered = this.#buffer.map(({ task, leaseToken }) => ({ id: task.id, leaseToken }));
    const worker: WorkerInfo | null = !this.#inLoop ? null : {
      id: this.workerId,
      host: this.#host,
      pid: this.#pid,
      startedAt: this.#startedAt,
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
    const gone = this.#buffer.filter(({ task, leaseToken }) => isLost(task.id, leaseToken));
    if (gone.length > 0) {
      // Cancelled or reclaimed before it started: drop it, and say so as for a running task.
      this.#buffer = this.#buffer.filter((leased) => !gone.includes(leased));
      for (const { task } of gone) {
        const status = lostStatus.get(task.id);
        this.#summary.leaseLost++;
        this.#emit({
          type: "lease-lost",
          task,
          reason: new LeaseLostError(task.id, status === "cancelled" ? "cancelled" : "reclaimed"),
        });
      }
    }
    for (const { id, status } of lost) {
      const running = this.#running.get(id);
      if (running && isLost(id, running.fence.leaseToken)) {
        this.#lose(running, new LeaseLostError(id, status === "cancelled" ? "cancelled" : "reclaimed"));
      }
    }
  }

  /** Waits `ms` (Infinity: until woken) or until woken by new tasks, a finished handler, or stop(). */
  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
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

  #wakeUp(): void {
    this.#wake?.();
  }

  #emit(event: WorkerEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A listener's failure must not disturb the worker.
    }
  }
}

/** A promise and the function that resolves it. */
function deferredVoid(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An exponential moving average that starts at the first value. */
function movingAverage(average: number, value: number): number {
  return Number.isNaN(average) ? value : average * 0.9 + value * 0.1;
}

/** Resolves each waiting outcome with whether its fence held, or rejects them all with the write's error. */
function settle(waiting: readonly PendingFinish[], outcome: Set<number> | unknown): void {
  for (const item of waiting) {
    if (outcome instanceof Set) item.resolve(outcome.has(item.finish.id));
    else item.reject(outcome);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
