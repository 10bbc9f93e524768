/**
 * Conformance: inserting tasks (one, many alike, many different, keyed) and idempotency keys.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { NewTask } from "../../src/store/store.ts";
import { JSON_PAYLOADS } from "../_helpers.ts";
import { describeEachStore } from "./_harness.ts";
import { claimOne, fenceOf, finish, get, insert, inserted, newTask, T0 } from "./_fixtures.ts";

/** JSON payloads of every kind, as text, including characters that are easy to get wrong. */
const PAYLOADS: readonly string[] = JSON_PAYLOADS.map((value) => JSON.stringify(value));

describeEachStore("inserting tasks", (it) => {
  it("one task is stored with every field as given, queued, created and updated at the insert's now", async ({ store }) => {
    const task = newTask({
      type: "send_email",
      payload: '{"to":"ada@example.com","n":1.5}',
      priority: -7,
      maxAttempts: 2,
      runAfter: T0 + 5000,
      idempotencyKey: "k-1",
      timeoutMs: 1500,
    });
    const [result] = await store.taskInsertMany([task], T0 + 1);
    assert.equal(result?.created, true);
    assert.equal(result?.existing, undefined);
    assert.ok(Number.isSafeInteger(result!.id) && result!.id >= 1, `id ${result!.id}`);
    assert.deepEqual(await store.taskGet(result!.id), inserted(result!.id, task, T0 + 1));
  });

  it("one task inserted alone (the single enqueue's path) is stored as given; a taken key gives its holder", async ({ store }) => {
    const task = newTask({ type: "one", payload: '{"n":1}', priority: 3, idempotencyKey: "single-1" });
    const created = await store.taskInsertOne(task, T0 + 2);
    assert.equal(created.created, true);
    assert.equal(created.existing, undefined);
    assert.deepEqual(await store.taskGet(created.id), inserted(created.id, task, T0 + 2));
    const next = await store.taskInsertOne(newTask({ type: "two" }), T0 + 3);
    assert.ok(next.id > created.id, `ids grow: ${created.id} then ${next.id}`);
    const holder = await get(store, created.id);
    assert.deepEqual(await store.taskInsertOne({ ...task, payload: '{"n":2}' }, T0 + 4), {
      id: created.id,
      created: false,
      existing: holder,
      matchedKey: "idempotencyKey",
    });
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });

  it("many tasks alike but for their payloads are stored as given, with ids increasing in the order given", async ({ store }) => {
    const tasks = PAYLOADS.map((payload) => newTask({ type: "bulk", payload, priority: 5, timeoutMs: 10 }));
    const results = await store.taskInsertMany(tasks, T0);
    assert.deepEqual(results.map((r) => r.created), tasks.map(() => true));
    const first = results[0]!.id;
    assert.deepEqual(results.map((r) => r.id), tasks.map((_, i) => first + i));
    for (const [i, task] of tasks.entries()) {
      assert.deepEqual(await store.taskGet(first + i), inserted(first + i, task, T0), `task ${i}`);
    }
  });

  it("many different tasks, each differing in one field, are stored field for field as given", async ({ store }) => {
    const base = newTask({ type: "a", priority: 5, maxAttempts: 3, runAfter: T0 + 60_000, timeoutMs: 1000 });
    const tasks: NewTask[] = [
      base,
      { ...base, type: "b" },
      { ...base, priority: 6 },
      { ...base, maxAttempts: 4 },
      { ...base, runAfter: T0 + 120_000 },
      { ...base, timeoutMs: null },
      { ...base, payload: "[1,2]" },
    ];
    const ids = await insert(store, tasks, T0);
    assert.deepEqual(ids, tasks.map((_, i) => ids[0]! + i));
    for (const [i, task] of tasks.entries()) {
      assert.deepEqual(await store.taskGet(ids[i]!), inserted(ids[i]!, task, T0), `task ${i}`);
    }
  });

  it("keyed and plain tasks mixed in one batch get ids in the order given", async ({ store }) => {
    const tasks = [
      newTask({ type: "c", priority: 300 }),
      newTask({ type: "a", priority: 1, idempotencyKey: "key-1" }),
      newTask({ type: "b", priority: 200 }),
      newTask({ type: "a", payload: '{"i":3}' }),
      newTask({ type: "a", idempotencyKey: "key-2" }),
    ];
    const ids = await insert(store, tasks, T0);
    assert.deepEqual(ids, tasks.map((_, i) => ids[0]! + i));
    for (const [i, task] of tasks.entries()) {
      assert.deepEqual(await store.taskGet(ids[i]!), inserted(ids[i]!, task, T0), `task ${i}`);
    }
  });

  it("payloads of every JSON kind come back as the same JSON values, one at a time, in bulk and keyed", async ({ store }) => {
    const expected = PAYLOADS.map((text) => JSON.parse(text));
    const one = [];
    for (const payload of PAYLOADS) one.push(...await insert(store, [newTask({ payload })]));
    const bulk = await insert(store, PAYLOADS.map((payload) => newTask({ payload })));
    const keyed = await insert(
      store,
      PAYLOADS.map((payload, i) => newTask({ payload, idempotencyKey: `p${i}` })),
    );
    for (const ids of [one, bulk, keyed]) {
      const payloads = [];
      for (const id of ids) payloads.push((await get(store, id)).payload);
      assert.deepEqual(payloads, expected);
    }
    // A claim hands over the same payloads.
    const claimed = await store.taskClaim({
      workerId: "w",
      limit: 100,
      leaseMs: 1000,
      now: T0,
      strategy: "fifo",
    });
    assert.deepEqual(claimed.map((l) => l.task.payload), [...expected, ...expected, ...expected]);
  });

  it("an empty batch stores nothing and returns nothing", async ({ store }) => {
    assert.deepEqual(await store.taskInsertMany([], T0), []);
    assert.deepEqual(await store.taskList({ limit: 10, offset: 0 }), []);
  });

  it("12,000 tasks in one batch (with one key used early and late) are all stored, ids in order", async ({ store }) => {
    const n = 12_000;
    const tasks = Array.from({ length: n }, (_, i) =>
      newTask({
        type: i % 2 ? "odd" : "even",
        payload: JSON.stringify({ i }),
        idempotencyKey: i === 100 || i === 7000 ? "dup" : null,
      }));
    const results = await store.taskInsertMany(tasks, T0);
    assert.equal(results.length, n);
    assert.equal(results[7000]!.id, results[100]!.id, "one task per key");
    assert.equal(results[7000]!.created, false);
    assert.equal(results.filter((r) => !r.created).length, 1);
    const distinct = results.filter((_, i) => i !== 7000).map((r) => r.id);
    for (let i = 1; i < distinct.length; i++) assert.ok(distinct[i]! > distinct[i - 1]!, `id ${i} grows`);
    const stored = await store.taskList({ limit: n, offset: 0 });
    assert.equal(stored.length, n - 1);
    const byId = new Map(stored.map((task) => [task.id, task.payload]));
    for (const [i, result] of results.entries()) {
      if (i !== 7000) assert.deepEqual(byId.get(result.id), { i }, `task ${i}`);
    }
    const stats = await store.taskStats(T0);
    assert.equal(stats.byType.even?.queued, n / 2 - 1);
    assert.equal(stats.byType.odd?.queued, n / 2);
  });
});

