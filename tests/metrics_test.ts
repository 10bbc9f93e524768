/**
 * The metrics as a library user and Prometheus see them: `collectMetrics` on a database of known tasks run
 * by a real worker, `formatPrometheus`'s text read back by a strict parser of the exposition format (line
 * grammar, escaping, one HELP and TYPE per family before its samples, histograms cumulative up to +Inf with
 * `_count` equal to it), `throughput`, and the errors for bad arguments.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  collectMetrics,
  formatPrometheus,
  ManualClock,
  type Metrics,
  NonRetryableError,
  Queue,
  type QueueDatabase,
  TaskHandlerRegistry,
  throughput,
  WorkerEngine,
} from "../mod.ts";
import { T0, withDb } from "./_helpers.ts";
import { parsePrometheus, valueOf } from "./_prometheus.ts";

/**
 * Known tasks, run by a real worker on a ManualClock standing at T0 (every duration 0): in queue `mail`,
 * three `send` that complete and one `send` that fails; in `default`, two `report` that complete and one
 * `report` due in an hour.
 */
async function runKnownTasks(db: QueueDatabase, clock: ManualClock): Promise<void> {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("send", (task) => {
    if ((task.payload as { fail?: boolean }).fail) throw new NonRetryableError("mailbox gone");
  });
  registry.registerHandler("report", () => {});
  const queue = new Queue(db, { clock, registry });
  for (let i = 0; i < 3; i++) await queue.enqueue("send", {}, { queue: "mail" });
  await queue.enqueue("send", { fail: true }, { queue: "mail" });
  await queue.enqueue("report", {});
  await queue.enqueue("report", {});
  await queue.enqueue("report", {}, { delayMs: 3_600_000 });
  const worker = new WorkerEngine({
    db,
    workerId: "w1",
    handlerRegistry: registry,
    clock,
    queues: ["mail", "default"],
  });
  await worker.runLoop({ untilEmpty: true });
}

test("collectMetrics counts a real worker's tasks per type and queue; the Prometheus text parses and says the same", async () => {
  await withDb(async (db) => {
    const clock = new ManualClock(T0);
    await runKnownTasks(db, clock);
    const metrics = await collectMetrics(db, { clock });
    assert.equal(metrics.at, T0);
    assert.deepEqual(
      metrics.tasks.map((
        t,
      ) => [t.type, t.queue, t.enqueued, t.started, t.retried, t.completed, t.failed, t.cancelled]),
      [["report", "default", 3, 2, 0, 2, 0, 0], ["send", "mail", 4, 4, 0, 3, 1, 0]],
    );
    assert.deepEqual(metrics.queues, [
      { queue: "default", queued: 1, scheduled: 1, running: 0, oldestWaitMs: null },
      { queue: "mail", queued: 0, scheduled: 0, running: 0, oldestWaitMs: null },
    ]);

    const parsed = parsePrometheus(formatPrometheus(metrics));
    const send = { type: "send", queue: "mail" };
    assert.equal(valueOf(parsed, "prismq_tasks_enqueued_total", send), 4);
    assert.equal(valueOf(parsed, "prismq_tasks_completed_total", send), 3);
    assert.equal(valueOf(parsed, "prismq_tasks_failed_total", send), 1);
    assert.equal(valueOf(parsed, "prismq_tasks_completed_total", { type: "report", queue: "default" }), 2);
    // Every duration is 0 on the ManualClock: all in the first bucket, and so in every bucket after it.
    assert.equal(valueOf(parsed, "prismq_task_run_seconds_bucket", { ...send, le: "0.005" }), 4);
    assert.equal(valueOf(parsed, "prismq_task_run_seconds_bucket", { ...send, le: "+Inf" }), 4);
    assert.equal(valueOf(parsed, "prismq_task_run_seconds_sum", send), 0);
    assert.equal(valueOf(parsed, "prismq_task_wait_seconds_count", send), 4);
    assert.equal(valueOf(parsed, "prismq_queue_tasks", { queue: "default", status: "queued" }), 1);
    assert.equal(valueOf(parsed, "prismq_queue_scheduled_tasks", { queue: "default" }), 1);
    assert.equal(valueOf(parsed, "prismq_workers_live", {}), 0, "the worker removed its row when it stopped");
    assert.deepEqual([...parsed.types.keys()].sort(), [
      "prismq_queue_oldest_wait_seconds",
      "prismq_queue_scheduled_tasks",
      "prismq_queue_tasks",
      "prismq_task_run_seconds",
      "prismq_task_wait_seconds",
      "prismq_tasks_cancelled_total",
      "prismq_tasks_completed_total",
      "prismq_tasks_enqueued_total",
      "prismq_tasks_failed_total",
      "prismq_tasks_retried_total",
      "prismq_tasks_started_total",
      "prismq_workers_live",
    ]);
  });
});

