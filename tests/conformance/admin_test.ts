/**
 * Conformance: an operator's state changes. Cancelling a queued or running task, putting failed and
 * cancelled tasks back in the queue, and purging finished ones; each refused, with the named error, from a
 * status the transitions table does not allow.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TaskNotFoundError, TaskStateError } from "../../src/errors.ts";
import type { Store } from "../../src/store/store.ts";
import type { Task, TaskStatus } from "../../src/task.ts";
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
  rejection,
  T0,
} from "./_fixtures.ts";

/** One task in each of the five statuses, each finished one at T0 + 1, ids in the order of the statuses. */
async function oneOfEach(store: Store): Promise<Record<TaskStatus, number>> {
  const [queued, running, completed, failed, cancelled] = await insert(store, 5);
  await store.taskCancel(cancelled!, T0 + 1);
  const leased = await claim(store, { limit: 3 });
  assert.deepEqual(leased.map((l) => l.task.id), [queued, running, completed]);
  // The first was claimed only because fifo takes it first: it goes back.
  assert.deepEqual(await store.taskReleaseMany([fenceOf(leased[0]!)], T0 + 1), new Set([queued]));
  await finish(store, [{ ...fenceOf(leased[2]!), status: "completed" }], T0 + 1);
  const toFail = await claimOne(store, { now: T0 + 1, strategy: "lifo" });
  assert.equal(toFail.task.id, failed, "lifo takes the newest queued task");
  await finish(store, [{ ...fenceOf(toFail), status: "failed", errorMessage: "broken" }], T0 + 1);
  return {
    queued: queued!,
    running: running!,
    completed: completed!,
    failed: failed!,
    cancelled: cancelled!,
  };
}

describeEachStore("cancelling tasks", (it) => {
  it("a queued task is cancelled: finished and updated at the cancel's now, and never claimed", async ({ store }) => {
    const [id] = await insert(store, 1);
    const before = await get(store, id!);
    const cancelled = await store.taskCancel(id!, T0 + 10);
    const expected: Task = { ...before, status: "cancelled", updatedAt: T0 + 10, finishedAt: T0 + 10 };
    assert.deepEqual(cancelled, expected);
    assert.deepEqual(await get(store, id!), expected);
    assert.deepEqual(await claim(store, { now: T0 + 20 }), []);
  });

  it("a running task is cancelled: its lease is dropped, and its claim's outcome, extension and release are refused", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store);
    const cancelled = await store.taskCancel(id!, T0 + 10);
    const expected: Task = {
      ...leased.task,
      status: "cancelled",
      leaseUntil: null,
      updatedAt: T0 + 10,
      finishedAt: T0 + 10,
    };
    assert.deepEqual(cancelled, expected);
    assert.deepEqual(await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 11), new Set());
    assert.equal(await store.taskExtendLease(fenceOf(leased), T0 + 5000, T0 + 11), false);
    assert.deepEqual(await store.taskReleaseMany([fenceOf(leased)], T0 + 11), new Set());
    assert.deepEqual(await store.workerHeartbeat(null, [fenceOf(leased)], T0 + 5000), [{
      id,
      status: "cancelled",
    }]);
    assert.deepEqual(await store.taskExpiredLeases(T0 + 10 * LEASE_MS, 10), []);
    assert.deepEqual(await get(store, id!), expected);
  });

  it("a completed, failed or cancelled task cannot be cancelled: TaskStateError, and nothing changes", async ({ store }) => {
    const ids = await oneOfEach(store);
    for (const status of ["completed", "failed", "cancelled"] as const) {
      const before = await get(store, ids[status]);
      assert.equal(before.status, status);
      const error = await rejection(store.taskCancel(ids[status], T0 + 50), TaskStateError);
      assert.equal(error.taskId, ids[status]);
      assert.equal(error.status, status);
      assert.equal(
        error.message,
        `Cannot cancel task ${
          ids[status]
        }: it is '${status}', and only 'queued' or 'running' tasks can be cancelled.`,
      );
      assert.deepEqual(await get(store, ids[status]), before);
    }
  });

  it("cancelling a task that does not exist throws TaskNotFoundError", async ({ store }) => {
    const error = await rejection(store.taskCancel(999, T0), TaskNotFoundError);
    assert.equal(error.taskId, 999);
    assert.equal(error.message, "No task with id 999.");
  });
});