describeEachStore("idempotency keys", (it) => {
  it("a key already taken gives the task that holds it, created false, and stores nothing new", async ({ store }) => {
    const first = newTask({ type: "charge", payload: '{"amount":10}', idempotencyKey: "order-42" });
    const [id] = await insert(store, [first], T0);
    const holder = await get(store, id!);
    const again = newTask({
      type: "charge",
      payload: '{"amount":99}',
      priority: 1,
      idempotencyKey: "order-42",
    });
    assert.deepEqual(await store.taskInsertMany([again], T0 + 10), [{
      id,
      created: false,
      existing: holder,
      matchedKey: "idempotencyKey",
    }]);
    assert.deepEqual(
      await store.taskInsertMany([newTask(), again], T0 + 20).then((r) => r[1]),
      { id, created: false, existing: holder, matchedKey: "idempotencyKey" },
    );
    assert.deepEqual(await get(store, id!), holder);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });

  it("a key is taken whatever the type: a task of another type with it gives the first task", async ({ store }) => {
    const [id] = await insert(store, [newTask({ type: "a", idempotencyKey: "k" })]);
    const [result] = await store.taskInsertMany([newTask({ type: "b", idempotencyKey: "k" })], T0);
    assert.equal(result?.id, id);
    assert.equal(result?.created, false);
    assert.equal(result?.existing?.type, "a");
  });

  it("a key held by a finished task still gives that task, in its finished state", async ({ store }) => {
    const [id] = await insert(store, [newTask({ idempotencyKey: "order-7" })]);
    const leased = await claimOne(store);
    assert.deepEqual(
      await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 5),
      new Set([id]),
    );
    const done = await get(store, id!);
    assert.equal(done.status, "completed");
    const [again] = await store.taskInsertMany([newTask({ idempotencyKey: "order-7" })], T0 + 10);
    assert.deepEqual(again, { id, created: false, existing: done, matchedKey: "idempotencyKey" });
  });

  it("tasks sharing a key within one batch become one task: the first creates it, the others get it", async ({ store }) => {
    const tasks = [
      newTask({ payload: '{"v":1}', idempotencyKey: "k1" }),
      newTask({ payload: '{"v":2}', idempotencyKey: "k1" }),
      newTask({ payload: '{"v":3}' }),
    ];
    const results = await store.taskInsertMany(tasks, T0);
    assert.deepEqual(results.map((r) => r.created), [true, false, true]);
    assert.equal(results[1]!.id, results[0]!.id);
    assert.notEqual(results[2]!.id, results[0]!.id);
    const holder = await get(store, results[0]!.id);
    assert.deepEqual(holder.payload, { v: 1 });
    assert.deepEqual(results[1]!.existing, holder);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });

  it("a batch says, task by task, which were created and which keys were taken already", async ({ store }) => {
    const [existing] = await insert(store, [newTask({ payload: '{"n":0}', idempotencyKey: "k1" })]);
    const tasks = [
      newTask({ payload: '{"n":1}' }),
      newTask({ type: "b", payload: '{"n":2}', idempotencyKey: "k1" }),
      newTask({ payload: '{"n":3}', idempotencyKey: "k2" }),
      newTask({ payload: '{"n":4}', idempotencyKey: "k2" }),
      newTask({ type: "b", payload: '{"n":5}', priority: 7 }),
    ];
    const results = await store.taskInsertMany(tasks, T0);
    assert.deepEqual(results.map((r) => r.created), [true, false, true, false, true]);
    assert.equal(results[1]!.id, existing);
    assert.equal(results[3]!.id, results[2]!.id);
    for (const [i, { id, created }] of results.entries()) {
      if (created) assert.deepEqual(await store.taskGet(id), inserted(id, tasks[i]!, T0), `task ${i}`);
    }
    assert.deepEqual((await get(store, existing!)).payload, { n: 0 });
  });
});