test('formatPrometheus escapes \\, " and line feeds in label values, and histograms are cumulative', () => {
  const hostile = 'say "hi"\\now\nthen';
  const zero = { buckets: [{ leMs: 5, count: 0 }, { leMs: Infinity, count: 0 }], sumMs: 0, count: 0 };
  const metrics: Metrics = {
    at: T0,
    tasks: [{
      type: hostile,
      queue: "q",
      enqueued: 3,
      started: 2,
      retried: 0,
      completed: 2,
      failed: 0,
      cancelled: 0,
      runTime: {
        buckets: [{ leMs: 5, count: 1 }, { leMs: 2500, count: 2 }, { leMs: Infinity, count: 2 }],
        sumMs: 1504,
        count: 2,
      },
      waitTime: zero,
    }],
    queues: [{ queue: "q", queued: 1, scheduled: 0, running: 0, oldestWaitMs: 1500 }],
    liveWorkers: 3,
  };
  const text = formatPrometheus(metrics);
  assert.ok(text.includes(String.raw`type="say \"hi\"\\now\nthen"`), text);
  const parsed = parsePrometheus(text);
  const labels = { type: hostile, queue: "q" };
  assert.equal(valueOf(parsed, "prismq_tasks_enqueued_total", labels), 3, "the label reads back as it was");
  assert.equal(valueOf(parsed, "prismq_task_run_seconds_bucket", { ...labels, le: "2.5" }), 2);
  assert.equal(valueOf(parsed, "prismq_task_run_seconds_sum", labels), 1.504);
  assert.equal(valueOf(parsed, "prismq_queue_oldest_wait_seconds", { queue: "q" }), 1.5);
  assert.equal(valueOf(parsed, "prismq_workers_live", {}), 3);
});

test("the strict parser refuses what the format does not allow", () => {
  const bad = [
    "prismq_x 1", // no TYPE
    '# TYPE prismq_x counter\n# HELP prismq_x x\nprismq_x{a="b\\q"} 1', // a bad escape
    "# TYPE prismq_x counter\n# HELP prismq_x x\nprismq_x 1\nprismq_x 2", // a series twice
    '# TYPE h histogram\n# HELP h x\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1', // falling
    '# TYPE h histogram\n# HELP h x\nh_bucket{le="1"} 1\nh_sum 0\nh_count 1', // no +Inf
  ];
  for (const text of bad) assert.throws(() => parsePrometheus(`${text}\n`), assert.AssertionError, text);
});

test("throughput gives one entry per minute, zeros included, with the tasks that finished in each", async () => {
  await withDb(async (db) => {
    const clock = new ManualClock(T0 + 30_000);
    await runKnownTasks(db, clock);
    clock.set(T0 + 150_000);
    const minutes = await throughput(db, { minutes: 5, clock });
    assert.deepEqual(minutes, [
      { minute: T0 - 120_000, completed: 0, failed: 0 },
      { minute: T0 - 60_000, completed: 0, failed: 0 },
      { minute: T0, completed: 5, failed: 1 },
      { minute: T0 + 60_000, completed: 0, failed: 0 },
      { minute: T0 + 120_000, completed: 0, failed: 0 },
    ]);
    assert.equal((await throughput(db, { clock })).length, 60, "an hour by default");
  });
});

test("bad arguments are refused with errors that say what is wrong", async () => {
  await withDb(async (db) => {
    await assert.rejects(collectMetrics({} as QueueDatabase), /Expected a QueueDatabase/);
    await assert.rejects(collectMetrics(db, { liveWithinMs: -1 }), RangeError);
    await assert.rejects(collectMetrics(db, 5 as never), /collectMetrics options must be an object/);
    await assert.rejects(throughput(db, { minutes: 0 }), /minutes must be a whole number from 1 to 1440/);
    await assert.rejects(throughput(db, { minutes: "5" as never }), TypeError);
  });
});
