/**
 * Named queues through the library: the `queue` option at enqueue (and a handler's default queue), a
 * worker's `queues` (a list sharing its slots, or lanes with their own), pauses and limits as a worker meets
 * them. The stores' side is tests/conformance/queues_test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { defineHandler, isInvalidArgument, Queue, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { withDb } from "./_helpers.ts";

test("a task goes to the queue its enqueue names, else its handler's, else 'default'", async () => {
  await withDb(async (db) => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(defineHandler({
      type: "mail",
      queue: "emails",
      schema: v.object({}),
      handle() {},
    }));
    registry.registerHandler("plain", () => {});
    const queue = new Queue(db, { registry });
    assert.equal((await queue.enqueue("mail", {})).queue, "emails");
    assert.equal((await queue.enqueue("mail", {}, { queue: "bulk" })).queue, "bulk");
    assert.equal((await queue.enqueue("plain", {})).queue, "default");
    const [many] = await queue.enqueueMany([{ type: "plain", payload: {}, queue: "reports" }]);
    assert.equal(many!.queue, "reports");
    assert.deepEqual((await queue.list({ queue: "emails" })).map((t) => t.queue), ["emails"]);
    assert.equal((await queue.get(many!.id))?.queue, "reports");
  });
});

test("a queue name that cannot be one is refused, naming what a name may be, and nothing is written", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    for (const bad of ["", " a", "a,b", "a:4", "x".repeat(129), "ü", 7]) {
      await assert.rejects(
        queue.enqueue("t", {}, { queue: bad as string }),
        (error: Error) =>
          error instanceof TypeError && isInvalidArgument(error) &&
          /queue name of 1 to 128/.test(error.message),
      );
    }
    assert.deepEqual(await queue.list(), []);
    assert.throws(
      () => defineHandler({ type: "t", queue: "no spaces", schema: v.object({}), handle() {} }),
      /The queue of handler 't' must be a queue name/,
    );
    assert.throws(() => queue.setQueueLimits("a", { concurrency: 0 }), RangeError);
    assert.throws(() => queue.setQueueLimits("a", { rate: { limit: 1, intervalMs: 0 } }), RangeError);
  });
});

test("a worker serves the queues it names and leaves the others queued; without queues it serves all", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    await queue.enqueueMany([
      { type: "t", queue: "a" },
      { type: "t", queue: "b" },
      { type: "t" },
    ]);
    const ran: string[] = [];
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("t", (task) => void ran.push(task.queue));
    const onlyA = new WorkerEngine({ db, workerId: "a", handlerRegistry: registry, queues: ["a"] });
    await onlyA.runLoop({ untilEmpty: true });
    assert.deepEqual(ran, ["a"]);
    const all = new WorkerEngine({ db, workerId: "all", handlerRegistry: registry });
    await all.runLoop({ untilEmpty: true });
    assert.deepEqual(ran.sort(), ["a", "b", "default"]);
  });
});

test("queues with a concurrency each run in lanes of their own, never more at once than each allows", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    await queue.enqueueMany([
      ...Array.from({ length: 12 }, () => ({ type: "t", queue: "wide" })),
      ...Array.from({ length: 6 }, () => ({ type: "t", queue: "narrow" })),
    ]);
    const now: Record<string, number> = { wide: 0, narrow: 0 };
    const most: Record<string, number> = { wide: 0, narrow: 0 };
    const workerIds = new Set<string>();
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("t", async (task, ctx) => {
      workerIds.add(ctx.workerId);
      most[task.queue] = Math.max(most[task.queue]!, ++now[task.queue]!);
      await new Promise((resolve) => setTimeout(resolve, 5));
      now[task.queue]!--;
    });
    const worker = new WorkerEngine({
      db,
      workerId: "w",
      handlerRegistry: registry,
      queues: { wide: 3, narrow: 1 },
    });
    const summary = await worker.runLoop({ untilEmpty: true });
    assert.equal(summary.completed, 18);
    assert.deepEqual(most, { wide: 3, narrow: 1 });
    assert.deepEqual([...workerIds].sort(), ["w/narrow", "w/wide"]);
  });
});

test("a worker's queues option is checked when the engine is made", async () => {
  await withDb((db) => {
    for (const queues of [[], {}, ["bad name"], { a: 0 }, "a"]) {
      assert.throws(
        () => new WorkerEngine({ db, workerId: "w", queues: queues as string[] }),
        (error: Error) => isInvalidArgument(error),
        JSON.stringify(queues),
      );
    }
  });
});

test("a paused queue's tasks wait, an untilEmpty loop ends without them, and resumed they run", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    await queue.enqueueMany([{ type: "t", queue: "held" }, { type: "t" }]);
    await queue.pauseQueue("held");
    const ran: string[] = [];
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("t", (task) => void ran.push(task.queue));
    const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry });
    await worker.runLoop({ untilEmpty: true });
    assert.deepEqual(ran, ["default"]);
    const [held] = await queue.listQueues();
    assert.deepEqual([held!.name, held!.paused, held!.queued], ["held", true, 1]);
    await queue.resumeQueue("held");
    await worker.runLoop({ untilEmpty: true });
    assert.deepEqual(ran, ["default", "held"]);
  });
});

test("an untilEmpty worker waits out a limit another worker's tasks fill, then runs the rest", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    await queue.setQueueLimits("api", { concurrency: 1 });
    await queue.enqueueMany([{ type: "t", queue: "api" }, { type: "t", queue: "api" }]);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const registry = new TaskHandlerRegistry();
    let looks = 0;
    registry.registerHandler("t", async (_task, ctx) => {
      if (ctx.workerId === "first") await released;
    });
    const first = new WorkerEngine({ db, workerId: "first", handlerRegistry: registry, prefetch: 0 });
    const claimedFirst = first.claimAndProcess();
    const second = new WorkerEngine({
      db,
      workerId: "second",
      handlerRegistry: registry,
      pollIntervalMs: 20,
      onEvent: () => looks++,
    });
    const secondLoop = second.runLoop({ untilEmpty: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(looks, 0, "the second worker claims nothing while the first holds the queue's one place");
    release();
    await claimedFirst;
    assert.equal((await secondLoop).completed, 1);
  });
});
