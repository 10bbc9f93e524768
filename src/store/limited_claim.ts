/**
 * Claims from queues with fleet-wide limits. A store claims from the other queues as it always has (one
 * statement that leaves paused and limited queues out); only when the worker serves a limited queue does it
 * claim under limits, in one transaction: lock the limited queues' rows (so that their claims are made one
 * at a time), count their running tasks after the lock, claim in one statement from the free queues and
 * from each limited queue what its limits leave, in the strategy's order across them, and count the claims
 * in the rate limit's window. SQLite runs {@link claimWithLimits}, a few small operations in its own SQL
 * under the write lock; PostgreSQL, where each would be a round trip, does the same after the lock in one
 * statement (`postgres/queries/merged_claim.ts`, which works out {@link currentWindow} and
 * {@link allowance} in SQL). A task claimed ahead from a rate-limited queue carries the end of the window
 * its claim was counted in, and must start before then (see {@link LeasedTask.startBy}), or be counted
 * again in the window it starts in ({@link countAgain}; on PostgreSQL one statement,
 * `postgres/queries/queues.ts`), so that the limit counts starts. Unlimited queues
 * never wait for a lock. Which queues are limited, each store learns from {@link HeldQueueNames}.
 *
 * @module
 */
import type { ClaimParams, LeasedTask } from "./types.ts";

/** A limited queue's settings and rate window, as a claim reads them under its lock. */
export interface LimitedQueue {
  name: string;
  concurrencyLimit: number | null;
  rateLimit: number | null;
  rateIntervalMs: number | null;
  windowStart: number | null;
  windowCount: number;
}

/** How many tasks a claim may take from one limited queue. */
export interface LimitedArm {
  queue: string;
  take: number;
}

/** What a store does, in its own SQL, inside the claim's transaction. */
export interface LimitedClaimOps<Rows> {
  /**
   * Claims, in the strategy's order across them all, from every queue (of `params.queues`) that is neither
   * paused nor limited (unless `withFree` is false), and from each queue of `arms` at most its `take`. The
   * first `params.start` start now; the others are claimed ahead.
   */
  claimMerged(params: ClaimParams, arms: readonly LimitedArm[], withFree: boolean): Promise<Rows>;
  /**
   * Locks the rows of the limited queues that are not paused (of `queues`, when given) until the
   * transaction ends, waiting for any other claim that holds them, and returns them as they are then; a
   * store whose claims run one at a time anyway (SQLite's write lock) only reads them.
   */
  lockLimited(queues: readonly string[] | undefined): Promise<LimitedQueue[]>;
  /** How many tasks of each of these queues are `running` now, as seen after the lock was taken. */
  countRunning(queues: readonly string[]): Promise<Map<string, number>>;
  /** Writes a queue's rate window: when it started and how many claims it has counted. */
  saveWindow(queue: string, start: number, count: number): Promise<void>;
  /** How many tasks of each queue a claim's rows hold. */
  countByQueue(rows: Rows): Map<string, number>;
}

/**
 * The rate window `now` falls in (aligned to epoch time), and the claims it has counted so far. Never one
 * before the window the queue has: a claim reads its time before it waits for the lock (or on a host whose
 * clock is behind), so it may arrive after a later claim opened a newer window; it counts in that one,
 * rather than reopening an older window with a count of 0 (which let 3N through in 3 ms).
 */
export function currentWindow(queue: LimitedQueue, now: number): { start: number; count: number } {
  const interval = queue.rateIntervalMs ?? 1;
  const start = Math.floor(now / interval) * interval;
  if (queue.windowStart !== null && start <= queue.windowStart) {
    return { start: queue.windowStart, count: queue.windowCount };
  }
  return { start, count: 0 };
}

/**
 * How many tasks a claim may take from `queue` now: what its concurrency limit leaves beside its running
 * tasks, and what its rate limit leaves in the current window, at most `wanted`.
 */
export function allowance(queue: LimitedQueue, running: number, now: number, wanted: number): number {
  let n = wanted;
  if (queue.concurrencyLimit !== null) n = Math.min(n, queue.concurrencyLimit - running);
  if (queue.rateLimit !== null) n = Math.min(n, queue.rateLimit - currentWindow(queue, now).count);
  return Math.max(0, n);
}

/**
 * A claim across limited and free queues, inside one transaction the caller holds: each limited queue may
 * give what its limits leave; one statement takes the best of those and of the free queues' tasks in the
 * strategy's order. Returns the claimed rows, and for each rate-limited queue claimed from, the end of the
 * window its claims were counted in: the tasks claimed ahead from it must start before then.
 *
 * @param skipFree when every queue the worker serves is limited, so that the free part would find nothing
 */
export async function claimWithLimits<Rows>(
  params: ClaimParams,
  ops: LimitedClaimOps<Rows>,
  skipFree: boolean,
): Promise<{ rows: Rows; startBy: Map<string, number> }> {
  const limited = await ops.lockLimited(params.queues);
  const arms: LimitedArm[] = [];
  if (limited.length > 0) {
    const running = await ops.countRunning(limited.map((queue) => queue.name));
    for (const queue of limited) {
      const take = allowance(queue, running.get(queue.name) ?? 0, params.now, params.limit);
      if (take > 0) arms.push({ queue: queue.name, take });
    }
  }
  const rows = await ops.claimMerged(params, arms, !skipFree);
  const claimed = ops.countByQueue(rows);
  const startBy = new Map<string, number>();
  for (const queue of limited) {
    const n = claimed.get(queue.name) ?? 0;
    if (queue.rateLimit === null || n === 0) continue;
    const window = currentWindow(queue, params.now);
    await ops.saveWindow(queue.name, window.start, window.count + n);
    startBy.set(queue.name, window.start + queue.rateIntervalMs!);
  }
  return { rows, startBy };
}