describeEachStore("requeueing tasks", (it) => {
  it("a failed task goes back to the queue with fresh attempts, due at the requeue's now, its error kept", async ({ store }) => {
    const ids = await oneOfEach(store);
    const before = await get(store, ids.failed);
    const requeued = await store.taskRequeue(ids.failed, T0 + 5000);
    const expected: Task = {
      ...before,
      status: "queued",
      attempts: 0,
      runAfter: T0 + 5000,
      updatedAt: T0 + 5000,
      finishedAt: null,
    };
    assert.deepEqual(requeued, expected);
    assert.equal(expected.errorMessage, "broken");
    assert.deepEqual(await get(store, ids.failed), expected);
    const again = await claimOne(store, { now: T0 + 5000, strategy: "lifo" });
    assert.deepEqual([again.task.id, again.task.attempts], [ids.failed, 1]);
  });

  it("a cancelled task goes back to the queue", async ({ store }) => {
    const ids = await oneOfEach(store);
    const requeued = await store.taskRequeue(ids.cancelled, T0 + 20);
    assert.deepEqual(
      [requeued.status, requeued.attempts, requeued.runAfter, requeued.finishedAt],
      ["queued", 0, T0 + 20, null],
    );
  });

  it("a queued, running or completed task cannot be requeued: TaskStateError; a missing one: TaskNotFoundError", async ({ store }) => {
    const ids = await oneOfEach(store);
    for (const status of ["queued", "running", "completed"] as const) {
      const before = await get(store, ids[status]);
      const error = await rejection(store.taskRequeue(ids[status], T0 + 50), TaskStateError);
      assert.equal(error.taskId, ids[status]);
      assert.equal(error.status, status);
      assert.equal(
        error.message,
        `Cannot retry task ${
          ids[status]
        }: it is '${status}', and only 'failed' or 'cancelled' tasks can be retried.`,
      );
      assert.deepEqual(await get(store, ids[status]), before);
    }
    assert.equal((await rejection(store.taskRequeue(424242, T0), TaskNotFoundError)).taskId, 424242);
  });

  it("every failed task, or every failed task of one type, goes back at once; the count is returned", async ({ store }) => {
    const [a1, a2, b1, c1, a3] = await insert(
      store,
      ["a", "a", "b", "c", "a"].map((type) => newTask({ type })),
    );
    const leased = await claim(store, { limit: 5 });
    await finish(store, [
      ...leased.slice(0, 4).map((l) => ({ ...fenceOf(l), status: "failed" as const, errorMessage: "x" })),
      { ...fenceOf(leased[4]!), status: "completed" },
    ], T0 + 1);
    assert.equal(await store.taskRequeueFailed("a", T0 + 2), 2);
    const statuses = () =>
      Promise.all([a1, a2, b1, c1, a3].map(async (id) => (await get(store, id!)).status));
    assert.deepEqual(await statuses(), ["queued", "queued", "failed", "failed", "completed"]);
    const requeued = await get(store, a1!);
    assert.deepEqual([requeued.attempts, requeued.runAfter, requeued.finishedAt], [0, T0 + 2, null]);
    assert.equal(await store.taskRequeueFailed("a", T0 + 3), 0);
    assert.equal(await store.taskRequeueFailed(undefined, T0 + 3), 2);
    assert.deepEqual(await statuses(), ["queued", "queued", "queued", "queued", "completed"]);
  });
});

describeEachStore("retrying tasks that match a filter", (it) => {
  it("every task of one status, type and queue goes back at once, as a retry of each would; others stay", async ({ store }) => {
    const [a1, a2, b1, c1, a3] = await insert(store, [
      newTask({ type: "a" }),
      newTask({ type: "a", queue: "q" }),
      newTask({ type: "b", queue: "q" }),
      newTask({ type: "c" }),
      newTask({ type: "a" }),
    ]);
    const leased = await claim(store, { limit: 4 });
    await finish(
      store,
      leased.map((l) => ({ ...fenceOf(l), status: "failed" as const, errorMessage: "x" })),
      T0 + 1,
    );
    await store.taskCancel(a3!, T0 + 1);
    const statuses = () =>
      Promise.all([a1, a2, b1, c1, a3].map(async (id) => (await get(store, id!)).status));

    assert.equal(await store.taskRequeueWhere({ status: "failed", type: "a", queue: "q" }, T0 + 2), 1);
    assert.deepEqual(await statuses(), ["failed", "queued", "failed", "failed", "cancelled"]);
    const requeued = await get(store, a2!);
    assert.deepEqual([requeued.attempts, requeued.runAfter, requeued.finishedAt], [0, T0 + 2, null]);

    assert.equal(await store.taskRequeueWhere({ status: "failed", queue: "q" }, T0 + 3), 1, "b1 only");
    assert.equal(await store.taskRequeueWhere({ status: "cancelled", type: "b" }, T0 + 3), 0);
    assert.equal(await store.taskRequeueWhere({ status: "cancelled" }, T0 + 3), 1, "a3 only");
    assert.deepEqual(await statuses(), ["failed", "queued", "queued", "failed", "queued"]);
    assert.equal(await store.taskRequeueWhere({ status: "failed" }, T0 + 4), 2);
    assert.equal(await store.taskRequeueWhere({ status: "failed" }, T0 + 4), 0);
    assert.deepEqual(await statuses(), ["queued", "queued", "queued", "queued", "queued"]);
  });
});

