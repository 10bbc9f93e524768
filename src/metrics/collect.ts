/**
 * The queue's figures as an object: what `GET /metrics` formats (`prometheus.ts`), and what a library user
 * reads directly. They come from the database, so any one process reports the whole fleet.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { clockOption, duration, kindOf } from "../checks.ts";
import type { QueueDatabase } from "../database.ts";
import { invalidType } from "../errors.ts";
import { HISTOGRAM_BOUNDS_MS, INFINITE_BUCKET } from "../store/metrics_sql.ts";
import { storeOf } from "../store/store_of.ts";
import type { MetricCount, QueueDepth, ThroughputMinute } from "../store/store.ts";

/** A histogram of durations, cumulative as Prometheus has them: each bucket counts every value up to it. */
export interface DurationHistogram {
  /** Upper bounds in milliseconds, ascending, the last `Infinity`, each with how many values are at most it. */
  buckets: { leMs: number; count: number }[];
  /** The sum of every value, in milliseconds. */
  sumMs: number;
  /** How many values: the `Infinity` bucket's count. */
  count: number;
}

/**
 * The counters of one task type in one queue, since the database got metrics (migration 11 on SQLite, 9 on
 * PostgreSQL; the tasks it held then are not counted). They never go down: purged tasks stay counted.
 */
export interface TaskCounters {
  type: string;
  queue: string;
  /** Tasks inserted. */
  enqueued: number;
  /** Attempts started, counted when their task finishes (completed, failed, cancelled). */
  started: number;
  /** Attempts after each task's first, counted when their task finishes. */
  retried: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Completed and failed tasks: from the start of their last attempt to their finish. */
  runTime: DurationHistogram;
  /** Tasks that started: from their enqueue to the start of their last attempt. */
  waitTime: DurationHistogram;
}

/** Everything {@link collectMetrics} reads. */
export interface Metrics {
  /** When they were read, on the clock the database's times are compared on (epoch ms). */
  at: number;
  /** Per task type and queue, sorted by type, then queue. */
  tasks: TaskCounters[];
  /** Per queue, by name: tasks queued (and of those, due later), running, and the oldest runnable wait. */
  queues: QueueDepth[];
  /** Workers whose heartbeat is at most `liveWithinMs` old. */
  liveWorkers: number;
}

/** Options of {@link collectMetrics}. */
export interface CollectMetricsOptions {
  /** The clock `at` is read from, corrected to the database server's as queues and workers are. @default systemClock */
  clock?: Clock | undefined;
  /** A worker is live while its last heartbeat is at most this old. @default 30000 */
  liveWithinMs?: number | undefined;
}

/**
 * How long after a task finishes its events are folded into the stored counters: longer than any write
 * transaction takes between reading its time and committing (see `store/metrics_sql.ts`).
 */
const SETTLE_MS = 60_000;

/** The corrected clock for `db` and `clock`, synced with the server once. */
async function nowOf(db: QueueDatabase, clock: Clock | undefined): Promise<number> {
  const corrected = db.clockFor(clock === undefined ? systemClock : clockOption("clock", clock));
  await db.syncClock(corrected);
  return corrected.now();
}

function optionsOf<T extends object>(name: string, options: unknown): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null) {
    throw invalidType(`${name} options must be an object, got ${kindOf(options)}.`);
  }
  return options as Partial<T>;
}

/**
 * Reads the queue's figures for the whole fleet: counters and histograms per task type and queue, each
 * queue's depth and oldest wait, and the live workers. One transaction; its cost follows what happened since
 * the previous read (by any process), not the number of tasks (see the README's Metrics section).
 *
 * @example
 * ```ts
 * import { collectMetrics, formatPrometheus, Queue, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * await new Queue(db).enqueue("send_email", { to: "ada@example.com" });
 * const metrics = await collectMetrics(db);
 * console.log(metrics.tasks[0]?.enqueued); // 1
 * console.log(formatPrometheus(metrics));
 * await db.close();
 * ```
 *
 * @param db the database
 * @param options `clock`, `liveWithinMs`
 * @returns the figures
 * @throws {TypeError} for a `db` that is not a QueueDatabase, or options of the wrong type
 * @throws {RangeError} for a `liveWithinMs` that is not a whole number of milliseconds
 */
