/**
 * An in-memory queue for an application's own tests, with a clock that moves only when told to, and
 * `drain()`, which runs every task that is runnable now, one at a time, through the real worker engine, and
 * says how each attempt ended. Just over 400 lines: the queue's and the engine's options, passed through.
 *
 * @module
 */
import { ManualClock } from "../clock.ts";
import { QueueDatabase } from "../database.ts";
import { invalidType, LeaseLostError } from "../errors.ts";
import { Queue } from "../queue.ts";
import { TaskHandlerRegistry } from "../registry.ts";
import type { RetryPolicy } from "../retry.ts";
import { storeOf } from "../store/store_of.ts";
import type { Task } from "../task.ts";
import { WorkerEngine, type WorkerEvent } from "../worker/engine.ts";
import { wholeNumber } from "../checks.ts";

/**
 * Options of {@link createTestQueue}.
 *
 * @example
 * ```ts
 * import { ManualClock, TaskHandlerRegistry } from "prismq";
 * import { createTestQueue } from "prismq/testing";
 * const testQueue = await createTestQueue({
 *   registry: new TaskHandlerRegistry(), // the application's
 *   clock: new ManualClock(Date.UTC(2030, 0, 1)),
 *   retry: { initialDelayMs: 5_000, multiplier: 3 },
 * });
 * await testQueue.close();
 * ```
 */
export interface TestQueueOptions {
  /**
   * The application's handlers. When given, the queue also validates types and payloads against it at
   * enqueue, as an application's own `new Queue(db, { registry })` does. When absent, a new empty registry
   * is made (register handlers on `testQueue.registry`) and enqueue accepts any type.
   * @default a new TaskHandlerRegistry
   */
  registry?: TaskHandlerRegistry | undefined;
  /** The clock the queue and `drain()` read. @default new ManualClock(), at the real time of the call */
  clock?: ManualClock | undefined;
  /** The backoff after a failed attempt, as `WorkerEngineOptions.retry`. @default DEFAULT_RETRY_POLICY */
  retry?: Partial<RetryPolicy> | undefined;
  /**
   * The source of backoff jitter, a number in [0, 1). The default, 0.5, means no jitter: a backoff is
   * exactly `initialDelayMs × multiplier^(attempt−1)`, capped (1 s, 2 s, 4 s, … by default).
   * @default () => 0.5
   */
  random?: (() => number) | undefined;
  /** As `QueueOptions.maxPayloadBytes`. @default 1048576 */
  maxPayloadBytes?: number | undefined;
}

/**
 * Options of {@link TestQueue.drain}.
 *
 * @example
 * ```ts
 * import { createTestQueue } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * await testQueue.drain({ timeoutMs: 30_000, maxTasks: 10_000, types: ["send_email"] });
 * await testQueue.close();
 * ```
 */
export interface DrainOptions {
  /**
   * Real milliseconds the whole drain may take. Handlers run in real time (a handler waiting on a timer or
   * a network call keeps the drain waiting); past the deadline, running handlers' signals abort, their
   * tasks go back to the queue (the attempt not counted), and `drain()` throws an error naming them.
   * @default 10000
   */
  timeoutMs?: number | undefined;
  /**
   * Most attempts one drain runs. A drain that reaches it while tasks are still runnable throws: a handler
   * is probably enqueueing tasks without end.
   * @default 1000
   */
  maxTasks?: number | undefined;
  /** Run only tasks of these types; others stay queued. @default every type */
  types?: readonly string[] | undefined;
}

/**
 * How one attempt ended: the task's status after it, `retrying` for a failure with attempts left, or
 * `snoozed` when its handler threw a `SnoozeError` (queued again, the attempt given back).
 *
 * @example
 * ```ts
 * import { createTestQueue, type DrainOutcome } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * testQueue.registry.registerHandler("ok", () => {});
 * await testQueue.queue.enqueue("ok", {});
 * const outcomes: DrainOutcome[] = (await testQueue.drain()).map((ran) => ran.outcome); // ["completed"]
 * await testQueue.close();
 * ```
 */
