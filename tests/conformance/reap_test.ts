/**
 * Conformance: reaping expired leases. A started attempt whose lease ran out counts, and the task goes back
 * to the queue or, with no attempts left, fails. A task claimed ahead whose start was never recorded goes
 * back with its attempts untouched and never fails this way; until an outcome of it is recorded, each of its
 * starts is recorded before its handler runs (`recordStartFirst`). With `only`, a reap takes just the leases
 * named, if nothing renewed them.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Finish } from "../../src/store/store.ts";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import {
  claim,
  claimOne,
  fenceOf,
  finish,
  get,
  insert,
  LEASE_MS,
  newTask,
  startOf,
  T0,
} from "./_fixtures.ts";

const EXPIRED = T0 + LEASE_MS + 1;

describeEachStore("reaping expired leases", (it) => {
  it("an expired lease sends its task back to the queue, due now, the attempt counted, the reason recorded", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { workerId: "w1" });
    assert.deepEqual(
      await store.taskReapExpired(T0 + LEASE_MS),
      { requeued: 0, failed: 0 },
      "at the deadline",
    );
    assert.deepEqual(await store.taskReapExpired(EXPIRED), { requeued: 1, failed: 0 });
    const expected: Task = {
      ...leased.task,
      status: "queued",
      attempts: 1,
      runAfter: EXPIRED,
      errorMessage: "lease expired: worker w1 stopped renewing it",
      leaseUntil: null,
      updatedAt: EXPIRED,
    };
    assert.deepEqual(await get(store, id!), expected);
    assert.deepEqual(await store.taskReapExpired(EXPIRED + 1), { requeued: 0, failed: 0 }, "reaped once");
  });

  it("with no attempts left, an expired lease fails its task, finished at the reap's now", async ({ store }) => {
    const [id] = await insert(store, [newTask({ maxAttempts: 2 })]);
    await claimOne(store, { workerId: "dead-1" });
    assert.deepEqual(await store.taskReapExpired(EXPIRED), { requeued: 1, failed: 0 });
    const second = await claimOne(store, { workerId: "dead-2", now: EXPIRED });
    const later = EXPIRED + LEASE_MS + 1;
    assert.deepEqual(await store.taskReapExpired(later), { requeued: 0, failed: 1 });
    const expected: Task = {
      ...second.task,
      status: "failed",
      attempts: 2,
      errorMessage: "lease expired: worker dead-2 stopped renewing it",
      leaseUntil: null,
      updatedAt: later,
      finishedAt: later,
    };
    assert.deepEqual(await get(store, id!), expected);
    assert.deepEqual(await claim(store, { now: later }), [], "a failed task is not claimed");
  });

  it("a task claimed ahead and never started goes back with its attempts and error untouched, even with none left", async ({ store }) => {
    const [id] = await insert(store, [newTask({ maxAttempts: 1 })]);
    // Its one attempt is used (the store records a retry it is given), and then it is claimed ahead.
    const first = await claimOne(store);
    await finish(
      store,
      [{ ...fenceOf(first), status: "queued", runAfter: T0, errorMessage: "retry me" }],
      T0,
    );
    const ahead = await claimOne(store, { start: 0, workerId: "w-ahead" });
    assert.deepEqual([ahead.task.attempts, ahead.task.startedAt], [1, null]);
    assert.deepEqual(await store.taskReapExpired(EXPIRED), { requeued: 1, failed: 0 });
    const expected: Task = {
      ...ahead.task,
      status: "queued",
      runAfter: EXPIRED,
      errorMessage: "retry me",
      leaseUntil: null,
      updatedAt: EXPIRED,
    };
    assert.deepEqual(await get(store, id!), expected);
  });

  it("after such a reap, every claim ahead says to record its start first, until an outcome of the task is recorded", async ({ store }) => {
    const [id] = await insert(store, 1);
    let now = T0;
    await claimOne(store, { start: 0, now });
    now += LEASE_MS + 1;
    await store.taskReapExpired(now);
    const ahead = await claimOne(store, { start: 0, now });
    assert.deepEqual([ahead.recordStartFirst, ahead.task.attempts], [true, 0]);
    // Never started again: still unconfirmed after another reap.
    now += LEASE_MS + 1;
    await store.taskReapExpired(now);
    const atOnce = await claimOne(store, { now });
    assert.equal(atOnce.recordStartFirst, false, "a claim that starts the task records its start itself");
    assert.equal(atOnce.task.attempts, 1);
    // Neither a start nor a release is an outcome: a claim ahead still records its start first.
    assert.deepEqual(await store.taskReleaseMany([fenceOf(atOnce)], now), new Set([id]));
    const again = await claimOne(store, { start: 0, now });
    assert.deepEqual([again.recordStartFirst, again.task.attempts], [true, 0]);
    const retry: Finish = { ...fenceOf(again), status: "queued", runAfter: now, errorMessage: "try again" };
    const recorded = await store.taskRecord({ starts: [startOf(again, now)], finishes: [retry] }, now);
    assert.deepEqual(recorded, { started: new Set([id]), finished: new Set([id]) });
    // An outcome was recorded: a handler of the task returned, so its starts need not be written first.
    const confirmed = await claimOne(store, { start: 0, now });
    assert.deepEqual([confirmed.recordStartFirst, confirmed.task.attempts], [false, 1]);
  });

  it("a task handed back unconfirmed is charged for every later death of its worker, until an outcome of it is recorded", async ({ store }) => {
    const [id] = await insert(store, [newTask({ maxAttempts: 5 })]);
    let now = T0;
    /** Claims the task (ahead of free slots, or to start at once) and lets its worker die holding it. */
    const claimAndDie = async (startsNow: boolean) => {
      const leased = await claimOne(store, { workerId: "w", start: startsNow ? 1 : 0, now });
      if (!startsNow && leased.recordStartFirst) {
        // As the worker does: the start is written before the handler runs, which then kills it.
        const recorded = await store.taskRecord({ starts: [startOf(leased, now)], finishes: [] }, now);
        assert.deepEqual(recorded.started, new Set([id]));
      }
      now += LEASE_MS + 1;
      assert.deepEqual(await store.taskReapExpired(now), { requeued: 1, failed: 0 });
      return { recordStartFirst: leased.recordStartFirst, attempts: (await get(store, id!)).attempts };
    };
    // Its start not written when its worker died: not charged, and marked.
    assert.deepEqual(await claimAndDie(false), { recordStartFirst: false, attempts: 0 });
    // From then on every start is written first, so every death is charged: by a start claimed ahead,
    // by a claim that starts it at once, and by a start claimed ahead again after both.
    assert.deepEqual(await claimAndDie(false), { recordStartFirst: true, attempts: 1 });
    assert.deepEqual(await claimAndDie(true), { recordStartFirst: false, attempts: 2 });
    assert.deepEqual(await claimAndDie(false), { recordStartFirst: true, attempts: 3 });
    // An outcome (a retry here) ends it: a handler of the task returned.
    const leased = await claimOne(store, { workerId: "w", start: 0, now });
    assert.equal(leased.recordStartFirst, true);
    const retry: Finish = { ...fenceOf(leased), status: "queued", runAfter: now, errorMessage: "try again" };
    const recorded = await store.taskRecord({ starts: [startOf(leased, now)], finishes: [retry] }, now);
    assert.deepEqual(recorded.finished, new Set([id]));
    assert.deepEqual(await claimAndDie(false), { recordStartFirst: false, attempts: 4 });
  });

  it("a reap of some leases takes only those still held by the claim and deadline named", async ({ store }) => {
    const [a, b, c, d] = await insert(store, 4);
    const leased = await claim(store, { limit: 4 });
    const expired = await store.taskExpiredLeases(EXPIRED, 10);
    assert.deepEqual(expired.map((lease) => lease.id), [a, b, c, d]);
    // Since that listing: b's lease was renewed; c was released and claimed again (a new token and deadline).
    assert.equal(await store.taskExtendLease(fenceOf(leased[1]!), EXPIRED + 5000, EXPIRED), true);
    await store.taskReleaseMany([fenceOf(leased[2]!)], EXPIRED);
    const cAgain = await claimOne(store, { now: EXPIRED - LEASE_MS - 1 });
    assert.equal(cAgain.task.id, c);
    // d is not named.
    const result = await store.taskReapExpired(EXPIRED, expired.filter((lease) => lease.id !== d));
    assert.deepEqual(result, { requeued: 1, failed: 0 });
    assert.equal((await get(store, a!)).status, "queued");
    assert.deepEqual(await get(store, b!), { ...leased[1]!.task, leaseUntil: EXPIRED + 5000 });
    assert.deepEqual(await get(store, c!), cAgain.task);
    assert.deepEqual(await get(store, d!), leased[3]!.task);
  });

  it("a reap counts what it did across many leases: some requeued, some failed", async ({ store }) => {
    await insert(store, [
      newTask({ maxAttempts: 1 }),
      newTask({ maxAttempts: 2 }),
      newTask({ maxAttempts: 1 }),
    ]);
    const leased = await claim(store, { limit: 3, start: 2 });
    assert.deepEqual(leased.map((l) => l.task.attempts), [1, 1, 0]);
    assert.deepEqual(await store.taskReapExpired(EXPIRED), { requeued: 2, failed: 1 });
    assert.deepEqual(
      await Promise.all(leased.map(async (l) => (await get(store, l.task.id)).status)),
      ["failed", "queued", "queued"],
    );
  });
});
