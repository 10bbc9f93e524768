/**
 * The metrics' counters, in SQL both databases speak: how the events of tasks are counted from their rows,
 * and how those counts are kept once the rows are gone.
 *
 * A task's row says what happened to it: its status, its attempts, when it was created, when its last
 * attempt started, and when it finished. Counting every row at every scrape would read the whole table (a million rows, a full scan),
 * and the counts would fall whenever finished tasks are purged. So counting is split at a watermark kept in
 * `metric_rollup`: tasks that finished before `finished_until` (and were enqueued with an id up to
 * `enqueued_until`) are counted in `metric_counts`, one row per counter, type, queue and bucket; the rest,
 * the tail, are counted from their rows, through the index on `finished_at` (and the primary key), at each
 * read. Each read first folds the tail older than a settling time into `metric_counts` and moves the
 * watermark, so the tail stays what happened since the previous read. A purge counts what it deletes from
 * the tail into `metric_counts`, in its own transaction, so nothing counted is lost. The watermarks start
 * where the migration that made these tables found the table (its time, its largest id): counters count
 * from then on.
 *
 * The worker's hot path writes nothing more: claims and outcomes touch only the task's row, as before.
 *
 * The settling time covers transactions that took their time (`now`) before the watermark moved and commit
 * after it: their outcomes would otherwise be missed. Ids are folded one read late for the same reason (on
 * PostgreSQL an id is taken before its transaction commits): `next_enqueued_until` is the largest id when a
 * read looked, and becomes `enqueued_until` at the first read at least the settling time later.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";

/**
 * The upper bounds of the run-time and wait-time histograms' buckets, in milliseconds, then an unbounded
 * one. Stored counts are kept per bound: a PrismQ that changes these must start new counters.
 */
export const HISTOGRAM_BOUNDS_MS: readonly number[] = [
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1_000,
  2_500,
  5_000,
  10_000,
  30_000,
  60_000,
  300_000,
  900_000,
  3_600_000,
  21_600_000,
  86_400_000,
];

/** The bucket of the unbounded last bucket in `metric_counts`. */
export const INFINITE_BUCKET = -1;

/** The counters of events, each a `metric` value in `metric_counts`. */
export const EVENT_METRICS = ["enqueued", "started", "retried", "completed", "failed", "cancelled"] as const;

/** The histograms, each a `metric` value (buckets) and that with `_sum` (milliseconds) in `metric_counts`. */
export const HISTOGRAM_METRICS = ["run_ms", "wait_ms"] as const;

/** The columns a relation of finished tasks must have for {@link eventCounts}. */
export const FINISHED_COLUMNS = sql.raw("type, queue, status, attempts, created_at, started_at, finished_at");

function bucketOf(column: string): SQL {
  const cases = HISTOGRAM_BOUNDS_MS.map((bound) => `WHEN ${column} <= ${bound} THEN ${bound}`).join(" ");
  return sql.raw(`CASE ${cases} ELSE ${INFINITE_BUCKET} END`);
}

/**
 * The counts (`metric, type, queue, bucket, value`) of the events of `finished`, a relation of finished
 * tasks with {@link FINISHED_COLUMNS}, and of `enqueued`, a relation of tasks with `type, queue`.
 *
 * Per finished task: its outcome (its status); `started`, its attempts; `retried`, its attempts after the
 * first; its run time, from the start of its last attempt (`started_at`) to its finish (completed and
 * failed ones that started); its wait, from its enqueue to the start of its last attempt (any that
 * started): a delay asked at enqueue, and earlier attempts and their backoff, included.
 *
 * @param greatest the dialect's two-argument maximum: `max` (SQLite) or `greatest` (PostgreSQL)
 */
