/**
 * Retry policies per handler and per task, over the worker's (precedence task > handler > worker, field by
 * field), and snoozes: a handler that throws `SnoozeError` runs again later without using an attempt.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  defineHandler,
  NonRetryableError,
  Queue,
  QueueDatabase,
  SnoozeError,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { createTestQueue } from "../testing.ts";
import { retryOverrides, retryPolicyFor } from "../src/retry.ts";
import { deferred, withDb } from "./_helpers.ts";

function failing(type: string, fields: Record<string, unknown> = {}) {
  return defineHandler({
    type,
    schema: v.object({}),
    handle() {
      throw new Error("not yet");
    },
    ...fields,
  });
}

describe("retry policies", () => {
  test("retryPolicyFor takes each field from the task, else the handler, else the worker", () => {
    const worker = { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 60_000, jitter: 0.1 };
    assert.equal(retryPolicyFor(worker), worker);
    assert.deepEqual(
      retryPolicyFor(worker, { multiplier: 3, jitter: 0 }, { initialDelayMs: 10, jitter: 0.5 }),
      {
        initialDelayMs: 10,
        multiplier: 3,
        maxDelayMs: 60_000,
        jitter: 0.5,
      },
    );
    assert.deepEqual(retryPolicyFor(worker, null, { maxDelayMs: 5 }), { ...worker, maxDelayMs: 5 });
  });

  test("a retry option is checked field by field, and an unknown field is named", () => {
    assert.equal(retryOverrides("retry", undefined), null);
    assert.equal(retryOverrides("retry", {}), null);
    assert.deepEqual(retryOverrides("retry", { jitter: 0, initialDelayMs: 5, multiplier: undefined }), {
      initialDelayMs: 5,
      jitter: 0,
    });
    assert.throws(
      () => retryOverrides("retry", { jitter: 2 }),
      /retry\.jitter must be between 0 and 1, got 2/,
    );
    assert.throws(
      () => retryOverrides("retry", { multiplier: 0.5 }),
      /retry\.multiplier must be a number ≥ 1/,
    );
    assert.throws(() => retryOverrides("retry", { delay: 5 }), /retry\.delay is not a retry option/);
    assert.throws(() => retryOverrides("retry", 5), /retry must be an object/);
    assert.throws(
      () => failing("bad", { retry: { initialDelayMs: -1 } }),
      /The retry of handler 'bad'\.initialDelayMs must be a number of milliseconds/,
    );
    assert.throws(() => failing("bad", { maxAttempts: 0 }), /maxAttempts of handler 'bad'/);
  });

  test("a failed attempt backs off by the task's retry over the handler's over the worker's", async () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(failing("plain"));
    registry.registerHandler(failing("tuned", { retry: { initialDelayMs: 50, multiplier: 3 } }));
    const testQueue = await createTestQueue({ registry, retry: { initialDelayMs: 700, multiplier: 2 } });
    try {
      const { queue, clock } = testQueue;
      const plain = await queue.enqueue("plain", {});
      const tuned = await queue.enqueue("tuned", {});
      const own = await queue.enqueue("tuned", {}, { retry: { initialDelayMs: 9 } });
      assert.deepEqual(own.retryPolicy, { initialDelayMs: 9 });
      assert.deepEqual((await queue.get(own.id))?.retryPolicy, { initialDelayMs: 9 });
      assert.equal(plain.retryPolicy, null);
      const delays = async () =>
        new Map((await testQueue.drain()).map((ran) => [ran.id, ran.retryAt! - clock.now()]));
      const first = await delays();
      assert.deepEqual([first.get(plain.id), first.get(tuned.id), first.get(own.id)], [700, 50, 9]);
      clock.advance(1000);
      const second = await delays();
      // The worker's multiplier for the first; the handler's for the others, the task's initial delay kept.
      assert.deepEqual([second.get(plain.id), second.get(tuned.id), second.get(own.id)], [1400, 150, 27]);
    } finally {
      await testQueue.close();
    }
  });

  test("a handler's maxAttempts is its tasks' default at enqueue; a task's own wins", async () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(failing("twice", { maxAttempts: 2, retry: { initialDelayMs: 0 } }));
    const testQueue = await createTestQueue({ registry });
    try {
      const { queue } = testQueue;
      const byHandler = await queue.enqueue("twice", {});
      const byTask = await queue.enqueue("twice", {}, { maxAttempts: 4 });
      assert.deepEqual([byHandler.maxAttempts, byTask.maxAttempts], [2, 4]);
      const [many] = await queue.enqueueMany([{ type: "twice" }]);
      assert.equal(many!.maxAttempts, 2);
      const ran = [...await testQueue.drain(), ...await testQueue.drain(), ...await testQueue.drain()];
      const attemptsOf = (id: number) => ran.filter((r) => r.id === id).map((r) => r.outcome);
      assert.deepEqual(attemptsOf(byHandler.id), ["retrying", "failed"]);
      assert.deepEqual(attemptsOf(byTask.id), ["retrying", "retrying", "retrying", "failed"]);
    } finally {
      await testQueue.close();
    }
  });

  test("a task's retry is stored with it: a worker on another handle of the database backs off by it", async () => {
    await withDb(async (db, path) => {
      const t0 = Date.now();
      const task = await new Queue(db).enqueue("flaky", {}, {
        retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000, jitter: 0 },
      });
      // Another handle on the file stands for another process: nothing is shared but the database.
      const other = new QueueDatabase(path);
      try {
        const registry = new TaskHandlerRegistry();
        registry.registerHandler("flaky", () => {
          throw new Error("down");
        });
        await new WorkerEngine({ db: other, workerId: "w", handlerRegistry: registry }).claimAndProcess();
      } finally {
        await other.close();
      }
      const after = (await new Queue(db).get(task.id))!;
      assert.equal(after.status, "queued");
      assert.ok(
        after.runAfter >= t0 + 3_600_000,
        `due in an hour, not the worker's 1 s: ${after.runAfter - t0}`,
      );
    });
  });
});

describe("snoozes", () => {
  test("SnoozeError queues the task again after its delay, the attempt given back", async () => {
    const registry = new TaskHandlerRegistry();
    let calls = 0;
    registry.registerHandler(defineHandler({
      type: "poll_report",
      schema: v.object({}),
      handle(_task, ctx) {
        calls++;
        if (calls < 4) throw new SnoozeError(30_000);
        return { ready: true, attempt: ctx.attempt };
      },
    }));
    const testQueue = await createTestQueue({ registry });
    try {
      const { queue, clock } = testQueue;
      // One attempt allowed: snoozes must not use it up.
      const task = await queue.enqueue("poll_report", {}, { maxAttempts: 1 });
      for (let i = 0; i < 3; i++) {
        const [ran] = await testQueue.drain();
        assert.deepEqual([ran!.outcome, ran!.retryAt, ran!.error], ["snoozed", clock.now() + 30_000, null]);
        const stored = (await queue.get(task.id))!;
        assert.deepEqual([stored.status, stored.attempts, stored.errorMessage], ["queued", 0, null]);
        assert.deepEqual(await testQueue.drain(), [], "not due before its delay");
        clock.advance(30_000);
      }
      const [last] = await testQueue.drain();
      assert.equal(last!.outcome, "completed");
      const done = (await queue.get(task.id))!;
      assert.deepEqual([done.status, done.attempts, done.result], ["completed", 1, {
        ready: true,
        attempt: 1,
      }]);
    } finally {
      await testQueue.close();
    }
  });

  test("a snooze keeps the last error, and a worker that lost the task snoozes nothing", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      let fail = true;
      registry.registerHandler("t", () => {
        if (fail) throw new Error("first try failed");
        throw new SnoozeError(1000);
      });
      const events: string[] = [];
      const worker = new WorkerEngine({
        db,
        workerId: "w",
        handlerRegistry: registry,
        retry: { initialDelayMs: 0 },
        onEvent: (event) => events.push(event.type),
      });
      const task = await queue.enqueue("t");
      await worker.claimAndProcess();
      fail = false;
      await worker.claimAndProcess();
      const snoozed = (await queue.get(task.id))!;
      assert.deepEqual(
        [snoozed.status, snoozed.attempts, snoozed.errorMessage],
        ["queued", 1, "first try failed"],
      );
      assert.deepEqual(events, ["claimed", "retrying", "claimed", "snoozed"]);

      // Cancelled while its handler runs: the snooze that follows must not bring it back.
      const started = deferred<void>();
      const release = deferred<void>();
      registry.registerHandler("held", async () => {
        started.resolve();
        await release.promise;
        throw new SnoozeError(0);
      });
      const held = await queue.enqueue("held");
      const running = new WorkerEngine({ db, workerId: "w2", handlerRegistry: registry }).claimAndProcess();
      await started.promise;
      await queue.cancel(held.id);
      release.resolve();
      await running;
      assert.equal((await queue.get(held.id))!.status, "cancelled");
    });
  });

  test("SnoozeError refuses a delay that is not whole milliseconds up to 100 years", () => {
    for (const bad of [-1, 1.5, Infinity, NaN, 100 * 365 * 86_400_000 + 1]) {
      assert.throws(() => new SnoozeError(bad), RangeError);
    }
    const error = new SnoozeError(0);
    assert.equal(error.code, "SNOOZE");
    assert.ok(!(error instanceof NonRetryableError));
  });
});
