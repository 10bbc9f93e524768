/**
 * Conformance: task dependencies. A task inserted with `dependsOn` waits until they have all completed,
 * in the transaction of the last completion; one that failed or was cancelled cancels what waits on it,
 * down the chain, saying why; and the edges of that: dependencies that do not exist, that had finished
 * before, retries of cancelled dependents, purges, the application's transaction, two completions at once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DependencyError, TaskStateError } from "../../src/errors.ts";
import type { Store } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import {
  claim,
  claimOne,
  fenceOf,
  finish,
  get,
  insert,
  newTask,
  rejection,
  sorted,
  T0,
} from "./_fixtures.ts";

/** Inserts one task depending on `dependsOn`; returns its id. */
async function dependent(store: Store, dependsOn: number[], now = T0): Promise<number> {
  const [id] = await insert(store, [newTask({ type: "fan_in", dependsOn })], now);
  return id!;
}

/** Claims the task `id` (the only runnable one) and records its outcome; fails the test if it is not. */
async function run(store: Store, id: number, outcome: "completed" | "failed", now = T0 + 10) {
  const leased = await claimOne(store, { now });
  assert.equal(leased.task.id, id, `task ${id} is the one claimed`);
  const finishes = outcome === "completed"
    ? [{ ...fenceOf(leased), status: "completed" as const }]
    : [{ ...fenceOf(leased), status: "failed" as const, errorMessage: "boom" }];
  assert.deepEqual(await finish(store, finishes, now), new Set([id]));
}

