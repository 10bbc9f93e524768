/**
 * Conformance: the state of schedules. A schedule's state is made once, as first seen; a slot fires (its
 * task inserted, its state advanced) only by compare-and-set from the state the caller read, only forward,
 * and never twice: not by callers at once, not by a stale caller, not after the slot's task was purged.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ScheduleFire, Store } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { claimOne, fenceOf, finish, get, newTask, T0 } from "./_fixtures.ts";

const SECOND = 1000;

function fire(
  store: Store,
  slot: number,
  expectedSlot: number | null,
  name = "every_second",
): Promise<{ fired: true; taskId: number } | { fired: false }> {
  const fire: ScheduleFire = {
    name,
    slot,
    expectedSlot,
    task: newTask({ type: "tick", payload: '{"n":1}', runAfter: slot }),
    now: slot + 5,
  };
  return store.scheduleFire(fire);
}

describeEachStore("schedules", (it) => {
  it("a schedule's state is made as first seen, once, and answered in the order asked", async ({ store }) => {
    const [a] = await store.scheduleEnsure(["a"], T0);
    assert.deepEqual(a, { name: "a", since: T0, lastSlot: null, lastTaskId: null, firedAt: null });
    const states = await store.scheduleEnsure(["b", "a"], T0 + 10 * SECOND);
    assert.deepEqual(states.map((s) => [s.name, s.since]), [["b", T0 + 10 * SECOND], ["a", T0]]);
    assert.deepEqual((await store.scheduleList()).map((s) => s.name), ["a", "b"]);
    assert.deepEqual(await store.scheduleEnsure([], T0), []);
  });

  it("a fire inserts the slot's task and advances the state in one step", async ({ store }) => {
    await store.scheduleEnsure(["every_second"], T0);
    const result = await fire(store, T0 + SECOND, null);
    assert.ok(result.fired);
    const task = await get(store, result.taskId);
    assert.deepEqual([task.type, task.payload, task.runAfter, task.status], [
      "tick",
      { n: 1 },
      T0 + SECOND,
      "queued",
    ]);
    const [state] = await store.scheduleList();
    assert.deepEqual(state, {
      name: "every_second",
      since: T0,
      lastSlot: T0 + SECOND,
      lastTaskId: result.taskId,
      firedAt: T0 + SECOND + 5,
    });
  });

  it("a slot fires once: a second fire from the same state, or from a stale one, inserts nothing", async ({ store }) => {
    await store.scheduleEnsure(["every_second"], T0);
    assert.ok((await fire(store, T0 + SECOND, null)).fired);
    assert.deepEqual(await fire(store, T0 + SECOND, null), { fired: false }, "the same slot again");
    assert.deepEqual(await fire(store, T0 + 2 * SECOND, null), { fired: false }, "a later slot, stale state");
    assert.ok((await fire(store, T0 + 2 * SECOND, T0 + SECOND)).fired);
    assert.deepEqual(await fire(store, T0 + SECOND, T0 + 2 * SECOND), { fired: false }, "backwards");
    assert.deepEqual(await fire(store, T0 + 2 * SECOND, T0 + 2 * SECOND), { fired: false }, "not forward");
    assert.equal((await store.taskList({ limit: 100, offset: 0 })).length, 2);
  });

  it("no slot at or before the moment the schedule was first seen fires", async ({ store }) => {
    await store.scheduleEnsure(["every_second"], T0);
    assert.deepEqual(await fire(store, T0, null), { fired: false });
    assert.deepEqual(await fire(store, T0 - SECOND, null), { fired: false });
    assert.equal((await store.taskList({ limit: 100, offset: 0 })).length, 0);
  });

  it("a schedule without state is not fired", async ({ store }) => {
    assert.deepEqual(await fire(store, T0 + SECOND, null, "unknown"), { fired: false });
    assert.equal((await store.taskList({ limit: 100, offset: 0 })).length, 0);
  });

  it("of many fires of one slot at once, exactly one inserts a task", async ({ store }) => {
    await store.scheduleEnsure(["every_second"], T0);
    const results = await Promise.all(Array.from({ length: 8 }, () => fire(store, T0 + SECOND, null)));
    assert.equal(results.filter((r) => r.fired).length, 1);
    assert.equal((await store.taskList({ limit: 100, offset: 0 })).length, 1);
  });

  it("of fires through two handles at once, exactly one inserts a task", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const other = await reopen();
    await store.scheduleEnsure(["every_second"], T0);
    let expected: number | null = null;
    for (let slot = T0 + SECOND; slot <= T0 + 5 * SECOND; slot += SECOND) {
      const results: { fired: boolean }[] = await Promise.all([
        fire(store, slot, expected),
        fire(other, slot, expected),
      ]);
      assert.equal(results.filter((r) => r.fired).length, 1, `slot ${slot - T0}`);
      expected = slot;
    }
    assert.equal((await store.taskList({ limit: 100, offset: 0 })).length, 5);
  });

  it("a slot whose task was completed and purged does not fire again", async ({ store }) => {
    await store.scheduleEnsure(["every_second"], T0);
    const first = await fire(store, T0 + SECOND, null);
    assert.ok(first.fired);
    const leased = await claimOne(store, { now: T0 + 2 * SECOND });
    await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 2 * SECOND);
    // The newest task stays on purge (ids are never reused): a later one makes the first purgeable.
    await store.taskInsertMany([newTask({ type: "other" })], T0 + 3 * SECOND);
    assert.equal(await store.taskPurge(["completed"], T0 + 4 * SECOND), 1);
    assert.equal(await store.taskGet(first.taskId), undefined);
    assert.deepEqual(await fire(store, T0 + SECOND, null), { fired: false });
    assert.deepEqual(await fire(store, T0 + SECOND, T0 + SECOND), { fired: false });
    assert.equal((await store.scheduleList())[0]!.lastSlot, T0 + SECOND);
  });

  it("a slot whose task's unique key another task holds inserts nothing: the slot is done and names the holder", async ({ store }) => {
    await store.scheduleEnsure(["no_overlap"], T0);
    const keyedFire = (slot: number, expectedSlot: number | null, uniqueForMs: number | null) =>
      store.scheduleFire({
        name: "no_overlap",
        slot,
        expectedSlot,
        task: newTask({ type: "tick", runAfter: slot, uniqueKey: "schedule:no_overlap", uniqueForMs }),
        now: slot + 5,
      });
    const first = await keyedFire(T0 + SECOND, null, null);
    assert.ok(first.fired);
    // The first run is still queued: the next slot is skipped, recorded as served by it.
    assert.deepEqual(await keyedFire(T0 + 2 * SECOND, T0 + SECOND, null), {
      fired: true,
      taskId: first.taskId,
    });
    const [state] = await store.scheduleList();
    assert.deepEqual([state!.lastSlot, state!.lastTaskId], [T0 + 2 * SECOND, first.taskId]);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 1);
    // Once it has run, the next slot fires a new task.
    const leased = await claimOne(store, { now: T0 + 2 * SECOND + 10 });
    await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 2 * SECOND + 20);
    const third = await keyedFire(T0 + 3 * SECOND, T0 + 2 * SECOND, null);
    assert.ok(third.fired && third.taskId !== first.taskId);
    // A window key: held for its window from the task's creation, then released by the slot that finds it over.
    await store.scheduleEnsure(["windowed"], T0);
    const windowed = (slot: number, expectedSlot: number | null) =>
      store.scheduleFire({
        name: "windowed",
        slot,
        expectedSlot,
        task: newTask({
          type: "tock",
          runAfter: slot,
          uniqueKey: "schedule:windowed",
          uniqueForMs: 2 * SECOND,
        }),
        now: slot,
      });
    const opened = await windowed(T0 + SECOND, null);
    assert.ok(opened.fired);
    assert.deepEqual(await windowed(T0 + 2 * SECOND, T0 + SECOND), { fired: true, taskId: opened.taskId });
    const next = await windowed(T0 + 3 * SECOND, T0 + 2 * SECOND);
    assert.ok(
      next.fired && next.taskId !== opened.taskId,
      "the window from the first task's creation is over",
    );
  });
});
