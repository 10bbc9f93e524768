/**
 * Conformance: times and ranges. Every time a store writes is the `now` it was given (the caller's clock
 * rules, however far it is from the machine's); integers at the ends of the safe range come back exactly and
 * order as numbers; ids grow with every insert.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, finish, get, insert, inserted, newTask } from "./_fixtures.ts";

const MAX = Number.MAX_SAFE_INTEGER;
const MIN = Number.MIN_SAFE_INTEGER;
/** The last moment a JavaScript Date can hold, in epoch ms. */
const LAST_DATE = 8_640_000_000_000_000;

describeEachStore("times and ranges", (it) => {
  for (const [era, base] of [["in 1970", 1000], ["in the year 275760", LAST_DATE - 1_000_000]] as const) {
    it(`every time written is the now given, ${era}: a task's whole life`, async ({ store }) => {
      const [id] = await insert(store, [newTask({ runAfter: base })], base);
      const first = await claimOne(store, { now: base + 10, leaseMs: 500, workerId: "w" });
      assert.deepEqual(
        [first.task.startedAt, first.task.leaseUntil, first.task.updatedAt],
        [base + 10, base + 510, base + 10],
      );
      assert.deepEqual(await store.workerHeartbeat(null, [fenceOf(first)], base + 900), []);
      await finish(
        store,
        [{ ...fenceOf(first), status: "queued", runAfter: base + 1000, errorMessage: "e" }],
        base + 20,
      );
      const waiting = await get(store, id!);
      assert.deepEqual([waiting.runAfter, waiting.updatedAt, waiting.leaseUntil], [
        base + 1000,
        base + 20,
        null,
      ]);
      assert.deepEqual(await store.taskWaiting(base + 20), { count: 1, nextRunAfter: base + 1000 });
      const second = await claimOne(store, { now: base + 1000, start: 0, workerId: "w" });
      await store.taskRecord(
        { starts: [{ ...fenceOf(second), at: base + 1001 }], finishes: [] },
        base + 1002,
      );
      await finish(store, [{ ...fenceOf(second), status: "completed" }], base + 1003);
      const expected: Task = {
        ...inserted(id!, newTask({ runAfter: base }), base),
        status: "completed",
        attempts: 2,
        errorMessage: "e",
        lockedBy: "w",
        runAfter: base + 1000,
        updatedAt: base + 1003,
        startedAt: base + 1001,
        finishedAt: base + 1003,
      };
      assert.deepEqual(await get(store, id!), expected);
      assert.equal((await store.taskStats(base + 1003)).lastMinute.completed, 1);
      await store.taskLogAppend([{ taskId: id!, at: base + 5, level: "info", message: "m" }]);
      assert.equal((await store.taskLogList(id!))[0]?.at, base + 5);
    });
  }

  it("priorities, attempts, timeouts and times at the ends of the safe integer range come back exactly", async ({ store }) => {
    const tasks = [
      newTask({ priority: MAX, maxAttempts: MAX, timeoutMs: MAX, runAfter: LAST_DATE }),
      newTask({ priority: MIN, maxAttempts: 1, timeoutMs: 1, runAfter: 0 }),
      newTask({ priority: MAX - 1, idempotencyKey: "k", runAfter: LAST_DATE - 1 }),
    ];
    const now = LAST_DATE - 10;
    const ids = await insert(store, tasks, now);
    for (const [i, id] of ids.entries()) assert.deepEqual(await get(store, id), inserted(id, tasks[i]!, now));
    const one = await insert(store, [tasks[0]!], now);
    assert.deepEqual(await get(store, one[0]!), inserted(one[0]!, tasks[0]!, now), "one task alone");
  });

  it("the priority strategy orders priorities as numbers, across the whole safe range", async ({ store }) => {
    const priorities = [MAX, 0, MIN, -1, 1, MAX - 1, MIN + 1, 2 ** 31, -(2 ** 31) - 1];
    const ids = await insert(store, priorities.map((priority) => newTask({ priority })));
    const leased = await claim(store, { strategy: "priority", limit: priorities.length });
    const order = [...priorities.keys()].sort((a, b) => priorities[a]! - priorities[b]!);
    assert.deepEqual(leased.map((l) => l.task.id), order.map((i) => ids[i]));
    assert.deepEqual(leased.map((l) => l.task.priority), [...priorities].sort((a, b) => a - b));
  });

  it("weighted_random claims tasks of any priority, negative and huge ones included", async ({ store }) => {
    const ids = await insert(store, [MAX, MIN, 0, -5].map((priority) => newTask({ priority })));
    const claimed = [];
    for (let i = 0; i < 4; i++) {
      claimed.push(...(await claim(store, { strategy: "weighted_random" })).map((l) => l.task.id));
    }
    assert.deepEqual(claimed.sort((a, b) => a - b), ids);
  });

  it("a claim at the last Date leases up to its now plus the lease", async ({ store }) => {
    await insert(store, [newTask({ runAfter: LAST_DATE - 60_000 })], LAST_DATE - 60_000);
    const leased = await claimOne(store, { now: LAST_DATE - 60_000, leaseMs: 60_000 });
    assert.equal(leased.task.leaseUntil, LAST_DATE);
    assert.deepEqual(await store.taskExpiredLeases(LAST_DATE + 1, 10), [
      { id: leased.task.id, leaseToken: leased.leaseToken, leaseUntil: LAST_DATE },
    ]);
  });

  it("ids are positive safe integers that grow with every insert, however it is made", async ({ store }) => {
    const all: number[] = [];
    all.push(...await insert(store, 1));
    all.push(...await insert(store, 3));
    all.push(...await insert(store, [newTask({ type: "x" }), newTask({ type: "y" })]));
    all.push(...await insert(store, [newTask({ idempotencyKey: "a" }), newTask()]));
    all.push(
      ...await store.transaction(async (tx) =>
        (await store.taskInsertManyWithin(tx, [newTask()], 0, false)).map((r) => r.id)
      ),
    );
    all.push(...await insert(store, [newTask({ idempotencyKey: "b" })]));
    assert.ok(all.every((id) => Number.isSafeInteger(id) && id > 0), `ids: ${all.join(", ")}`);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]! > all[i - 1]!, `ids grow: ${all.join(", ")}`);
  });
});