export type DrainOutcome = "completed" | "retrying" | "snoozed" | "failed" | "cancelled";

/**
 * One attempt run by {@link TestQueue.drain}.
 *
 * @example
 * ```ts
 * import { createTestQueue, type DrainedTask } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * testQueue.registry.registerHandler("charge", () => {
 *   throw new Error("card declined");
 * });
 * await testQueue.queue.enqueue("charge", { cents: 500 });
 * const [ran]: DrainedTask[] = await testQueue.drain();
 * // { id: 1, type: "charge", payload: { cents: 500 }, outcome: "retrying", error: "card declined",
 * //   attempts: 1, retryAt: testQueue.clock.now() + 1000 }
 * if (ran.retryAt !== testQueue.clock.now() + 1000) throw new Error("expected a retry in 1 s");
 * await testQueue.close();
 * ```
 */
export interface DrainedTask {
  id: number;
  type: string;
  /** The payload as stored (before any schema transformed it for the handler). */
  payload: unknown;
  outcome: DrainOutcome;
  /** The error the attempt ended with, for `retrying` and `failed`; null otherwise. */
  error: string | null;
  /** Attempts so far, this one included (a snoozed one is given back once the snooze is recorded). */
  attempts: number;
  /** For `retrying` and `snoozed`: when the next attempt is due (epoch ms on the test clock); null otherwise. */
  retryAt: number | null;
}

const WORKER_ID = "prismq-testing-drain";
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_TASKS = 1000;
/** How long a drain past its deadline waits for aborted handlers to give their tasks back. */
const STOP_DEADLINE_MS = 2_000;

/**
 * A migrated in-memory queue database, a {@link Queue} on it, a registry and a {@link ManualClock}, for tests.
 * Make one with {@link createTestQueue}; close it when the test ends.
 *
 * @example
 * ```ts
 * import { createTestQueue } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * testQueue.registry.registerHandler("greet", () => {});
 * await testQueue.queue.enqueue("greet", { name: "Ada" });
 * const [ran] = await testQueue.drain();
 * if (ran.outcome !== "completed") throw new Error("expected the task to complete");
 * await testQueue.close();
 * ```
 */
export class TestQueue {
  /** The in-memory database: pass it to the code under test. */
  readonly db: QueueDatabase;
  /** A queue on {@link db} that reads {@link clock}. */
  readonly queue: Queue;
  /** The handlers `drain()` runs. */
  readonly registry: TaskHandlerRegistry;
  /** The time the queue and `drain()` see: `clock.advance(ms)` makes delayed tasks and backoffs due. */
  readonly clock: ManualClock;
  readonly #retry: Partial<RetryPolicy> | undefined;
  readonly #random: () => number;
  #draining = false;

  /** Use {@link createTestQueue}, which also creates the tables. */
  constructor(db: QueueDatabase, options: TestQueueOptions = {}) {
    const { registry, clock = new ManualClock(), random = () => 0.5 } = options;
    // Duck-typed, so that a clock or registry from another copy of the package passes.
    if (typeof clock?.advance !== "function" || typeof clock.now !== "function") {
      throw invalidType("createTestQueue() needs a ManualClock as `clock`, so that tests can move it.");
    }
    if (registry !== undefined && typeof registry?.getHandlerInfo !== "function") {
      throw invalidType("createTestQueue() needs a TaskHandlerRegistry as `registry`.");
    }
    if (typeof random !== "function") throw invalidType("`random` must be a function.");
    this.db = db;
    this.clock = clock;
    this.registry = registry ?? new TaskHandlerRegistry();
    this.queue = new Queue(db, { registry, clock, maxPayloadBytes: options.maxPayloadBytes });
    this.#retry = options.retry;
    this.#random = random;
    // Made once here so that a bad retry policy is refused now, not at the first drain.
    this.#worker();
  }

