/**
 * The metrics' figures from the rows either store reads: numbers as numbers (drivers give some counts as
 * text or bigint), and a depth for every queue named anywhere, so that a queue that empties reports 0.
 *
 * @module
 */
import type { MetricCount, QueueDepth, StoreMetrics } from "./types.ts";

/** The figures from the rows read, with numbers as numbers and a depth for every queue named anywhere. */
export function metricsFrom(
  counts: readonly MetricCount[],
  queued: readonly { queue: string; queued: number; scheduled: number; oldest: number | null }[],
  running: readonly { queue: string; running: number }[],
  named: readonly string[],
  liveWorkers: number,
  now: number,
): StoreMetrics {
  const depths = new Map<string, QueueDepth>();
  const depthOf = (queue: string) => {
    let depth = depths.get(queue);
    if (!depth) {
      depth = { queue, queued: 0, scheduled: 0, running: 0, oldestWaitMs: null };
      depths.set(queue, depth);
    }
    return depth;
  };
  for (const name of named) depthOf(name);
  for (const count of counts) depthOf(count.queue);
  for (const row of queued) {
    const depth = depthOf(row.queue);
    depth.queued = Number(row.queued);
    depth.scheduled = Number(row.scheduled);
    depth.oldestWaitMs = row.oldest === null ? null : Math.max(0, now - Number(row.oldest));
  }
  for (const row of running) depthOf(row.queue).running = Number(row.running);
  return {
    counts: counts.map((c) => ({
      metric: c.metric,
      type: c.type,
      queue: c.queue,
      bucket: Number(c.bucket),
      value: Number(c.value),
    })),
    depths: [...depths.values()].sort((a, b) => a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0),
    liveWorkers,
  };
}
