/**
 * `Queue.waitFor`: waiting for a task to finish, for request/response uses. The waiter sleeps until
 * something may have finished it, as idle workers do: a commit the store tells of (`watchCommits("finished")`:
 * a file's write-ahead log, PostgreSQL's LISTEN on the finished tasks' channel), or a worker or cancel in
 * this process; then it reads the task once. A slow poll backs these up (a lost notification, a store with
 * no signal), so a wait never depends on one alone and never spins. The waiters of one database handle are
 * read together, in one statement per wake-up however many wait (a read each made hundreds of waiters slow
 * a drain down tenfold).
 *
 * @module
 */
import { duration } from "./checks.ts";
import type { QueueDatabase } from "./database.ts";
import { invalidType, TaskNotFoundError, WaitTimeoutError } from "./errors.ts";
import type { Store } from "./store/store.ts";
import { type Task, TERMINAL_STATUSES } from "./task.ts";
import { clearLongTimeout, type LongTimeout, longTimeout } from "./timers.ts";

/** Options of {@link Queue.waitFor}. */
export interface WaitForOptions {
  /** Stop waiting when it aborts: `waitFor` rejects with its reason. */
  signal?: AbortSignal | undefined;
  /** Stop waiting after this long, rejecting with a `WaitTimeoutError`. @default Infinity */
  timeoutMs?: number | undefined;
  /**
   * How often the task is read again when nothing woke the waiter: a fallback, since wake-ups may be lost.
   * @default 1000 where the store tells of commits (a file, PostgreSQL), else 200
   */
  pollIntervalMs?: number | undefined;
}

/** Most ids one read asks for. */
const READ_BATCH = 1000;

type WaiterStore = Pick<Store, "taskGetMany" | "watchCommits">;

interface Waiter {
  id: number;
  pollMs: number;
  /** The status last read, for the timeout's message. */
  last: Task["status"] | undefined;
  resolve(task: Task): void;
  reject(error: unknown): void;
}

/** The waiters of one database handle: woken and read together. */
class Waiters {
  readonly #db: QueueDatabase;
  readonly #store: WaiterStore;
  readonly #waiters = new Set<Waiter>();
  #unsubscribe: (() => void) | undefined;
  #poll: LongTimeout | undefined;
  #reading = false;
  #again = false;

  constructor(db: QueueDatabase, store: WaiterStore) {
    this.#db = db;
    this.#store = store;
  }

  /** Adds a waiter and reads at once: it listens before its first read, so no finish goes unseen. */
  add(waiter: Waiter): void {
    this.#waiters.add(waiter);
    if (!this.#unsubscribe) {
      const wake = () => this.check();
      const unwatch = this.#store.watchCommits?.("finished", wake) ?? (() => {});
      const unlisten = this.#db.onTasksFinished(wake);
      this.#unsubscribe = () => {
        unwatch();
        unlisten();
      };
    }
    this.#schedulePoll();
    this.check();
  }

  remove(waiter: Waiter): void {
    if (!this.#waiters.delete(waiter) || this.#waiters.size > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearLongTimeout(this.#poll);
    this.#poll = undefined;
  }

  /** Reads every waited task, once more if woken meanwhile. */
  check(): void {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    this.#read().finally(() => {
      this.#reading = false;
      // A wake-up between the read's last look and here.
      if (this.#again) this.check();
    });
  }

  async #read(): Promise<void> {
    do {
      this.#again = false;
      const waiting = [...this.#waiters];
      if (waiting.length === 0) return;
      const ids = [...new Set(waiting.map((waiter) => waiter.id))];
      const found = new Map<number, Task>();
      try {
        for (let i = 0; i < ids.length; i += READ_BATCH) {
          for (const task of await this.#store.taskGetMany(ids.slice(i, i + READ_BATCH))) {
            found.set(task.id, task);
          }
        }
      } catch (error) {
        for (const waiter of waiting) waiter.reject(error);
        continue;
      }
      for (const waiter of waiting) {
        const task = found.get(waiter.id);
        if (!task) waiter.reject(new TaskNotFoundError(waiter.id));
        else if (TERMINAL_STATUSES.includes(task.status)) waiter.resolve(task);
        else waiter.last = task.status;
      }
    } while (this.#again);
  }

  /** One poll for every waiter, at the shortest of their intervals. */
  #schedulePoll(): void {
    clearLongTimeout(this.#poll);
    if (this.#waiters.size === 0) return;
    const ms = Math.min(...[...this.#waiters].map((waiter) => waiter.pollMs));
    this.#poll = longTimeout(() => {
      this.check();
      this.#schedulePoll();
    }, ms);
  }
}

const WAITERS = new WeakMap<QueueDatabase, Waiters>();

/** Resolves with the task once it is completed, failed or cancelled; see {@link WaitForOptions}. */
export async function waitForTask(
  db: QueueDatabase,
  store: WaiterStore,
  id: number,
  options: WaitForOptions,
): Promise<Task> {
  if (typeof options !== "object" || options === null) throw invalidType("The options must be an object.");
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidType("signal must be an AbortSignal.");
  }
  const timeoutMs = duration("timeoutMs", options.timeoutMs ?? Infinity, 0, { infinite: true });
  const pollMs = duration(
    "pollIntervalMs",
    options.pollIntervalMs ?? (store.watchCommits ? 1000 : 200),
    1,
  );
  signal?.throwIfAborted();

  let waiters = WAITERS.get(db);
  if (!waiters) WAITERS.set(db, waiters = new Waiters(db, store));
  let waiter!: Waiter;
  let timer: LongTimeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<Task>((resolve, reject) => {
      waiter = { id, pollMs, last: undefined, resolve, reject };
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        timer = longTimeout(
          () => reject(new WaitTimeoutError(id, timeoutMs, waiter.last ?? "unknown")),
          timeoutMs,
        );
      }
      waiters.add(waiter);
    });
  } finally {
    clearLongTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    waiters.remove(waiter);
  }
}
