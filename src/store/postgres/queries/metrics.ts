/**
 * The metrics' reads (see `store/metrics_sql.ts` for how counters are kept): one transaction that locks the
 * watermark row, folds the settled tail into the stored counters, then reads every counter, each queue's
 * depth and the live workers; and the minutes of throughput for the dashboard.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { MetricCount, MetricsQuery, StoreMetrics, ThroughputMinute } from "../../store.ts";
import {
  advanceWatermarks,
  allCounts,
  foldTail,
  type MetricsDialect,
  ROLLUP_STATE,
  type RollupState,
  watermarksOf,
} from "../../metrics_sql.ts";
import { metricsFrom } from "../../metric_rows.ts";
import type { PgConnection } from "../connection.ts";

export const POSTGRES_METRICS: MetricsDialect = { greatest: "greatest", bigint: "::bigint" };

/**
 * Every figure, in one transaction. The watermark row is locked first (`FOR UPDATE`), so that two reads
 * fold one after the other, and a purge (which locks it `FOR SHARE`) never deletes tasks a fold is
 * counting. Each statement after the lock sees what the ones before it wrote.
 */
export function collectMetrics(conn: PgConnection, query: MetricsQuery): Promise<StoreMetrics> {
  const cutoff = query.now - query.settleMs;
  const now = query.now;
  return conn.begin(async (tx) => {
    const [state] = await conn.rows<RollupState>(ROLLUP_STATE, tx);
    await conn.rows(foldTail(cutoff, POSTGRES_METRICS, state!), tx);
    const [marks] = await conn.rows<{ finishedUntil: number; enqueuedUntil: number }>(
      advanceWatermarks(cutoff, now, POSTGRES_METRICS),
      tx,
    );
    const [counts, queued, running, named, workers] = [
      await conn.rows<MetricCount>(allCounts(POSTGRES_METRICS, watermarksOf(marks!, POSTGRES_METRICS)), tx),
      await conn.rows<{ queue: string; queued: number; scheduled: number; oldest: number | null }>(
        sql`
          SELECT queue, count(*) AS queued, count(*) FILTER (WHERE run_after > ${now}::bigint) AS scheduled,
            min(run_after) FILTER (WHERE run_after <= ${now}::bigint) AS oldest
          FROM task_queue WHERE status = 'queued' GROUP BY queue`,
        tx,
      ),
      await conn.rows<{ queue: string; running: number }>(
        sql`SELECT queue, count(*) AS running FROM task_queue WHERE status = 'running' GROUP BY queue`,
        tx,
      ),
      await conn.rows<{ name: string }>(sql`SELECT name FROM queues`, tx),
      await conn.rows<{ n: number }>(
        sql`SELECT count(*) AS n FROM workers WHERE heartbeat_at >= ${query.liveSince}::bigint`,
        tx,
      ),
    ];
    return metricsFrom(counts, queued, running, named.map((row) => row.name), Number(workers[0]!.n), now);
  });
}

/** Completed and failed tasks per minute since `since`, through the index on finished_at. */
export async function throughput(
  conn: PgConnection,
  since: number,
  until: number,
): Promise<ThroughputMinute[]> {
  const from = Math.floor(since / 60_000) * 60_000;
  const rows = await conn.rows<{ minute: number; completed: number; failed: number }>(sql`
    SELECT (finished_at / 60000) * 60000 AS minute,
      count(*) FILTER (WHERE status = 'completed') AS completed,
      count(*) FILTER (WHERE status = 'failed') AS failed
    FROM task_queue
    WHERE finished_at >= ${from}::bigint AND finished_at <= ${until}::bigint AND status IN ('completed', 'failed')
    GROUP BY 1 ORDER BY 1`);
  return rows.map((row) => ({
    minute: Number(row.minute),
    completed: Number(row.completed),
    failed: Number(row.failed),
  }));
}