  /**
   * Runs every task that is runnable now on the test clock, one at a time, through a real
   * {@link WorkerEngine}, until none is left: tasks that handlers enqueue meanwhile run too, if due. Tasks
   * scheduled for later, and failed attempts' retries, wait until the clock is advanced past their time.
   * Nothing sleeps: the clock does not move during a drain unless a handler moves it.
   *
   * @returns each attempt run, in the order they ended
   * @throws {Error} when the drain passes `timeoutMs`, reaches `maxTasks` with tasks still runnable, or the
   *   worker could not record an outcome
   *
   * @example
   * ```ts
   * import { createTestQueue } from "prismq/testing";
   * const testQueue = await createTestQueue();
   * testQueue.registry.registerHandler("remind", () => {});
   * await testQueue.queue.enqueue("remind", {}, { delayMs: 3_600_000 });
   * if ((await testQueue.drain()).length !== 0) throw new Error("not due yet");
   * testQueue.clock.advance(3_600_000);
   * const [ran] = await testQueue.drain();
   * if (ran.outcome !== "completed") throw new Error("expected the reminder to run");
   * await testQueue.close();
   * ```
   */
  async drain(options: DrainOptions = {}): Promise<DrainedTask[]> {
    const timeoutMs = wholeNumber("timeoutMs", options.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS, 1);
    const maxTasks = wholeNumber("maxTasks", options.maxTasks ?? DEFAULT_MAX_TASKS, 1);
    if (this.#draining) throw new Error("drain() is already running on this test queue: await it first.");
    this.#draining = true;
    // In the order the attempts ended; a lost lease is resolved once the drain is over.
    const ran: (DrainedTask | { lost: Task })[] = [];
    const errors: unknown[] = [];
    const worker = this.#worker(options.types, (event) => {
      if (event.type === "completed") ran.push(drained(event.task, "completed", null, null));
      else if (event.type === "retrying") {
        ran.push(drained(event.task, "retrying", event.error, event.runAfter));
      } else if (event.type === "snoozed") ran.push(drained(event.task, "snoozed", null, event.runAfter));
      else if (event.type === "failed") ran.push(drained(event.task, "failed", event.error, null));
      else if (event.type === "cancelled") ran.push(drained(event.task, "cancelled", null, null));
      else if (event.type === "lease-lost") ran.push({ lost: event.task });
      else if (event.type === "error") errors.push(event.error);
    });
    const deadline = after(timeoutMs);
    try {
      for (let attempts = 0;; attempts++) {
        if (attempts >= maxTasks) {
          if (await this.#runnableNow(options.types)) throw tooManyTasks(maxTasks);
          break;
        }
        const step = worker.claimAndProcess();
        const claimed = await Promise.race([step, deadline.passed]);
        if (claimed === TIMED_OUT) {
          const running = await this.#giveUp(worker, step);
          throw new Error(
            `drain() gave up after ${timeoutMs} ms: ${running} was still running. Its signal was aborted and ` +
              `it went back to the queue, the attempt not counted. Handlers run in real time: one that waits ` +
              `(on a timer, the network, a promise that never settles) keeps drain() waiting. Pass a larger ` +
              `timeoutMs if it needs longer.`,
          );
        }
        if (!claimed) break;
      }
      if (errors.length > 0) throw errors[0];
      return await Promise.all(ran.map((entry) => "lost" in entry ? this.#cancelled(entry.lost) : entry));
    } finally {
      deadline.clear();
      this.#draining = false;
    }
  }

  /**
   * Closes the database; resolves once it is closed. Call it when the test ends.
   *
   * @example
   * ```ts
   * import { createTestQueue } from "prismq/testing";
   * const testQueue = await createTestQueue();
   * try {
   *   await testQueue.queue.enqueue("noop", {});
   * } finally {
   *   await testQueue.close();
   * }
   * ```
   */
  close(): Promise<void> {
    return this.db.close();
  }

  #worker(types?: readonly string[], onEvent?: (event: WorkerEvent) => void): WorkerEngine {
    return new WorkerEngine({
      db: this.db,
      workerId: WORKER_ID,
      handlerRegistry: this.registry,
      clock: this.clock,
      retry: this.#retry,
      random: this.#random,
      types,
      prefetch: 0,
      onEvent,
    });
  }

  /**
   * A task whose lease the worker lost while running it: taken by another worker, which a test queue must
   * not have, unless it was cancelled meanwhile (the worker reports that as `cancelled` when it sees it).
   */
  async #cancelled(task: Task): Promise<DrainedTask> {
    if ((await this.queue.get(task.id))?.status !== "cancelled") throw takenOver(task);
    return drained(task, "cancelled", null, null);
  }