/** A queue's row as a count again reads it: its settings, its rate window, and whether it is paused. */
export interface QueueWindow extends LimitedQueue {
  paused: boolean;
}

/** What a store does, in its own SQL, inside the transaction of a count again. */
export interface CountAgainOps {
  /**
   * The queue's row, paused or not, locked until the transaction ends (as a claim locks it; a store whose
   * writes run one at a time anyway only reads it); undefined when the queue has none.
   */
  lockQueue(queue: string): Promise<QueueWindow | undefined>;
  /** Writes a queue's rate window: when it started and how many claims it has counted. */
  saveWindow(queue: string, start: number, count: number): Promise<void>;
}

/**
 * Counts again, in `queue`'s rate window at `now`, `n` tasks claimed ahead whose window ended before they
 * could start (as `Store.queueCountAgain` says), inside one transaction the caller holds: as many as
 * the rate limit leaves room for, written to the window, and the end of that window, which they must start
 * by. A paused queue counts none (its tasks may not start), and lifts no deadline; a queue that has no
 * rate limit now counts all, with no deadline.
 */
export async function countAgain(
  ops: CountAgainOps,
  queue: string,
  n: number,
  now: number,
): Promise<{ counted: number; startBy: number | null }> {
  const row = await ops.lockQueue(queue);
  if (row?.paused) return { counted: 0, startBy: null };
  if (row === undefined || row.rateLimit === null) return { counted: n, startBy: null };
  const window = currentWindow(row, now);
  const counted = Math.max(0, Math.min(n, row.rateLimit - window.count));
  if (counted > 0) await ops.saveWindow(queue, window.start, window.count + counted);
  return { counted, startBy: window.start + row.rateIntervalMs! };
}

/** Marks the tasks claimed ahead from a rate-limited queue with the time they must start by. */
export function withStartBy(leased: LeasedTask[], startBy: ReadonlyMap<string, number>): LeasedTask[] {
  if (startBy.size === 0) return leased;
  for (const item of leased) {
    const by = startBy.get(item.task.queue);
    if (by !== undefined && item.task.startedAt === null) item.startBy = by;
  }
  return leased;
}

/**
 * The queues a plain claim leaves out (`held`: paused or limited), of those the limited, unpaused ones, and
 * the paused ones.
 */
export interface HeldQueues {
  held: readonly string[];
  limited: ReadonlySet<string>;
  paused: ReadonlySet<string>;
}

/**
 * The held queues, read at most once per `ttlMs` (and at once after this process changed a queue's
 * settings): a store asks it before each claim whether the limited path is needed at all. A stale answer
 * costs only time, never a limit: the free claim also leaves out, in the statement itself, every queue
 * held at the moment it runs, so a queue limited or paused since the last read is not claimed from freely,
 * and a queue limited since then waits for the next read to be claimed from under its limits.
 */
export class HeldQueueNames {
  readonly #read: () => Promise<{ name: string; limited: boolean }[]>;
  readonly #ttlMs: number;
  #names: HeldQueues = { held: [], limited: new Set(), paused: new Set() };
  #readAt = -Infinity;
  #reading: Promise<HeldQueues> | null = null;

  constructor(read: () => Promise<{ name: string; limited: boolean }[]>, ttlMs: number) {
    this.#read = read;
    this.#ttlMs = ttlMs;
  }

  /** The names, from the last read when it is recent enough. */
  get(): HeldQueues | Promise<HeldQueues> {
    if (performance.now() - this.#readAt < this.#ttlMs) return this.#names;
    return this.#reading ??= this.#read().then((rows) => {
      this.#names = {
        held: rows.map((row) => row.name),
        limited: new Set(rows.filter((row) => row.limited).map((row) => row.name)),
        paused: new Set(rows.filter((row) => !row.limited).map((row) => row.name)),
      };
      this.#readAt = performance.now();
      return this.#names;
    }).finally(() => {
      this.#reading = null;
    });
  }

  /** Reads again at the next claim. */
  invalidate(): void {
    this.#readAt = -Infinity;
  }
}

/**
 * Which of `limited` a claim of `params` must take from under limits (none: the plain claim does it all),
 * in name order, and whether every queue it serves is among them.
 */
export function limitedScope(
  params: ClaimParams,
  limited: ReadonlySet<string>,
): { limited: boolean; queues: string[]; skipFree: boolean } {
  if (limited.size === 0) return { limited: false, queues: [], skipFree: false };
  const { queues } = params;
  const served = queues === undefined
    ? [...limited]
    : [...new Set(queues.filter((queue) => limited.has(queue)))];
  return {
    limited: served.length > 0,
    queues: served.sort(),
    skipFree: queues !== undefined && queues.every((queue) => limited.has(queue)),
  };
}
