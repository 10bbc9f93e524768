/**
 * Conformance: claiming runnable tasks, in each strategy's order, of the types asked for, under a lease.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClaimStrategy, Store } from "../../src/store/store.ts";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, get, insert, LEASE_MS, newTask, sorted, T0 } from "./_fixtures.ts";

/** Inserted in this order: [name, priority, runAfter]. "f" comes last but was due long before the others. */
const ORDER_TASKS: [string, number, number][] = [
  ["a", 50, T0],
  ["b", 10, T0],
  ["c", 10, T0],
  ["d", 100, T0],
  ["e", -5, T0],
  ["f", 10, T0 - 60_000],
];

const EXPECTED: Record<Exclude<ClaimStrategy, "weighted_random">, string[]> = {
  priority: ["e", "f", "b", "c", "a", "d"], // lower number first, then due earliest, then oldest
  fifo: ["a", "b", "c", "d", "e", "f"],
  lifo: ["f", "e", "d", "c", "b", "a"],
};

async function insertOrderTasks(store: Store): Promise<void> {
  await insert(
    store,
    ORDER_TASKS.map(([name, priority, runAfter]) =>
      newTask({ payload: JSON.stringify(name), priority, runAfter })
    ),
  );
}

const names = (tasks: { task: Task }[]) => tasks.map((l) => l.task.payload as string);

