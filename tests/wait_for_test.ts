/**
 * Many waiters on one database handle are read together: a wake-up costs one read however many wait. A
 * read each made hundreds of waiters in a worker's process slow its drain tenfold.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { makeTempDir } from "./_helpers.ts";
import { join } from "node:path";

const WAITERS = 200;

test("200 waiters on one handle are read together, not each on every wake-up", async () => {
  const temp = makeTempDir();
  const db = new QueueDatabase(join(temp.dir, "wait.db"));
  await db.initializeSchema();
  try {
    const queue = new Queue(db);
    const waited = (await queue.enqueueManyIds(Array.from({ length: WAITERS }, () => ({ type: "work" }))))
      .map((entry) => entry.id);
    await queue.enqueueManyIds(Array.from({ length: 300 }, () => ({ type: "work" })));
    const store = storeOf(db) as unknown as Record<string, (...args: unknown[]) => unknown>;
    let reads = 0;
    for (const method of ["taskGet", "taskGetMany"]) {
      const original = store[method]!.bind(store);
      store[method] = (...args: unknown[]) => {
        reads++;
        return original(...args);
      };
    }
    const waits = waited.map((id) => queue.waitFor(id, { timeoutMs: 60_000 }));
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("work", (task) => ({ id: task.id }));
    // Slots for 200 at once, so that the drain records its outcomes in a few writes whatever the machine's
    // load: with one slot, a loaded machine made the worker claim ahead two or three tasks at a time (it
    // claims ahead about 10 ms of work), and each of some 250 writes woke the waiters for one read.
    await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, concurrency: WAITERS })
      .runLoop({ untilEmpty: true });
    const done = await Promise.all(waits);
    assert.deepEqual(
      done.map((task) => [task.id, task.status, task.result]),
      waited.map((id) => [id, "completed", { id }]),
    );
    assert.ok(reads < WAITERS / 2, `${reads} reads for ${WAITERS} waiters: each read alone`);
  } finally {
    await db.close();
    temp.remove();
  }
});