export async function collectMetrics(db: QueueDatabase, options?: CollectMetricsOptions): Promise<Metrics> {
  const store = storeOf(db);
  const given = optionsOf<CollectMetricsOptions>("collectMetrics", options);
  const liveWithinMs = duration("liveWithinMs", given.liveWithinMs ?? 30_000);
  const now = await nowOf(db, given.clock);
  const read = await store.metricsCollect({ now, settleMs: SETTLE_MS, liveSince: now - liveWithinMs });
  return { at: now, tasks: taskCounters(read.counts), queues: read.depths, liveWorkers: read.liveWorkers };
}

/** Options of {@link throughput}. */
export interface ThroughputOptions {
  /** How many minutes back, the current one included. @default 60 */
  minutes?: number | undefined;
  /** @default systemClock */
  clock?: Clock | undefined;
}

/**
 * Completed and failed tasks per minute over the last `minutes` (for a dashboard's chart): one entry per
 * minute, oldest first, zeros included. Reads the tasks that finished in that time, through the index on
 * their finish time.
 *
 * @param db the database
 * @param options `minutes` (1 to 1440), `clock`
 * @returns a minute's start (epoch ms) and its counts, for each minute
 * @throws {RangeError} for `minutes` outside 1 to 1440
 */
export async function throughput(
  db: QueueDatabase,
  options?: ThroughputOptions,
): Promise<ThroughputMinute[]> {
  const store = storeOf(db);
  const given = optionsOf<ThroughputOptions>("throughput", options);
  const minutes = given.minutes === undefined ? 60 : wholeMinutes(given.minutes);
  const now = await nowOf(db, given.clock);
  const first = (Math.floor(now / 60_000) - minutes + 1) * 60_000;
  const found = new Map((await store.metricsThroughput(first, now)).map((m) => [m.minute, m]));
  return Array.from({ length: minutes }, (_, i) => {
    const minute = first + i * 60_000;
    return found.get(minute) ?? { minute, completed: 0, failed: 0 };
  });
}

function wholeMinutes(value: unknown): number {
  if (typeof value !== "number") throw invalidType(`minutes must be a number, got ${kindOf(value)}.`);
  if (!Number.isInteger(value) || value < 1 || value > 1440) {
    throw new RangeError(`minutes must be a whole number from 1 to 1440 (a day), got ${value}.`);
  }
  return value;
}

/** The store's counts as counters per type and queue, histograms made cumulative. */
export function taskCounters(counts: readonly MetricCount[]): TaskCounters[] {
  const byKey = new Map<
    string,
    TaskCounters & { runBuckets: Map<number, number>; waitBuckets: Map<number, number> }
  >();
  for (const c of counts) {
    const key = JSON.stringify([c.type, c.queue]);
    let entry = byKey.get(key);
    if (!entry) {
      entry = {
        type: c.type,
        queue: c.queue,
        enqueued: 0,
        started: 0,
        retried: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        runTime: { buckets: [], sumMs: 0, count: 0 },
        waitTime: { buckets: [], sumMs: 0, count: 0 },
        runBuckets: new Map(),
        waitBuckets: new Map(),
      };
      byKey.set(key, entry);
    }
    switch (c.metric) {
      case "enqueued":
      case "started":
      case "retried":
      case "completed":
      case "failed":
      case "cancelled":
        entry[c.metric] += c.value;
        break;
      case "run_ms":
        entry.runBuckets.set(c.bucket, (entry.runBuckets.get(c.bucket) ?? 0) + c.value);
        break;
      case "wait_ms":
        entry.waitBuckets.set(c.bucket, (entry.waitBuckets.get(c.bucket) ?? 0) + c.value);
        break;
      case "run_ms_sum":
        entry.runTime.sumMs += c.value;
        break;
      case "wait_ms_sum":
        entry.waitTime.sumMs += c.value;
        break;
        // A counter a newer PrismQ added is left out rather than misread.
    }
  }
  return [...byKey.values()]
    .map(({ runBuckets, waitBuckets, ...counters }) => ({
      ...counters,
      runTime: cumulative(runBuckets, counters.runTime.sumMs),
      waitTime: cumulative(waitBuckets, counters.waitTime.sumMs),
    }))
    .sort((a, b) => compare(a.type, b.type) || compare(a.queue, b.queue));
}

function cumulative(perBucket: ReadonlyMap<number, number>, sumMs: number): DurationHistogram {
  let count = 0;
  const buckets = [...HISTOGRAM_BOUNDS_MS, Infinity].map((leMs) => {
    count += perBucket.get(leMs === Infinity ? INFINITE_BUCKET : leMs) ?? 0;
    return { leMs, count };
  });
  return { buckets, sumMs, count };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
