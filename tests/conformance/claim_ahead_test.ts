/**
 * Conformance: claiming ahead of free slots. A claim starts its first `start` tasks at once (their attempt
 * counts); the rest are claimed ahead, their attempts untouched until a start is recorded, or until their
 * outcome is; and a release gives back only an attempt that was counted.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, get, insert, newTask, startOf, T0 } from "./_fixtures.ts";

/** The fields a claim ahead decides. */
function attempt(task: Task) {
  return { status: task.status, attempts: task.attempts, startedAt: task.startedAt };
}

describeEachStore("claiming ahead", (it) => {
  it("a claim starts its first `start` tasks in claim order and claims the rest ahead, listing the started first", async ({ store }) => {
    const ids = await insert(store, [3, 1, 4, 2, 5].map((priority) => newTask({ priority })));
    const leased = await claim(store, { strategy: "priority", limit: 4, start: 2, now: T0 + 7 });
    // Claim order is by priority: ids[1] (1), ids[3] (2), ids[0] (3), ids[2] (4).
    assert.deepEqual(leased.map((l) => l.task.id), [ids[1], ids[3], ids[0], ids[2]]);
    assert.deepEqual(leased.map((l) => attempt(l.task)), [
      { status: "running", attempts: 1, startedAt: T0 + 7 },
      { status: "running", attempts: 1, startedAt: T0 + 7 },
      { status: "running", attempts: 0, startedAt: null },
      { status: "running", attempts: 0, startedAt: null },
    ]);
    for (const l of leased) assert.deepEqual(await get(store, l.task.id), l.task, `task ${l.task.id}`);
    assert.deepEqual(leased.map((l) => l.recordStartFirst), [false, false, false, false]);
    assert.equal((await get(store, ids[4]!)).status, "queued");
  });

  it("without `start`, every task claimed starts at once; with start 0, none does", async ({ store }) => {
    await insert(store, 4);
    const all = await claim(store, { limit: 2 });
    assert.deepEqual(all.map((l) => l.task.attempts), [1, 1]);
    const none = await claim(store, { limit: 2, start: 0 });
    assert.deepEqual(none.map((l) => attempt(l.task)), [
      { status: "running", attempts: 0, startedAt: null },
      { status: "running", attempts: 0, startedAt: null },
    ]);
  });

  it("a recorded start counts the attempt once, at the start's time; a second start of the claim holds but counts nothing", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { start: 0 });
    const first = await store.taskRecord({ starts: [startOf(leased, T0 + 3)], finishes: [] }, T0 + 4);
    assert.deepEqual(first, { started: new Set([id]), finished: new Set() });
    assert.deepEqual(attempt(await get(store, id!)), { status: "running", attempts: 1, startedAt: T0 + 3 });
    assert.equal((await get(store, id!)).updatedAt, T0 + 4);
    const second = await store.taskRecord({ starts: [startOf(leased, T0 + 9)], finishes: [] }, T0 + 9);
    assert.deepEqual(second.started, new Set([id]));
    assert.deepEqual(attempt(await get(store, id!)), { status: "running", attempts: 1, startedAt: T0 + 3 });
  });

  it("an outcome of a task whose start was never recorded counts its attempt, started at the outcome's now", async ({ store }) => {
    const [a, b, c] = await insert(store, 3);
    const leased = await claim(store, { limit: 3, start: 0 });
    const finished = await store.taskRecord({
      starts: [],
      finishes: [
        { ...fenceOf(leased[0]!), status: "completed" },
        { ...fenceOf(leased[1]!), status: "queued", runAfter: T0 + 100, errorMessage: "again" },
        { ...fenceOf(leased[2]!), status: "failed", errorMessage: "broken" },
      ],
    }, T0 + 20);
    assert.deepEqual(finished.finished, new Set([a, b, c]));
    assert.deepEqual(attempt(await get(store, a!)), { status: "completed", attempts: 1, startedAt: T0 + 20 });
    assert.deepEqual(attempt(await get(store, b!)), { status: "queued", attempts: 1, startedAt: T0 + 20 });
    assert.deepEqual(attempt(await get(store, c!)), { status: "failed", attempts: 1, startedAt: T0 + 20 });
  });

  it("a start and an outcome of one task in one write count one attempt, and the start is reported as recorded", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { start: 0 });
    const recorded = await store.taskRecord({
      starts: [startOf(leased, T0 + 1)],
      finishes: [{ ...fenceOf(leased), status: "completed" }],
    }, T0 + 2);
    assert.deepEqual(recorded, { started: new Set([id]), finished: new Set([id]) });
    const done = await get(store, id!);
    assert.equal(done.status, "completed");
    assert.equal(done.attempts, 1);
    assert.equal(done.finishedAt, T0 + 2);
  });

  it("a start whose fence no longer holds changes nothing and is not reported", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { start: 0 });
    assert.deepEqual(await store.taskReleaseMany([fenceOf(leased)], T0 + 1), new Set([id]));
    const before = await get(store, id!);
    const recorded = await store.taskRecord({ starts: [startOf(leased, T0 + 2)], finishes: [] }, T0 + 2);
    assert.deepEqual(recorded, { started: new Set(), finished: new Set() });
    assert.deepEqual(await get(store, id!), before);
  });

  it("a release gives back the attempt of a started task, and leaves a task claimed ahead as it was", async ({ store }) => {
    const [started, ahead] = await insert(store, 2);
    const leased = await claim(store, { limit: 2, start: 1 });
    assert.deepEqual(leased.map((l) => l.task.id), [started, ahead]);
    assert.deepEqual(await store.taskReleaseMany(leased.map(fenceOf), T0 + 50), new Set([started, ahead]));
    for (const id of [started!, ahead!]) {
      const task = await get(store, id);
      assert.deepEqual(
        {
          status: task.status,
          attempts: task.attempts,
          leaseUntil: task.leaseUntil,
          runAfter: task.runAfter,
        },
        { status: "queued", attempts: 0, leaseUntil: null, runAfter: T0 },
        `task ${id}`,
      );
      assert.equal(task.updatedAt, T0 + 50);
    }
    // Released tasks keep their place: they are claimed again first, in the same order.
    assert.deepEqual((await claim(store, { limit: 2 })).map((l) => l.task.id), [started, ahead]);
  });

  it("records outcomes, then claims, in one call: a task retried for now is claimable by that same call", async ({ store }) => {
    const [retried, other] = await insert(store, 2);
    const leased = await claimOne(store);
    assert.equal(leased.task.id, retried);
    const result = await store.taskRecordAndClaim(
      {
        starts: [],
        finishes: [{ ...fenceOf(leased), status: "queued", runAfter: T0 + 5, errorMessage: "x" }],
      },
      { workerId: "w1", limit: 5, leaseMs: 1000, now: T0 + 5, strategy: "fifo" },
    );
    assert.deepEqual(result.finished, new Set([retried]));
    assert.deepEqual(result.started, new Set());
    assert.deepEqual(result.leased.map((l) => l.task.id), [retried, other]);
    const again = await get(store, retried!);
    assert.equal(again.status, "running");
    assert.equal(again.attempts, 2);
    assert.equal(again.errorMessage, "x");
  });

  it("records starts in the same call as its claim, and with nothing to record is a plain claim", async ({ store }) => {
    const [a, b, c] = await insert(store, 3);
    const { leased, started, finished } = await store.taskRecordAndClaim(
      { starts: [], finishes: [] },
      { workerId: "w1", limit: 2, start: 0, leaseMs: 1000, now: T0, strategy: "fifo" },
    );
    assert.deepEqual(leased.map((l) => l.task.id), [a, b]);
    assert.deepEqual([started, finished], [new Set(), new Set()]);
    const next = await store.taskRecordAndClaim(
      { starts: leased.map((l) => startOf(l, T0 + 1)), finishes: [] },
      { workerId: "w1", limit: 1, leaseMs: 1000, now: T0 + 2, strategy: "fifo" },
    );
    assert.deepEqual(next.started, new Set([a, b]));
    assert.deepEqual(next.leased.map((l) => l.task.id), [c]);
    for (const id of [a!, b!]) {
      assert.deepEqual(attempt(await get(store, id)), { status: "running", attempts: 1, startedAt: T0 + 1 });
    }
  });
});
