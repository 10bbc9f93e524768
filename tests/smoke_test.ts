import { test } from "node:test";
import assert from "node:assert/strict";
import { Queue, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { withDb } from "./_helpers.ts";

test("a registered handler runs a queued task on a real file", async () => {
  await withDb(async (db) => {
    const registry = new TaskHandlerRegistry();
    const seen: unknown[] = [];
    registry.registerHandler("hello", (task) => void seen.push(task.payload));
    await new Queue(db, { registry }).enqueue("hello", { name: "Ada" });
    const worker = new WorkerEngine({ db, workerId: "w1", handlerRegistry: registry });
    const summary = await worker.runLoop({ untilEmpty: true });
    assert.deepEqual(seen, [{ name: "Ada" }]);
    assert.equal(summary.completed, 1);
  });
});
