/**
 * The smoke test that CI runs on Bun and on Node (through tsx) as well as on Deno: the core works unchanged
 * on every runtime.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { defineHandler, ManualClock, Queue, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { withDb } from "./_helpers.ts";

test("enqueue, run a registered handler, retry a failure, fail fast on an unregistered type", async () => {
  await withDb(async (db) => {
    const clock = new ManualClock(Date.now());
    const registry = new TaskHandlerRegistry();
    const greeted: string[] = [];
    let flakyCalls = 0;
    registry.registerHandler(defineHandler({
      type: "greet",
      schema: v.object({ name: v.string() }),
      handle: (task) => void greeted.push(task.payload.name.toUpperCase()),
    }));
    registry.registerHandler("flaky", () => {
      if (++flakyCalls === 1) throw new Error("first attempt fails");
    });
    const queue = new Queue(db, { registry, clock });
    const greet = await queue.enqueue("greet", { name: "ada" });
    const flaky = await queue.enqueue("flaky", {});
    const orphan = await new Queue(db, { clock }).enqueue("orphan", {});

    const worker = new WorkerEngine({
      db,
      workerId: "smoke",
      handlerRegistry: registry,
      clock,
      random: () => 0.5,
    });
    await worker.runLoop({ untilEmpty: true });
    assert.deepEqual(greeted, ["ADA"]);
    assert.equal((await queue.get(greet.id))?.status, "completed");

    const retried = await queue.get(flaky.id);
    assert.equal(retried?.status, "queued");
    assert.equal(retried?.errorMessage, "first attempt fails");
    assert.equal(retried?.runAfter, clock.now() + 1000);

    const failed = await queue.get(orphan.id);
    assert.equal(failed?.status, "failed");
    assert.equal(failed?.attempts, 1);
    assert.equal(
      failed?.errorMessage,
      "No handler registered for task type 'orphan'. Registered types: ['flaky', 'greet']",
    );

    clock.advance(1000);
    await worker.runLoop({ untilEmpty: true });
    assert.equal((await queue.get(flaky.id))?.status, "completed");
    assert.equal(flakyCalls, 2);
  });
});