describeEachStore("dependencies", (it) => {
  it("a task with unfinished dependencies waits, unclaimable, and is queued once the last completes", async ({ store }) => {
    const [a, b] = await insert(store, 2);
    const c = await dependent(store, [a!, b!]);
    assert.equal((await get(store, c)).status, "waiting");
    const both = await claim(store, { limit: 10 });
    assert.deepEqual(sorted(both.map((l) => l.task.id)), [a, b], "the waiting task is not claimed");
    await finish(store, [{ ...fenceOf(both[0]!), status: "completed" }], T0 + 10);
    assert.equal((await get(store, c)).status, "waiting", "one dependency is still running");
    await finish(store, [{ ...fenceOf(both[1]!), status: "completed" }], T0 + 20);
    const released = await get(store, c);
    assert.equal(released.status, "queued");
    assert.equal(released.updatedAt, T0 + 20);
    assert.equal((await claimOne(store, { now: T0 + 20 })).task.id, c);
  });

  it("a task's dependency ids are read both ways, ascending; a task without any, or none at all, has none", async ({ store }) => {
    const [a, b, alone] = await insert(store, 3);
    const c = await dependent(store, [b!, a!]);
    const d = await dependent(store, [a!]);
    assert.deepEqual(await store.taskDependencyIds(c), { dependsOn: [a, b], dependents: [] });
    assert.deepEqual(await store.taskDependencyIds(a!), { dependsOn: [], dependents: [c, d] });
    assert.deepEqual(await store.taskDependencyIds(alone!), { dependsOn: [], dependents: [] });
    assert.deepEqual(await store.taskDependencyIds(999_999), { dependsOn: [], dependents: [] });
  });

  it("stats and lists count waiting tasks as waiting", async ({ store }) => {
    const [a] = await insert(store, 1);
    const c = await dependent(store, [a!]);
    assert.equal((await store.taskStats(T0)).counts.waiting, 1);
    assert.deepEqual((await store.taskList({ status: "waiting", limit: 10, offset: 0 })).map((t) => t.id), [
      c,
    ]);
    assert.deepEqual(await store.taskPending(T0), { runnable: 1, running: 0 }, "only its dependency runs");
  });

  it("a failure cancels the chain below it: each dependent says which task it waited on and why", async ({ store }) => {
    const a = (await insert(store, 1))[0]!;
    const b = await dependent(store, [a]);
    const c = await dependent(store, [b]);
    const d = await dependent(store, [c]);
    await run(store, a, "failed", T0 + 10);
    const [tb, tc, td] = [await get(store, b), await get(store, c), await get(store, d)];
    assert.deepEqual([tb.status, tc.status, td.status], ["cancelled", "cancelled", "cancelled"]);
    assert.equal(tb.errorMessage, `Dependency task ${a} failed: boom`);
    assert.equal(tc.errorMessage, `Dependency task ${b} was cancelled because task ${a} failed: boom`);
    assert.equal(td.errorMessage, `Dependency task ${c} was cancelled because task ${a} failed: boom`);
    assert.equal(td.finishedAt, T0 + 10);
    assert.deepEqual(await claim(store, { now: T0 + 20 }), [], "nothing is left to run");
  });

  it("a chain of three runs in order: each completion releases the next", async ({ store }) => {
    const a = (await insert(store, 1))[0]!;
    const b = await dependent(store, [a]);
    const c = await dependent(store, [b]);
    await run(store, a, "completed", T0 + 10);
    assert.equal((await get(store, c)).status, "waiting");
    await run(store, b, "completed", T0 + 20);
    await run(store, c, "completed", T0 + 30);
    assert.equal((await get(store, c)).status, "completed");
  });

  it("a fan-in of 300 is queued by the completion of its last dependency, in a grouped write", async ({ store }) => {
    const parts = await insert(store, Array.from({ length: 300 }, () => newTask()));
    const fanIn = await dependent(store, parts);
    const leased = await claim(store, { limit: 300 });
    assert.equal(leased.length, 300);
    const held = await finish(
      store,
      leased.slice(0, 299).map((l) => ({ ...fenceOf(l), status: "completed" })),
      T0 + 10,
    );
    assert.equal(held.size, 299);
    assert.equal((await get(store, fanIn)).status, "waiting");
    await finish(store, [{ ...fenceOf(leased[299]!), status: "completed", result: '{"n":1}' }], T0 + 20);
    assert.equal((await get(store, fanIn)).status, "queued");
  });

  it("an operator's cancel cancels the tasks waiting on it; a cancelled waiting task cancels its own", async ({ store }) => {
    const a = (await insert(store, 1))[0]!;
    const b = await dependent(store, [a]);
    const c = await dependent(store, [b]);
    const cancelled = await store.taskCancel(a, T0 + 5);
    assert.equal(cancelled.status, "cancelled");
    assert.equal((await get(store, b)).errorMessage, `Dependency task ${a} was cancelled`);
    assert.equal((await get(store, c)).status, "cancelled");

    const x = (await insert(store, 1))[0]!;
    const y = await dependent(store, [x]);
    const z = await dependent(store, [y]);
    assert.equal((await store.taskCancel(y, T0 + 6)).status, "cancelled", "a waiting task can be cancelled");
    assert.equal((await get(store, z)).errorMessage, `Dependency task ${y} was cancelled`);
    assert.equal((await get(store, x)).status, "queued", "its own dependency is untouched");
  });

  it("the reaper's final failure of an expired lease cancels what waits on the task", async ({ store }) => {
    const [a] = await insert(store, [newTask({ maxAttempts: 1 })]);
    const b = await dependent(store, [a!]);
    await claimOne(store, { now: T0 });
    assert.deepEqual(await store.taskReapExpired(T0 + 5000), { requeued: 0, failed: 1 });
    const waiting = await get(store, b);
    assert.equal(waiting.status, "cancelled");
    assert.match(waiting.errorMessage ?? "", new RegExp(`^Dependency task ${a} failed: lease expired`));
  });

  it("a dependency no task has is refused, and nothing is inserted", async ({ store }) => {
    const [a] = await insert(store, 1);
    const error = await rejection(
      store.taskInsertMany([newTask(), newTask({ dependsOn: [a!, 424242] })], T0),
      DependencyError,
    );
    assert.equal(error.dependencyId, 424242);
    assert.match(error.message, /depends on task 424242: no task has that id/);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 1, "neither task was inserted");
  });

  it("a completed dependency counts as done; a failed or cancelled one cancels the new task at once", async ({ store }) => {
    const [done, failing] = await insert(store, 2);
    await run(store, done!, "completed", T0 + 10);
    await run(store, failing!, "failed", T0 + 20);
    const [queued, cancelled] = await store.taskInsertMany([
      newTask({ dependsOn: [done!] }),
      newTask({ dependsOn: [done!, failing!] }),
    ], T0 + 30);
    assert.deepEqual(queued!.settled, { status: "queued", errorMessage: null, finishedAt: null });
    assert.equal((await get(store, queued!.id)).status, "queued");
    const expected = `Dependency task ${failing} failed: boom`;
    assert.deepEqual(cancelled!.settled, {
      status: "cancelled",
      errorMessage: expected,
      finishedAt: T0 + 30,
    });
    assert.equal((await get(store, cancelled!.id)).errorMessage, expected);
    const one = await store.taskInsertOne(newTask({ dependsOn: [failing!] }), T0 + 40);
    assert.equal(one.settled?.status, "cancelled", "the one-task insert does the same");
  });

  it("a task found by its idempotency key keeps its own dependencies", async ({ store }) => {
    const [a, b] = await insert(store, 2);
    const first = await store.taskInsertOne(newTask({ idempotencyKey: "k", dependsOn: [a!] }), T0);
    const again = await store.taskInsertOne(newTask({ idempotencyKey: "k", dependsOn: [b!] }), T0);
    assert.equal(again.created, false);
    assert.equal(again.id, first.id);
    await run(store, a!, "completed", T0 + 10);
    assert.equal((await get(store, first.id)).status, "queued", "released by a alone");
  });

  it("a retried cancelled dependent waits again for unfinished dependencies, runs at once when all are done, and is refused while one is failed", async ({ store }) => {
    const [a, b] = await insert(store, 2);
    const c = await dependent(store, [a!, b!]);
    await run(store, a!, "failed", T0 + 10);
    assert.equal((await get(store, c)).status, "cancelled");
    const error = await rejection(store.taskRequeue(c, T0 + 20), DependencyError);
    assert.equal(error.dependencyId, a);
    assert.match(error.message, new RegExp(`Retry task ${a} first`));
    await store.taskRequeue(a!, T0 + 30);
    const waiting = await store.taskRequeue(c, T0 + 40);
    assert.equal(waiting.status, "waiting", "a and b have not completed");
    await run(store, a!, "completed", T0 + 50);
    await run(store, b!, "completed", T0 + 60);
    assert.equal((await get(store, c)).status, "queued");
    await rejection(store.taskRequeue(c, T0 + 70), TaskStateError);
  });

  it("a retry of many cancelled tasks follows the same rule: waiting, queued, or left while a dependency is failed", async ({ store }) => {
    const [a, b, free] = await insert(store, 3);
    const onA = await dependent(store, [a!]);
    const onB = await dependent(store, [b!]);
    await run(store, a!, "failed", T0 + 10);
    await run(store, b!, "failed", T0 + 20);
    await store.taskCancel(free!, T0 + 25);
    assert.equal((await get(store, onA)).status, "cancelled");
    assert.equal((await get(store, onB)).status, "cancelled");
    await store.taskRequeue(b!, T0 + 30);
    assert.equal(await store.taskRequeueWhere({ status: "cancelled" }, T0 + 40), 2, "onB and free");
    assert.equal((await get(store, onA)).status, "cancelled", "its dependency is still failed");
    assert.equal((await get(store, onB)).status, "waiting", "its dependency is queued again");
    assert.equal((await get(store, free!)).status, "queued");
    await run(store, b!, "completed", T0 + 50);
    assert.equal((await get(store, onB)).status, "queued");
  });

  it("a failed or cancelled dependency is kept while a task depending on it is kept: so no retry of that task can run it without it", async ({ store }) => {
    const [a] = await insert(store, 1);
    const d = await dependent(store, [a!], T0 + 5);
    await insert(store, 1, T0 + 6); // the newest task, which purges keep
    await store.taskCancel(a!, T0 + 10);
    assert.equal((await get(store, d)).status, "cancelled");
    const refused = await rejection(store.taskDelete(a!), DependencyError);
    assert.match(refused.message, new RegExp(`task ${d} depends on it and has not completed`));
    await rejection(store.taskRequeue(d, T0 + 11), DependencyError);
    // A purge takes the dependent and keeps the dependency, which the next purge takes.
    assert.equal(await store.taskPurge(["cancelled"], T0 + 100), 1);
    assert.deepEqual((await store.taskGetMany([a!, d])).map((t) => t.id), [a]);
    assert.equal(await store.taskPurge(["cancelled"], T0 + 100), 1);
    assert.deepEqual(await store.taskGetMany([a!, d]), []);
  });

  it("a waiting task holds its unique key held while active, as a queued one does", async ({ store }) => {
    const [a] = await insert(store, 1);
    const active = { uniqueKey: "sync:42", uniqueForMs: null };
    const [first] = await store.taskInsertMany([newTask({ ...active, dependsOn: [a!] })], T0);
    assert.equal((await get(store, first!.id)).status, "waiting");
    const [second] = await store.taskInsertMany([newTask(active)], T0 + 1);
    assert.deepEqual([second!.created, second!.id, second!.matchedKey], [false, first!.id, "unique"]);
  });

  it("purging a completed dependency leaves its waiting dependent waiting on the rest, and counted as done", async ({ store }) => {
    const [a, b, newest] = await insert(store, 3);
    const c = await dependent(store, [a!, b!]);
    await run(store, a!, "completed", T0 + 10);
    assert.equal(await store.taskPurge(["completed"], T0 + 11), 1);
    assert.equal(await store.taskGet(a!), undefined);
    assert.equal((await get(store, c)).status, "waiting", "b has not completed");
    await run(store, b!, "completed", T0 + 20);
    assert.equal((await get(store, c)).status, "queued");
    assert.ok(newest);
  });

  it("an application's transaction inserts tasks with dependencies, released as any", async ({ store }) => {
    const [a] = await insert(store, 1);
    const inserted = await store.transaction((tx) =>
      Promise.resolve(store.taskInsertManyWithin(tx, [newTask({ dependsOn: [a!] })], T0, false))
    );
    assert.equal(inserted[0]!.settled?.status, "waiting");
    await run(store, a!, "completed", T0 + 10);
    assert.equal((await get(store, inserted[0]!.id)).status, "queued");
  });

  it("the last two dependencies completed at once on two handles release the dependent exactly once", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const other = await reopen();
    for (let round = 0; round < 8; round++) {
      const [a, b] = await insert(store, 2);
      const c = await dependent(store, [a!, b!]);
      const leased = await claim(store, { limit: 2, now: T0 + round });
      assert.equal(leased.length, 2);
      const now = T0 + 100 + round;
      await Promise.all([
        finish(store, [{ ...fenceOf(leased[0]!), status: "completed" }], now),
        finish(other, [{ ...fenceOf(leased[1]!), status: "completed" }], now),
      ]);
      const released = await get(store, c);
      assert.equal(released.status, "queued", `round ${round + 1}: released`);
      assert.equal((await claimOne(store, { now })).task.id, c, `round ${round + 1}: claimed once`);
      assert.deepEqual(await claim(store, { now }), [], `round ${round + 1}: nothing else`);
    }
  });
});
