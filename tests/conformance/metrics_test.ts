/**
 * Conformance: the metrics' figures. Counters per type and queue (enqueued, started, retried, outcomes, and
 * run-time and wait-time histograms) match a database of known tasks, whether their events are still
 * counted from the tasks or already folded into the stored counters, and stay as they were when the tasks
 * are purged; the same figures in Prometheus's text format, read back by a strict parser; depths per queue,
 * live workers, and completed and failed tasks per minute.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { MetricCount, Store, StoreMetrics } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, finish, insert, newTask, T0 } from "./_fixtures.ts";
import { taskCounters } from "../../src/metrics/collect.ts";
import { formatPrometheus } from "../../src/metrics/prometheus.ts";
import { parsePrometheus, valueOf } from "../_prometheus.ts";

const SETTLE_MS = 60_000;

/** The counters as `metric type queue bucket → value`, without zeros (a store may keep a zero or not). */
function countsOf(metrics: StoreMetrics): Record<string, number> {
  const entries = metrics.counts.filter((c) => c.value !== 0).map((c: MetricCount) =>
    [`${c.metric} ${c.type} ${c.queue} ${c.bucket}`, c.value] as const
  );
  return Object.fromEntries(entries.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

function collect(store: Store, now: number, liveSince = T0): Promise<StoreMetrics> {
  return store.metricsCollect({ now, settleMs: SETTLE_MS, liveSince });
}

/**
 * Six tasks: in queue q1, three of type a (one completed after 20 ms, one failed on its second attempt,
 * which started at T0 + 50 and ran 2 s, one running); in q2, two of type b (one cancelled before it ran, one completed after a second); in the
 * default queue, one of type a due in an hour. Every task was enqueued at T0.
 */
async function knownTasks(store: Store): Promise<void> {
  const [, , , , cancelled] = await insert(store, [
    newTask({ type: "a", queue: "q1" }),
    newTask({ type: "a", queue: "q1" }),
    newTask({ type: "a", queue: "q1" }),
    newTask({ type: "b", queue: "q2" }),
    newTask({ type: "b", queue: "q2" }),
    newTask({ type: "a", queue: "default", runAfter: T0 + 3_600_000 }),
  ]);
  const [done, retried] = await claim(store, { queues: ["q1"], limit: 3, now: T0 + 10 });
  await finish(store, [
    { ...fenceOf(done!), status: "completed" },
    { ...fenceOf(retried!), status: "queued", runAfter: T0 + 40, errorMessage: "again" },
  ], T0 + 30);
  const again = await claimOne(store, { queues: ["q1"], now: T0 + 50 });
  assert.equal(again.task.id, retried!.task.id);
  await finish(store, [{ ...fenceOf(again), status: "failed", errorMessage: "broken" }], T0 + 2050);
  await store.taskCancel(cancelled!, T0 + 60);
  const b = await claimOne(store, { queues: ["q2"], now: T0 + 100 });
  await finish(store, [{ ...fenceOf(b), status: "completed" }], T0 + 1100);
}

/** What {@link knownTasks} must count. */
const KNOWN_COUNTS: Record<string, number> = {
  "cancelled b q2 0": 1,
  "completed a q1 0": 1,
  "completed b q2 0": 1,
  "enqueued a default 0": 1,
  "enqueued a q1 0": 3,
  "enqueued b q2 0": 2,
  "failed a q1 0": 1,
  "retried a q1 0": 1,
  // The running task's attempt counts when it finishes.
  "run_ms a q1 25": 1,
  "run_ms a q1 2500": 1,
  "run_ms b q2 1000": 1,
  "run_ms_sum a q1 0": 20 + 2000,
  "run_ms_sum b q2 0": 1000,
  "started a q1 0": 3,
  "started b q2 0": 1,
  "wait_ms a q1 10": 1,
  "wait_ms a q1 50": 1,
  "wait_ms b q2 100": 1,
  "wait_ms_sum a q1 0": 10 + 50,
  "wait_ms_sum b q2 0": 100,
};

describeEachStore("metrics", (it) => {
  it("counters per type and queue match the tasks, before and after they are folded into the stored counts", async ({ store }) => {
    await knownTasks(store);
    const first = await collect(store, T0 + 3000);
    assert.deepEqual(countsOf(first), KNOWN_COUNTS, "counted from the tasks");
    assert.deepEqual(countsOf(await collect(store, T0 + 3000)), KNOWN_COUNTS, "read again at once");
    // Past the settling time, twice: outcomes are folded, then enqueues (one read later).
    for (const now of [T0 + 2 * SETTLE_MS, T0 + 4 * SETTLE_MS, T0 + 6 * SETTLE_MS]) {
      assert.deepEqual(countsOf(await collect(store, now)), KNOWN_COUNTS, `folded, read at T0 + ${now - T0}`);
    }
  });

  it("these figures in the Prometheus format parse, say the same, and their histograms are cumulative", async ({ store }) => {
    await knownTasks(store);
    const read = await collect(store, T0 + 3000);
    const parsed = parsePrometheus(formatPrometheus({
      at: T0 + 3000,
      tasks: taskCounters(read.counts),
      queues: read.depths,
      liveWorkers: read.liveWorkers,
    }));
    const a = { type: "a", queue: "q1" };
    const b = { type: "b", queue: "q2" };
    const expected: [string, Record<string, string>, number][] = [
      ["prismq_tasks_enqueued_total", a, 3],
      ["prismq_tasks_enqueued_total", { type: "a", queue: "default" }, 1],
      ["prismq_tasks_started_total", a, 3],
      ["prismq_tasks_retried_total", a, 1],
      ["prismq_tasks_completed_total", a, 1],
      ["prismq_tasks_failed_total", a, 1],
      ["prismq_tasks_cancelled_total", b, 1],
      ["prismq_tasks_completed_total", b, 1],
      // Run times 20 ms and 2 s: cumulative buckets.
      ["prismq_task_run_seconds_bucket", { ...a, le: "0.01" }, 0],
      ["prismq_task_run_seconds_bucket", { ...a, le: "0.025" }, 1],
      ["prismq_task_run_seconds_bucket", { ...a, le: "1" }, 1],
      ["prismq_task_run_seconds_bucket", { ...a, le: "2.5" }, 2],
      ["prismq_task_run_seconds_bucket", { ...a, le: "+Inf" }, 2],
      ["prismq_task_run_seconds_sum", a, 2.02],
      ["prismq_task_run_seconds_count", a, 2],
      ["prismq_task_wait_seconds_bucket", { ...b, le: "0.1" }, 1],
      ["prismq_task_wait_seconds_sum", b, 0.1],
      ["prismq_queue_tasks", { queue: "q1", status: "running" }, 1],
      ["prismq_queue_tasks", { queue: "default", status: "queued" }, 1],
      ["prismq_queue_scheduled_tasks", { queue: "default" }, 1],
      ["prismq_queue_oldest_wait_seconds", { queue: "q1" }, 0],
      ["prismq_workers_live", {}, 0],
    ];
    for (const [name, labels, value] of expected) {
      assert.equal(valueOf(parsed, name, labels), value, `${name} ${JSON.stringify(labels)}`);
    }
  });

  it("purging finished tasks leaves every counter as it was, folded or not", async ({ store }) => {
    await knownTasks(store);
    // Not folded yet: the purge itself keeps their counts.
    assert.equal(await store.taskPurge(["completed"], T0 + 1050), 1);
    assert.deepEqual(countsOf(await collect(store, T0 + 3000)), KNOWN_COUNTS, "after a purge of the tail");
    await collect(store, T0 + 2 * SETTLE_MS);
    await collect(store, T0 + 4 * SETTLE_MS);
    assert.equal(await store.taskPurge(["completed", "failed", "cancelled"], T0 + 5 * SETTLE_MS), 3);
    assert.deepEqual(
      countsOf(await collect(store, T0 + 6 * SETTLE_MS)),
      KNOWN_COUNTS,
      "after a purge of folded",
    );
  });

  it("an operator's retry of a failed or cancelled task keeps its outcome counted, folded or not", async ({ store }) => {
    await knownTasks(store);
    const [failed] = await store.taskList({ status: "failed", limit: 1, offset: 0 });
    const [cancelled] = await store.taskList({ status: "cancelled", limit: 1, offset: 0 });
    // Before any fold: the retry takes the outcome out of the tail, and keeps it counted.
    await store.taskRequeue(failed!.id, T0 + 2100);
    assert.deepEqual(countsOf(await collect(store, T0 + 3000)), KNOWN_COUNTS, "after a retry of the tail");
    const again = await claimOne(store, { queues: ["q1"], now: T0 + 3000 });
    assert.equal(again.task.id, failed!.id);
    await finish(store, [{ ...fenceOf(again), status: "failed", errorMessage: "still" }], T0 + 3010);
    await collect(store, T0 + 2 * SETTLE_MS);
    await collect(store, T0 + 4 * SETTLE_MS);
    // After the fold: retrying every failed task and the cancelled one adds nothing, takes nothing away.
    assert.equal(await store.taskRequeueFailed(undefined, T0 + 5 * SETTLE_MS), 1);
    await store.taskRequeue(cancelled!.id, T0 + 5 * SETTLE_MS);
    const expected: Record<string, number> = {
      ...KNOWN_COUNTS,
      "failed a q1 0": 2,
      "run_ms a q1 10": 1,
      "run_ms_sum a q1 0": 2020 + 10,
      "started a q1 0": 4,
      "wait_ms a q1 5000": 1,
      "wait_ms_sum a q1 0": 60 + 3000,
    };
    assert.deepEqual(countsOf(await collect(store, T0 + 6 * SETTLE_MS)), expected, "after retries of folded");
  });

  it("events after a fold are counted once, and counters never go down", async ({ store }) => {
    await knownTasks(store);
    await collect(store, T0 + 2 * SETTLE_MS);
    await collect(store, T0 + 4 * SETTLE_MS);
    await insert(store, [newTask({ type: "b", queue: "q2" })], T0 + 5 * SETTLE_MS);
    const later = await claimOne(store, { queues: ["q2"], now: T0 + 5 * SETTLE_MS + 5 });
    await finish(store, [{ ...fenceOf(later), status: "completed" }], T0 + 5 * SETTLE_MS + 8);
    const expected: Record<string, number> = {
      ...KNOWN_COUNTS,
      "completed b q2 0": 2,
      "enqueued b q2 0": 3,
      "run_ms b q2 5": 1,
      "run_ms_sum b q2 0": 1003,
      "started b q2 0": 2,
      "wait_ms b q2 5": 1,
      "wait_ms_sum b q2 0": 105,
    };
    let previous: Record<string, number> = {};
    for (let i = 6; i <= 10; i++) {
      const counts = countsOf(await collect(store, T0 + i * SETTLE_MS));
      assert.deepEqual(counts, expected, `read at T0 + ${i} settling times`);
      for (const [key, value] of Object.entries(previous)) assert.ok((counts[key] ?? 0) >= value, key);
      previous = counts;
    }
  });

  it("depth per queue: queued, due later, running, the oldest runnable wait; live workers by heartbeat", async ({ store }) => {
    await knownTasks(store);
    await insert(store, [newTask({ type: "c", queue: "q3" })], T0 + 500);
    await store.workerHeartbeat(
      {
        id: "w1",
        host: null,
        pid: null,
        startedAt: T0,
        heartbeatAt: T0 + 2000,
        concurrency: 1,
        handlerTypes: ["a"],
      },
      [],
      T0 + 3000,
    );
    await store.queueUpdate("empty", { paused: true }, T0);
    const metrics = await collect(store, T0 + 3000);
    assert.deepEqual(metrics.depths, [
      { queue: "default", queued: 1, scheduled: 1, running: 0, oldestWaitMs: null },
      { queue: "empty", queued: 0, scheduled: 0, running: 0, oldestWaitMs: null },
      { queue: "q1", queued: 0, scheduled: 0, running: 1, oldestWaitMs: null },
      { queue: "q2", queued: 0, scheduled: 0, running: 0, oldestWaitMs: null },
      { queue: "q3", queued: 1, scheduled: 0, running: 0, oldestWaitMs: 3000 },
    ]);
    assert.equal(metrics.liveWorkers, 1);
    assert.equal((await collect(store, T0 + 3000, T0 + 2001)).liveWorkers, 0, "heartbeat before liveSince");
  });

  it("throughput: completed and failed tasks per minute, oldest first, empty minutes left out", async ({ store }) => {
    await knownTasks(store);
    await insert(store, [newTask({ type: "b", queue: "q2" })], T0 + 120_000);
    const later = await claimOne(store, { queues: ["q2"], now: T0 + 120_000 });
    await finish(store, [{ ...fenceOf(later), status: "completed" }], T0 + 150_000);
    assert.deepEqual(await store.metricsThroughput(T0 - 3_600_000 + 1, T0 + 200_000), [
      { minute: T0, completed: 2, failed: 1 },
      { minute: T0 + 120_000, completed: 1, failed: 0 },
    ]);
    assert.deepEqual(await store.metricsThroughput(T0 + 60_001, T0 + 200_000), [
      { minute: T0 + 120_000, completed: 1, failed: 0 },
    ], "since is rounded down to its minute");
  });
});