describeEachStore("deleting one task", (it) => {
  it("a finished task goes with its logs; a queued or running one is refused; the newest task is kept", async ({ store }) => {
    const ids = await oneOfEach(store);
    await insert(store, 1); // newer than them all
    await store.taskLogAppend([{ taskId: ids.failed, at: T0, level: "info", message: "x" }]);
    for (const status of ["completed", "failed", "cancelled"] as const) {
      assert.equal(await store.taskDelete(ids[status]), true, status);
      assert.equal(await store.taskGet(ids[status]), undefined);
    }
    assert.deepEqual(await store.taskLogList(ids.failed), []);
    for (const status of ["queued", "running"] as const) {
      const before = await get(store, ids[status]);
      const error = await rejection(store.taskDelete(ids[status]), TaskStateError);
      assert.equal(error.status, status);
      assert.match(error.message, /only 'completed' or 'failed' or 'cancelled' tasks can be deleted/);
      assert.deepEqual(await get(store, ids[status]), before);
    }
    assert.equal((await rejection(store.taskDelete(ids.completed), TaskNotFoundError)).taskId, ids.completed);

    const [newest] = await insert(store, 1);
    await store.taskCancel(newest!, T0 + 2);
    assert.equal(await store.taskDelete(newest!), false, "the newest task is kept");
    assert.equal((await get(store, newest!)).status, "cancelled");
    await insert(store, 1);
    assert.equal(await store.taskDelete(newest!), true, "once a newer task exists");
  });
});

describeEachStore("purging tasks", (it) => {
  it("deletes finished tasks of the statuses given that finished before the time given, with their logs", async ({ store }) => {
    const ids = await oneOfEach(store); // all finished at T0 + 1
    const [newer] = await insert(store, 1, T0 + 2);
    const newerLease = await claimOne(store, { now: T0 + 2, strategy: "lifo" });
    assert.equal(newerLease.task.id, newer);
    await finish(store, [{ ...fenceOf(newerLease), status: "completed" }], T0 + 10);
    const [keepsIdsAhead] = await insert(store, 1, T0 + 11); // a newer task that stays queued
    await store.taskLogAppend([
      { taskId: ids.completed, at: T0, level: "info", message: "old" },
      { taskId: newer!, at: T0 + 5, level: "info", message: "new" },
    ]);

    assert.equal(
      await store.taskPurge(["completed", "failed"], T0 + 1),
      0,
      "finished at the time itself: kept",
    );
    assert.equal(await store.taskPurge(["completed", "failed"], T0 + 2), 2);
    assert.equal(await store.taskGet(ids.completed), undefined);
    assert.equal(await store.taskGet(ids.failed), undefined);
    assert.deepEqual(await store.taskLogList(ids.completed), [], "its log went with it");
    for (const id of [ids.queued, ids.running, ids.cancelled, newer!, keepsIdsAhead!]) {
      assert.ok(await store.taskGet(id), `task ${id} kept`);
    }
    assert.deepEqual((await store.taskLogList(newer!)).map((log) => log.message), ["new"]);
    assert.equal(await store.taskPurge(["cancelled"], T0 + 100), 1);
    assert.equal(await store.taskPurge(["completed"], T0 + 100), 1);
    assert.equal(await store.taskGet(newer!), undefined);
  });

  it("never deletes a queued or running task, whatever statuses and time it is given", async ({ store }) => {
    const ids = await oneOfEach(store);
    await insert(store, 1, T0 + 2); // newest
    assert.equal(await store.taskPurge(["queued", "running"], T0 + 1_000_000), 0);
    assert.equal((await get(store, ids.queued)).status, "queued");
    assert.equal((await get(store, ids.running)).status, "running");
  });

  it("a purged task's id is never given to a new task", async ({ store }) => {
    const ids = await insert(store, 3);
    const leased = await claim(store, { limit: 3 });
    await finish(store, leased.map((l) => ({ ...fenceOf(l), status: "completed" as const })), T0 + 1);
    // A store may keep some finished tasks to keep ids unique (SQLite keeps the newest): the count says.
    const purged = await store.taskPurge(["completed"], T0 + 2);
    const gone = [];
    for (const id of ids) if ((await store.taskGet(id)) === undefined) gone.push(id);
    assert.equal(purged, gone.length, "the count is of the tasks deleted");
    assert.ok(purged >= 1, "at least the oldest was purged");
    const [next] = await insert(store, 1, T0 + 3);
    assert.ok(next! > Math.max(...ids), `new id ${next} is above every earlier id (${ids.join(", ")})`);
    const more = await insert(store, [newTask(), newTask({ idempotencyKey: "k" })], T0 + 4);
    for (const id of more) assert.ok(id > next!, `id ${id} is new`);
  });
});
