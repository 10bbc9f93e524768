/**
 * The metrics' reads (see `store/metrics_sql.ts` for how counters are kept): one write transaction that
 * folds the settled tail into the stored counters, then reads every counter, each queue's depth and the
 * live workers; and the minutes of throughput for the dashboard.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { MetricCount, MetricsQuery, StoreMetrics, ThroughputMinute } from "../../store.ts";
import { metricsFrom } from "../../metric_rows.ts";
import { advanceWatermarks, allCounts, foldTail, type MetricsDialect } from "../../metrics_sql.ts";
import type { Connection } from "../connection.ts";
import { all, batch } from "../sql.ts";

export const SQLITE_METRICS: MetricsDialect = { greatest: "max", bigint: "" };

/** Every figure, in one batch: one write transaction, so the fold and the reads see the same tasks. */
export async function collectMetrics(conn: Connection, query: MetricsQuery): Promise<StoreMetrics> {
  const cutoff = query.now - query.settleMs;
  const [, , counts, queued, running, named, workers] = await batch(conn, [
    foldTail(cutoff, SQLITE_METRICS),
    advanceWatermarks(cutoff, query.now, SQLITE_METRICS),
    allCounts(SQLITE_METRICS),
    // From the claim index alone (it holds run_after and queue): as many entries as tasks queued.
    sql`
      SELECT queue, count(*) AS queued, sum(run_after > ${query.now}) AS scheduled,
        min(CASE WHEN run_after <= ${query.now} THEN run_after END) AS oldest
      FROM task_queue WHERE status = 'queued' GROUP BY queue`,
    // From the lease index alone (it holds the queue): as many entries as tasks running.
    sql`SELECT queue, count(*) AS running FROM task_queue WHERE status = 'running' GROUP BY queue`,
    sql`SELECT name FROM queues`,
    sql`SELECT count(*) AS n FROM workers WHERE heartbeat_at >= ${query.liveSince}`,
  ]) as [
    unknown,
    unknown,
    MetricCount[],
    { queue: string; queued: number; scheduled: number; oldest: number | null }[],
    { queue: string; running: number }[],
    { name: string }[],
    { n: number }[],
  ];
  return metricsFrom(counts, queued, running, named.map((row) => row.name), Number(workers[0]!.n), query.now);
}

/** Completed and failed tasks per minute since `since`, through the index on finished_at. */
export async function throughput(
  conn: Connection,
  since: number,
  until: number,
): Promise<ThroughputMinute[]> {
  const from = Math.floor(since / 60_000) * 60_000;
  const rows = await all<{ minute: number; completed: number; failed: number }>(
    conn,
    sql`
      SELECT (finished_at / 60000) * 60000 AS minute,
        sum(status = 'completed') AS completed, sum(status = 'failed') AS failed
      FROM task_queue
      WHERE finished_at >= ${from} AND finished_at <= ${until} AND status IN ('completed', 'failed')
      GROUP BY 1 ORDER BY 1`,
  );
  return rows.map((row) => ({
    minute: Number(row.minute),
    completed: Number(row.completed),
    failed: Number(row.failed),
  }));
}