export function eventCounts(finished: SQL, enqueued: SQL, greatest: "max" | "greatest"): SQL {
  const most = (a: string) => sql.raw(`${greatest}(${a}, 0)`);
  // One sort of the finished tasks, into a few groups (type, queue, status and the two buckets); each counter
  // is then summed from those groups: seven GROUP BYs of the tasks themselves cost three times as much.
  return sql`
    WITH g AS MATERIALIZED (
      SELECT type, queue, status, run_bucket, wait_bucket, count(*) AS n, sum(attempts) AS attempts,
        sum(${most("attempts - 1")}) AS retried, sum(run_ms) AS run_ms, sum(wait_ms) AS wait_ms
      FROM (
        SELECT type, queue, status, attempts, run_ms, wait_ms,
          CASE WHEN run_ms IS NULL THEN NULL ELSE ${bucketOf("run_ms")} END AS run_bucket,
          CASE WHEN wait_ms IS NULL THEN NULL ELSE ${bucketOf("wait_ms")} END AS wait_bucket
        FROM (
          SELECT type, queue, status, attempts,
            CASE WHEN started_at IS NOT NULL AND status <> 'cancelled'
              THEN ${most("finished_at - started_at")} END AS run_ms,
            CASE WHEN started_at IS NOT NULL THEN ${most("started_at - created_at")} END AS wait_ms
          FROM (${finished}) AS finished_rows
        ) AS timed
      ) AS bucketed
      GROUP BY type, queue, status, run_bucket, wait_bucket
    )
    SELECT status AS metric, type, queue, 0 AS bucket, sum(n) AS value FROM g GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'started', type, queue, 0, sum(attempts) FROM g GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'retried', type, queue, 0, sum(retried) FROM g GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'run_ms', type, queue, run_bucket, sum(n) FROM g
      WHERE run_bucket IS NOT NULL GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'run_ms_sum', type, queue, 0, sum(run_ms) FROM g
      WHERE run_bucket IS NOT NULL GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'wait_ms', type, queue, wait_bucket, sum(n) FROM g
      WHERE wait_bucket IS NOT NULL GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'wait_ms_sum', type, queue, 0, sum(wait_ms) FROM g
      WHERE wait_bucket IS NOT NULL GROUP BY 1, 2, 3, 4
    UNION ALL SELECT 'enqueued', type, queue, 0, count(*) FROM (${enqueued}) AS enqueued_rows GROUP BY 1, 2, 3, 4`;
}

/** Adds `counts` (a query of `metric, type, queue, bucket, value`) into `metric_counts`. */
export function addCounts(counts: SQL): SQL {
  // `WHERE true`: SQLite would read a bare ON CONFLICT after a SELECT's FROM as a join's ON.
  return sql`
    INSERT INTO metric_counts (metric, type, queue, bucket, value)
    SELECT metric, type, queue, bucket, value FROM (${counts}) AS counts WHERE true
    ON CONFLICT (metric, type, queue, bucket) DO UPDATE SET value = metric_counts.value + excluded.value`;
}

/** What differs between the two dialects here. */
export interface MetricsDialect {
  /** The two-argument maximum: `max` (SQLite), `greatest` (PostgreSQL). */
  greatest: "max" | "greatest";
  /** What follows a bound integer: nothing (SQLite), `::bigint` (PostgreSQL). */
  bigint: "" | "::bigint";
}

/** The watermarks, as scalar subqueries. */
const FINISHED_UNTIL = sql`(SELECT finished_until FROM metric_rollup)`;
const ENQUEUED_UNTIL = sql`(SELECT enqueued_until FROM metric_rollup)`;

function int(value: number, dialect: MetricsDialect): SQL {
  return sql`${value}${sql.raw(dialect.bigint)}`;
}

/**
 * Folds the tail older than `cutoff` into `metric_counts`: the outcomes of tasks that finished before it,
 * and the enqueues up to `next_enqueued_until` once that was read at least the settling time ago. The first
 * statement of a read; {@link advanceWatermarks} follows it in the same transaction. With `state` (the row
 * as read under its lock), the watermarks are written in as values, for PostgreSQL's planner.
 */
export function foldTail(cutoff: number, dialect: MetricsDialect, state?: RollupState): SQL {
  const c = int(cutoff, dialect);
  const marks = state
    ? watermarksOf(state, dialect)
    : { finishedUntil: FINISHED_UNTIL, enqueuedUntil: ENQUEUED_UNTIL };
  const due = state
    ? int(
      Number(state.nextEnqueuedAt) <= cutoff ? Number(state.nextEnqueuedUntil) : Number(state.enqueuedUntil),
      dialect,
    )
    : sql`(SELECT CASE WHEN next_enqueued_at <= ${c} THEN next_enqueued_until ELSE enqueued_until END
    FROM metric_rollup)`;
  return addCounts(eventCounts(
    sql`SELECT ${FINISHED_COLUMNS} FROM task_queue
      WHERE finished_at >= ${marks.finishedUntil} AND finished_at < ${c}`,
    sql`SELECT type, queue FROM task_queue WHERE id > ${marks.enqueuedUntil} AND id <= ${due}`,
    dialect.greatest,
  ));
}

/** The row of `metric_rollup`, as {@link ROLLUP_STATE} reads it. */
export interface RollupState {
  finishedUntil: number | string;
  enqueuedUntil: number | string;
  nextEnqueuedUntil: number | string;
  nextEnqueuedAt: number | string;
}