  async #runnableNow(types: readonly string[] | undefined): Promise<boolean> {
    return (await storeOf(this.db).taskPending(this.clock.now(), types)).runnable > 0;
  }

  /**
   * Stops a worker whose drain ran out of time: aborts its handler's signal and hands the task back. Returns
   * a description of the task that was running.
   */
  async #giveUp(worker: WorkerEngine, step: Promise<boolean>): Promise<string> {
    const running = (await this.queue.list({ status: "running", limit: 10 }))
      .filter((task) => task.lockedBy === WORKER_ID)
      .map((task) => `task ${task.id} (type '${task.type}')`);
    const stopDeadline = after(STOP_DEADLINE_MS);
    try {
      await Promise.race([Promise.allSettled([worker.stop({ graceMs: 0 }), step]), stopDeadline.passed]);
    } finally {
      stopDeadline.clear();
    }
    return running.length > 0 ? running.join(", ") : "a task";
  }
}

/**
 * Creates a {@link TestQueue}: a migrated in-memory database, a queue on it, a registry (the application's
 * or a new one) and a {@link ManualClock}. Each call makes its own database, so tests do not share tasks.
 *
 * @param options the application's registry, a clock, the backoff policy
 * @returns the test queue; close it when the test ends
 *
 * @example
 * ```ts
 * import { TaskHandlerRegistry } from "prismq";
 * import { createTestQueue } from "prismq/testing";
 *
 * const registry = new TaskHandlerRegistry(); // the application's handlers
 * let calls = 0;
 * registry.registerHandler("flaky", () => {
 *   if (++calls < 3) throw new Error("not yet");
 * });
 * const testQueue = await createTestQueue({ registry });
 * await testQueue.queue.enqueue("flaky", {});
 * const [first] = await testQueue.drain(); // outcome "retrying", retryAt 1 s from now
 * testQueue.clock.advance(first.retryAt! - testQueue.clock.now());
 * const [second] = await testQueue.drain(); // "retrying" again, 2 s later
 * testQueue.clock.advance(2_000);
 * const [third] = await testQueue.drain();
 * if (third.outcome !== "completed" || third.attempts !== 3) throw new Error("expected a third, good attempt");
 * await testQueue.close();
 * ```
 */
export async function createTestQueue(options: TestQueueOptions = {}): Promise<TestQueue> {
  const db = new QueueDatabase(":memory:");
  try {
    const testQueue = new TestQueue(db, options);
    await db.initializeSchema();
    return testQueue;
  } catch (error) {
    await db.close();
    throw error;
  }
}

const TIMED_OUT = Symbol("timed out");

/** A promise that resolves with {@link TIMED_OUT} after `ms` real milliseconds, unless cleared first. */
function after(ms: number): { passed: Promise<typeof TIMED_OUT>; clear: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const passed = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return { passed, clear: () => clearTimeout(timer) };
}

function drained(
  task: Task,
  outcome: DrainOutcome,
  error: string | null,
  retryAt: number | null,
): DrainedTask {
  return {
    id: task.id,
    type: task.type,
    payload: task.payload,
    outcome,
    error,
    attempts: task.attempts,
    retryAt,
  };
}

function tooManyTasks(maxTasks: number): Error {
  return new Error(
    `drain() ran ${maxTasks} attempts and tasks are still runnable: a handler may be enqueueing tasks ` +
      `without end. Pass a larger maxTasks if the test really needs more.`,
  );
}

function takenOver(task: Task): Error {
  return new Error(
    `Task ${task.id} (type '${task.type}') was taken from drain() by another worker. Run no other worker on ` +
      `a test queue's database while it drains.`,
    { cause: new LeaseLostError(task.id, "reclaimed") },
  );
}
