/**
 * Conformance: what each outcome of an attempt records (completed, retried later, failed), and fencing by
 * lease token: an outcome, an extension or a release applies only while its claim still holds the task.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Finish } from "../../src/store/store.ts";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, finish, get, insert, LEASE_MS, newTask, T0 } from "./_fixtures.ts";

describeEachStore("outcomes", (it) => {
  it("a completed attempt ends the task: completed, finished and updated at the outcome's now, lease dropped", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { workerId: "w1" });
    assert.deepEqual(
      await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 30),
      new Set([id]),
    );
    const expected: Task = {
      ...leased.task,
      status: "completed",
      leaseUntil: null,
      updatedAt: T0 + 30,
      finishedAt: T0 + 30,
    };
    assert.deepEqual(await get(store, id!), expected);
  });

  it("a retried attempt goes back to the queue, due at the time given, with its error; the attempt stays counted", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store);
    const held = await finish(store, [{
      ...fenceOf(leased),
      status: "queued",
      runAfter: T0 + 5000,
      errorMessage: "boom",
    }], T0 + 30);
    assert.deepEqual(held, new Set([id]));
    const expected: Task = {
      ...leased.task,
      status: "queued",
      runAfter: T0 + 5000,
      errorMessage: "boom",
      leaseUntil: null,
      updatedAt: T0 + 30,
      finishedAt: null,
    };
    assert.deepEqual(await get(store, id!), expected);
    assert.deepEqual(await claim(store, { now: T0 + 4999 }), [], "not due before its time");
    const again = await claimOne(store, { now: T0 + 5000 });
    assert.equal(again.task.attempts, 2);
    assert.equal(again.task.errorMessage, "boom", "the last error stays while it runs again");
  });

  it("a failed attempt ends the task: failed with its error, finished at the outcome's now", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store);
    assert.deepEqual(
      await finish(store, [{ ...fenceOf(leased), status: "failed", errorMessage: "broken" }], T0 + 30),
      new Set([id]),
    );
    const expected: Task = {
      ...leased.task,
      status: "failed",
      errorMessage: "broken",
      leaseUntil: null,
      updatedAt: T0 + 30,
      finishedAt: T0 + 30,
    };
    assert.deepEqual(await get(store, id!), expected);
  });

  it("a task completed after a failed attempt keeps that attempt's error", async ({ store }) => {
    const [id] = await insert(store, 1);
    const first = await claimOne(store);
    await finish(store, [{
      ...fenceOf(first),
      status: "queued",
      runAfter: T0,
      errorMessage: "first try failed",
    }], T0);
    const second = await claimOne(store);
    await finish(store, [{ ...fenceOf(second), status: "completed" }], T0 + 1);
    const done = await get(store, id!);
    assert.equal(done.status, "completed");
    assert.equal(done.attempts, 2);
    assert.equal(done.errorMessage, "first try failed");
  });

  it("the store records the outcome it is given: a retry is applied even with no attempts left (the worker decides)", async ({ store }) => {
    const [id] = await insert(store, [newTask({ maxAttempts: 1 })]);
    const leased = await claimOne(store);
    await finish(
      store,
      [{ ...fenceOf(leased), status: "queued", runAfter: T0 + 1, errorMessage: "again" }],
      T0,
    );
    const task = await get(store, id!);
    assert.deepEqual([task.status, task.attempts, task.maxAttempts], ["queued", 1, 1]);
  });
});

describeEachStore("fencing by lease token", (it) => {
  it("once another claim holds the task, the old claim's outcomes, extension and release change nothing", async ({ store }) => {
    const [id] = await insert(store, 1);
    const old = await claimOne(store, { workerId: "old" });
    assert.deepEqual(await store.taskReapExpired(T0 + LEASE_MS + 1), { requeued: 1, failed: 0 });
    const current = await claimOne(store, { workerId: "new", now: T0 + LEASE_MS + 1 });
    assert.notEqual(current.leaseToken, old.leaseToken);
    const before = await get(store, id!);
    const now = T0 + LEASE_MS + 2;
    const stale: Finish[] = [
      { ...fenceOf(old), status: "completed" },
      { ...fenceOf(old), status: "failed", errorMessage: "stale failure" },
      { ...fenceOf(old), status: "queued", runAfter: now + 5000, errorMessage: "stale retry" },
    ];
    for (const outcome of stale) {
      assert.deepEqual(
        await finish(store, [outcome], now),
        new Set(),
        `a stale '${outcome.status}' is refused`,
      );
    }
    assert.equal(await store.taskExtendLease(fenceOf(old), now + 99_999, now), false);
    assert.deepEqual(await store.taskReleaseMany([fenceOf(old)], now), new Set());
    assert.deepEqual(await get(store, id!), before);
    assert.equal(before.lockedBy, "new");
  });

  it("a claim's token is spent once its outcome is recorded: nothing more it sends applies", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store);
    assert.deepEqual(
      await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 1),
      new Set([id]),
    );
    const done = await get(store, id!);
    assert.deepEqual(
      await finish(store, [{ ...fenceOf(leased), status: "failed", errorMessage: "x" }], T0 + 2),
      new Set(),
    );
    assert.deepEqual(await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 2), new Set());
    assert.equal(await store.taskExtendLease(fenceOf(leased), T0 + 5000, T0 + 2), false);
    assert.deepEqual(await store.taskReleaseMany([fenceOf(leased)], T0 + 2), new Set());
    assert.deepEqual(await store.workerHeartbeat(null, [fenceOf(leased)], T0 + 5000), [{
      id,
      status: "completed",
    }]);
    assert.deepEqual(await get(store, id!), done);
  });

  it("a made-up token, or a real token for another task, holds nothing", async ({ store }) => {
    const [a, b] = await insert(store, 2);
    const leased = await claimOne(store);
    assert.equal(leased.task.id, a);
    const wrong: Finish[] = [
      { id: a!, leaseToken: "not-a-token", status: "completed" },
      { id: b!, leaseToken: leased.leaseToken, status: "completed" },
    ];
    assert.deepEqual(await finish(store, wrong, T0 + 1), new Set());
    assert.equal((await get(store, a!)).status, "running");
    assert.equal((await get(store, b!)).status, "queued");
  });

  it("in one write of many outcomes, only those whose fence holds apply", async ({ store }) => {
    const [x, y, z] = await insert(store, 3);
    const leased = await claim(store, { limit: 3 });
    assert.deepEqual(leased.map((l) => l.task.id), [x, y, z]);
    await store.taskCancel(x!, T0 + 1); // x's fence no longer holds
    const held = await finish(store, [
      { ...fenceOf(leased[0]!), status: "completed" },
      { ...fenceOf(leased[1]!), status: "failed", errorMessage: "y failed" },
      { ...fenceOf(leased[2]!), status: "completed" },
    ], T0 + 2);
    assert.deepEqual(held, new Set([y, z]));
    assert.equal((await get(store, x!)).status, "cancelled");
    assert.deepEqual([(await get(store, y!)).status, (await get(store, y!)).errorMessage], [
      "failed",
      "y failed",
    ]);
    assert.equal((await get(store, z!)).status, "completed");
  });

  it("two outcomes for one task in one write, from an old claim and the current one: the current one's applies", async ({ store }) => {
    const [id] = await insert(store, 1);
    const old = await claimOne(store, { workerId: "old" });
    await store.taskReapExpired(T0 + LEASE_MS + 1);
    const current = await claimOne(store, { workerId: "new", now: T0 + LEASE_MS + 1 });
    const held = await finish(store, [
      { ...fenceOf(old), status: "failed", errorMessage: "old" },
      { ...fenceOf(current), status: "completed" },
    ], T0 + LEASE_MS + 2);
    assert.deepEqual(held, new Set([id]));
    const done = await get(store, id!);
    assert.deepEqual([done.status, done.lockedBy, done.attempts], ["completed", "new", 2]);
  });

  it("a task reclaimed and completed by a second worker stays completed when the first worker's late outcome comes", async ({ store }) => {
    const [id] = await insert(store, 1);
    const first = await claimOne(store, { workerId: "w1" });
    let now = T0 + LEASE_MS + 1;
    assert.deepEqual(await store.taskReapExpired(now), { requeued: 1, failed: 0 });
    const second = await claimOne(store, { workerId: "w2", now });
    assert.deepEqual(await finish(store, [{ ...fenceOf(second), status: "completed" }], now), new Set([id]));
    const done = await get(store, id!);
    now += 10;
    for (
      const late of [
        { ...fenceOf(first), status: "completed" },
        { ...fenceOf(first), status: "failed", errorMessage: "late failure" },
        { ...fenceOf(first), status: "queued", runAfter: now, errorMessage: "late retry" },
      ] satisfies Finish[]
    ) {
      assert.deepEqual(await finish(store, [late], now), new Set(), `late ${late.status} refused`);
    }
    assert.equal(await store.taskExtendLease(fenceOf(first), now + LEASE_MS, now), false);
    assert.deepEqual(await store.taskReleaseMany([fenceOf(first)], now), new Set());
    assert.deepEqual(await get(store, id!), done);
    assert.deepEqual([done.status, done.attempts, done.lockedBy], ["completed", 2, "w2"]);
  });

  it("a release after the lease was reaped changes nothing; after a new claim, only the new fence releases", async ({ store }) => {
    const [id] = await insert(store, 1);
    const fence = fenceOf(await claimOne(store, { workerId: "w1" }));
    const now = T0 + LEASE_MS + 1;
    assert.deepEqual(await store.taskReapExpired(now), { requeued: 1, failed: 0 });
    const reaped = await get(store, id!);
    assert.deepEqual([reaped.status, reaped.attempts], ["queued", 1], "the reaped attempt counts");
    assert.deepEqual(await store.taskReleaseMany([fence], now), new Set());
    assert.deepEqual(await get(store, id!), reaped, "a stale release gives no attempt back");
    const again = fenceOf(await claimOne(store, { workerId: "w2", now }));
    assert.deepEqual(await store.taskReleaseMany([fence], now), new Set());
    assert.equal((await get(store, id!)).attempts, 2);
    assert.deepEqual(await store.taskReleaseMany([fence, again], now), new Set([id]));
    const released = await get(store, id!);
    assert.deepEqual([released.status, released.attempts, released.leaseUntil], ["queued", 1, null]);
  });
});