/** Reads the row of `metric_rollup` and locks it for the fold (PostgreSQL). */
export const ROLLUP_STATE = sql`
  SELECT finished_until AS "finishedUntil", enqueued_until AS "enqueuedUntil",
    next_enqueued_until AS "nextEnqueuedUntil", next_enqueued_at AS "nextEnqueuedAt"
  FROM metric_rollup FOR UPDATE`;

/**
 * Moves the watermarks past what {@link foldTail} folded, notes the largest id for the next read, and
 * returns the new watermarks (`finishedUntil`, `enqueuedUntil`).
 */
export function advanceWatermarks(cutoff: number, now: number, dialect: MetricsDialect): SQL {
  const c = int(cutoff, dialect);
  const greatest = sql.raw(dialect.greatest);
  const at = int(now, dialect);
  return sql`
    UPDATE metric_rollup SET
      finished_until = ${greatest}(finished_until, ${c}),
      enqueued_until = CASE WHEN next_enqueued_at <= ${c} THEN next_enqueued_until ELSE enqueued_until END,
      next_enqueued_until = CASE WHEN next_enqueued_at <= ${c}
        THEN ${greatest}(next_enqueued_until, (SELECT coalesce(max(id), 0) FROM task_queue))
        ELSE next_enqueued_until END,
      next_enqueued_at = CASE WHEN next_enqueued_at <= ${c} THEN ${at} ELSE next_enqueued_at END
    RETURNING finished_until AS "finishedUntil", enqueued_until AS "enqueuedUntil"`;
}

/**
 * The watermarks as a query reads them: scalar subqueries by default, or the values themselves, which
 * PostgreSQL's planner needs to see to pick the index on finished_at for a short tail (for a subquery it
 * assumes a third of the table).
 */
export interface Watermarks {
  finishedUntil: SQL;
  enqueuedUntil: SQL;
}

/** The watermarks as values read from `metric_rollup`. */
export function watermarksOf(
  row: { finishedUntil: number | string; enqueuedUntil: number | string },
  dialect: MetricsDialect,
): Watermarks {
  return {
    finishedUntil: int(Number(row.finishedUntil), dialect),
    enqueuedUntil: int(Number(row.enqueuedUntil), dialect),
  };
}

/** Every counter: the stored counts plus the tail's, summed. */
export function allCounts(
  dialect: MetricsDialect,
  marks: Watermarks = { finishedUntil: FINISHED_UNTIL, enqueuedUntil: ENQUEUED_UNTIL },
): SQL {
  const tail = eventCounts(
    sql`SELECT ${FINISHED_COLUMNS} FROM task_queue WHERE finished_at >= ${marks.finishedUntil}`,
    sql`SELECT type, queue FROM task_queue WHERE id > ${marks.enqueuedUntil}`,
    dialect.greatest,
  );
  return sql`
    SELECT metric, type, queue, bucket, sum(value) AS value FROM (
      SELECT metric, type, queue, bucket, value FROM metric_counts
      UNION ALL SELECT * FROM (${tail}) AS tail
    ) AS every_count GROUP BY metric, type, queue, bucket`;
}

/**
 * Counts into `metric_counts` the tail's events of the tasks `doomed` (a relation with
 * {@link FINISHED_COLUMNS} and `id`) is about to delete, so that deleting them leaves every counter as it was.
 */
export function keepCountsOf(doomed: SQL, dialect: MetricsDialect): SQL {
  return addCounts(eventCounts(
    sql`SELECT ${FINISHED_COLUMNS} FROM (${doomed}) AS d WHERE finished_at >= ${FINISHED_UNTIL}`,
    sql`SELECT type, queue FROM (${doomed}) AS d WHERE id > ${ENQUEUED_UNTIL}`,
    dialect.greatest,
  ));
}

/**
 * Counts into `metric_counts` the outcomes not folded yet of the finished tasks `requeued` (a relation with
 * {@link FINISHED_COLUMNS}) an operator is about to queue again: a retry clears `finished_at`, which would
 * take those outcomes out of the tail before they were folded. Their enqueues stay where they are.
 */
export function keepOutcomesOf(requeued: SQL, dialect: MetricsDialect): SQL {
  return addCounts(eventCounts(
    sql`SELECT ${FINISHED_COLUMNS} FROM (${requeued}) AS r WHERE finished_at >= ${FINISHED_UNTIL}`,
    sql`SELECT type, queue FROM task_queue WHERE false`,
    dialect.greatest,
  ));
}