describeEachStore("claiming tasks", (it) => {
  for (const [strategy, expected] of Object.entries(EXPECTED) as [ClaimStrategy, string[]][]) {
    it(`the ${strategy} strategy claims one at a time in the order ${expected}`, async ({ store }) => {
      await insertOrderTasks(store);
      const order: string[] = [];
      for (let i = 0; i < ORDER_TASKS.length; i++) order.push(...names(await claim(store, { strategy })));
      assert.deepEqual(order, expected);
      assert.deepEqual(await claim(store, { strategy }), [], "nothing is left to claim");
    });

    it(`the ${strategy} strategy hands a claim of many tasks over in the order ${expected}`, async ({ store }) => {
      await insertOrderTasks(store);
      assert.deepEqual(names(await claim(store, { strategy, limit: 4 })), expected.slice(0, 4));
      assert.deepEqual(names(await claim(store, { strategy, limit: 10 })), expected.slice(4));
    });
  }

  it("a claimed task is running under the claim's lease, its attempt counted and started at the claim's now", async ({ store }) => {
    const task = newTask({
      type: "x",
      payload: '{"n":1}',
      priority: 3,
      maxAttempts: 4,
      timeoutMs: 250,
      queue: "q-7",
    });
    const [id] = await insert(store, [task], T0 - 10);
    const [leased, ...rest] = await claim(store, { workerId: "worker-7", now: T0 + 5, leaseMs: 30_000 });
    assert.deepEqual(rest, []);
    const expected: Task = {
      id: id!,
      type: "x",
      payload: { n: 1 },
      status: "running",
      priority: 3,
      attempts: 1,
      maxAttempts: 4,
      errorMessage: null,
      idempotencyKey: null,
      lockedBy: "worker-7",
      timeoutMs: 250,
      runAfter: T0,
      leaseUntil: T0 + 5 + 30_000,
      createdAt: T0 - 10,
      updatedAt: T0 + 5,
      startedAt: T0 + 5,
      finishedAt: null,
      retryPolicy: null,
      result: null,
      progress: null,
      queue: "q-7",
      uniqueKey: null,
      uniqueForMs: null,
    };
    assert.deepEqual(leased?.task, expected, "the claim's copy");
    assert.deepEqual(await get(store, id!), expected, "the stored task");
    assert.equal(leased?.recordStartFirst, false);
    assert.equal(typeof leased?.leaseToken, "string");
    assert.ok(leased!.leaseToken.length >= 16, `a lease token hard to guess: '${leased!.leaseToken}'`);
    if (leased?.payloadLength !== undefined) assert.equal(leased.payloadLength, task.payload.length);
  });

  it("every task a claim returns, started or claimed ahead, is the stored task, also with outcomes recorded first", async ({ store }) => {
    await insert(store, [
      newTask({ type: "a", payload: '{"n":1}', priority: 7, maxAttempts: 2, timeoutMs: 90 }),
      newTask({ type: "b", payload: "[]", idempotencyKey: "k" }),
      newTask({ type: "c" }),
      newTask({ type: "d" }),
    ], T0 - 10);
    const first = await claim(store, { workerId: "w-9", limit: 3, start: 1, now: T0 + 5, leaseMs: 7_000 });
    assert.equal(first.length, 3);
    for (const { task } of first) assert.deepEqual(task, await get(store, task.id), "a plain claim's copy");
    const { leased } = await store.taskRecordAndClaim(
      { starts: [], finishes: [{ ...fenceOf(first[0]!), status: "completed" }] },
      { workerId: "w-10", limit: 5, start: 5, now: T0 + 20, leaseMs: 9_000, strategy: "fifo" },
    );
    assert.equal(leased.length, 1);
    for (const { task } of leased) {
      assert.deepEqual(task, await get(store, task.id), "a recording claim's copy");
    }
  });

  it("a claim takes at most its limit, and only queued tasks due by its now (due exactly then included)", async ({ store }) => {
    const [due, exactly, later] = await insert(store, [
      newTask({ runAfter: T0 - 1 }),
      newTask({ runAfter: T0 }),
      newTask({ runAfter: T0 + 1 }),
    ]);
    const [cancelled] = await insert(store, [newTask({ runAfter: T0 - 5 })]);
    await store.taskCancel(cancelled!, T0);
    assert.deepEqual((await claim(store, { limit: 1 })).map((l) => l.task.id), [due]);
    assert.deepEqual((await claim(store, { limit: 10 })).map((l) => l.task.id), [exactly]);
    assert.deepEqual(
      await claim(store, { limit: 10 }),
      [],
      "the later task is not due, the others are taken",
    );
    assert.deepEqual((await claim(store, { limit: 10, now: T0 + 1 })).map((l) => l.task.id), [later]);
    assert.equal((await get(store, cancelled!)).status, "cancelled");
  });

  it("a running task is not claimed again, not even once its lease has run out, until it is reaped", async ({ store }) => {
    const [id] = await insert(store, 1);
    await claimOne(store, { workerId: "w1" });
    assert.deepEqual(await claim(store, { workerId: "w2", now: T0 + LEASE_MS - 1 }), []);
    assert.deepEqual(await claim(store, { workerId: "w2", now: T0 + LEASE_MS + 1 }), []);
    assert.equal((await get(store, id!)).lockedBy, "w1");
  });

  it("a claim of some types takes only tasks of those types; an empty list of types takes none", async ({ store }) => {
    const [a1, b1, c1, a2] = await insert(store, ["a", "b", "c", "a"].map((type) => newTask({ type })));
    assert.deepEqual(await claim(store, { types: [], limit: 10 }), []);
    assert.deepEqual(await claim(store, { types: ["zzz"], limit: 10 }), []);
    assert.deepEqual((await claim(store, { types: ["a"], limit: 10 })).map((l) => l.task.id), [a1, a2]);
    assert.deepEqual(sorted((await claim(store, { types: ["c", "b"], limit: 10 })).map((l) => l.task.id)), [
      b1!,
      c1!,
    ]);
  });

  it("every claim gets a lease token of its own, also a second claim of the same task", async ({ store }) => {
    await insert(store, 3);
    const first = await claim(store, { limit: 3 });
    assert.deepEqual(
      await store.taskReleaseMany(first.map((l) => ({ id: l.task.id, leaseToken: l.leaseToken })), T0),
      new Set(first.map((l) => l.task.id)),
    );
    const second = await claim(store, { limit: 3 });
    const tokens = [...first, ...second].map((l) => l.leaseToken);
    assert.equal(new Set(tokens).size, 6, `tokens: ${tokens.join(", ")}`);
  });

  it("weighted_random claims only runnable tasks of the types asked for, each once, until none is left", async ({ store }) => {
    const ids = await insert(
      store,
      Array.from({ length: 30 }, (_, i) => newTask({ type: i % 3 ? "a" : "b", priority: i % 5 })),
    );
    await insert(store, [newTask({ type: "a", runAfter: T0 + 1 })]);
    const claimed: Task[] = [];
    for (;;) {
      const leased = await claim(store, { strategy: "weighted_random", types: ["a"], limit: 4 });
      if (leased.length === 0) break;
      assert.ok(leased.length <= 4);
      claimed.push(...leased.map((l) => l.task));
    }
    const typeA = ids.filter((_, i) => i % 3 !== 0);
    assert.deepEqual(sorted(claimed.map((t) => t.id)), typeA);
    for (const task of claimed) assert.equal(task.status, "running");
  });

  it("weighted_random strongly prefers low priority numbers: one task at 0 beats nine at 10^12", async ({ store }) => {
    // A task's chance to come first is proportional to 1 / (1 + priority): the nine together have about a
    // one in 10^11 chance, plus whatever the store's random draw rounds to (about 10^-5 for SQLite's).
    await insert(store, Array.from({ length: 9 }, () => newTask({ priority: 1e12 })));
    const [low] = await insert(store, [newTask({ priority: 0 })]);
    assert.deepEqual((await claim(store, { strategy: "weighted_random" })).map((l) => l.task.id), [low]);
  });

  it("weighted_random claims at once from two handles each take their limit while that many are free", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    // Each claim draws its winners among the same few candidates, which the others may have locked in the
    // meantime; a claim must then take other free tasks instead of coming back short.
    await insert(store, Array.from({ length: 60 }, (_, i) => newTask({ priority: i % 3 })));
    const other = await reopen();
    for (let round = 0; round < 3; round++) {
      const claims = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          (i % 2 ? other : store).taskClaim({
            workerId: `w${i}`,
            limit: 5,
            leaseMs: LEASE_MS,
            now: T0,
            strategy: "weighted_random",
          })),
      );
      assert.deepEqual(claims.map((claimed) => claimed.length), [5, 5, 5, 5], `round ${round + 1}`);
    }
    assert.deepEqual(
      await claim(store, { strategy: "weighted_random", limit: 100 }),
      [],
      "each was claimed once",
    );
  });

  it("two handles claiming at once never get the same task, and between them get every task", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const ids = await insert(store, 40);
    const other = await reopen();
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? other : store).taskClaim({
          workerId: `w${i}`,
          limit: 5,
          leaseMs: LEASE_MS,
          now: T0,
          strategy: "fifo",
        })),
    );
    const claimed = claims.flat().map((l) => l.task.id);
    assert.equal(claimed.length, 40);
    assert.deepEqual(sorted(claimed), ids);
  });
});
