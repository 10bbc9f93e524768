/**
 * Conformance: all or nothing. A batch of tasks goes in whole or not at all, and tasks inserted through a
 * transaction of the store commit or roll back with it.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { NewTask, Store } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { get, insert, inserted, newTask, rejection, T0 } from "./_fixtures.ts";

/** A task no store accepts: its payload is not JSON. */
const REFUSED = newTask({ payload: "not json" });

async function assertEmpty(store: Store): Promise<void> {
  assert.deepEqual(await store.taskList({ limit: 10, offset: 0 }), [], "no task was stored");
  assert.deepEqual((await store.taskStats(T0)).counts, {
    waiting: 0,
    queued: 0,
    running: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
  });
}

describeEachStore("all or nothing", (it) => {
  const batches: [string, NewTask[]][] = [
    ["tasks alike but for their payloads", [newTask(), newTask({ payload: "[1]" }), REFUSED]],
    ["different tasks", [newTask({ type: "a" }), newTask({ type: "b", priority: 9 }), REFUSED]],
    ["keyed tasks", [newTask({ idempotencyKey: "k1" }), newTask(), { ...REFUSED, idempotencyKey: "k2" }]],
    [
      "12,000 tasks, the refused one last",
      [...Array.from({ length: 11_999 }, (_, i) => newTask({ payload: JSON.stringify({ i }) })), REFUSED],
    ],
  ];
  for (const [what, batch] of batches) {
    it(`a batch of ${what} with one the store refuses stores none of them`, async ({ store }) => {
      await assert.rejects(store.taskInsertMany(batch, T0));
      await assertEmpty(store);
      // And the store works on: the same batch without the refused task goes in whole.
      const ids = await insert(store, batch.slice(0, -1));
      assert.equal((await store.taskList({ limit: 20_000, offset: 0 })).length, ids.length);
    });
  }

  it("tasks inserted through a store transaction are stored when it commits, and it returns what fn returns", async ({ store }) => {
    const tasks = [newTask({ type: "a" }), newTask({ type: "b", idempotencyKey: "k" })];
    const result = await store.transaction(async (tx) => {
      const first = await store.taskInsertManyWithin(tx, tasks.slice(0, 1), T0, false);
      const second = await store.taskInsertManyWithin(tx, tasks.slice(1), T0, false);
      return [...first, ...second];
    });
    assert.deepEqual(result.map((r) => r.created), [true, true]);
    for (const [i, { id }] of result.entries()) {
      assert.deepEqual(await get(store, id), inserted(id, tasks[i]!, T0));
    }
  });

  it("tasks inserted through a store transaction are gone when it throws, and the error is the one thrown", async ({ store }) => {
    const boom = new Error("boom");
    await assert.rejects(
      store.transaction(async (tx) => {
        await store.taskInsertManyWithin(tx, [newTask(), newTask({ idempotencyKey: "k" })], T0, false);
        await store.taskInsertManyWithin(tx, [newTask({ type: "b" })], T0, false);
        throw boom;
      }),
      (error) => error === boom,
    );
    await assertEmpty(store);
    // The key was rolled back with its task: it is free.
    const [result] = await store.taskInsertMany([newTask({ idempotencyKey: "k" })], T0);
    assert.equal(result?.created, true);
  });

  it("a transaction on a second handle waits for the first handle's transaction to end, then commits", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const other = await reopen();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const holding = new Promise<void>((resolve) => (entered = resolve));
    const first = store.transaction(async (tx) => {
      await store.taskInsertManyWithin(tx, [newTask({ type: "first" })], T0, false);
      entered();
      await gate;
    });
    await holding;
    const second = other.transaction(async (tx) =>
      await other.taskInsertManyWithin(tx, [newTask({ type: "second" })], T0, false)
    );
    // Gives the second a moment to find the database locked; it must wait, whenever the first ends.
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await first;
    const [result] = await second;
    assert.equal(result?.created, true);
    assert.deepEqual((await store.taskList({ limit: 10, offset: 0 })).map((t) => t.type), [
      "second",
      "first",
    ]);
  });

  it("inside a transaction, a key already taken gives the task that holds it", async ({ store }) => {
    const [id] = await insert(store, [newTask({ idempotencyKey: "k", payload: '{"first":true}' })]);
    const holder = await get(store, id!);
    const result = await store.transaction((tx) =>
      Promise.resolve(store.taskInsertManyWithin(tx, [newTask({ idempotencyKey: "k" })], T0 + 1, false))
    );
    assert.deepEqual(result, [{ id, created: false, existing: holder, matchedKey: "idempotencyKey" }]);
  });

  it("an insert through a handle that is not a transaction of the store, or with `sync` through its own, is refused", async ({ store }) => {
    for (const handle of [undefined, null, {}, "tx", store]) {
      await rejection(
        async () => await store.taskInsertManyWithin(handle, [newTask()], T0, false),
        TypeError,
      );
    }
    await store.transaction(async (tx) => {
      await rejection(async () => await store.taskInsertManyWithin(tx, [newTask()], T0, true), TypeError);
    });
    await assertEmpty(store);
  });
});
