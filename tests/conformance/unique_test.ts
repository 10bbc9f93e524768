/**
 * Conformance: `unique` keys with a scope. A key held while its task is queued or running (`uniqueForMs`
 * null), or for a window from its task's creation; one namespace for both; enforced by the database, also
 * between handles racing on one key; retries of a task whose key another task holds now.
 *
 * @module
 */
import assert from "node:assert/strict";
import { UniqueKeyHeldError } from "../../src/errors.ts";
import type { InsertedTask, NewTask, Store } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { claimOne, fenceOf, finish, get, inserted, newTask, rejection, T0 } from "./_fixtures.ts";

const ACTIVE = { uniqueKey: "sync:42", uniqueForMs: null } as const;
const WINDOW_MS = 600_000;
const WINDOW = { uniqueKey: "digest:7", uniqueForMs: WINDOW_MS } as const;

/** Inserts one task on the one-task path, or in a batch behind a task without a key. */
async function insertBy(
  path: "one" | "many",
  store: Store,
  task: NewTask,
  now: number,
): Promise<InsertedTask> {
  if (path === "one") return await store.taskInsertOne(task, now);
  const [, result] = await store.taskInsertMany([newTask({ type: "unkeyed" }), task], now);
  return result!;
}

/** Asserts that `result` met the key held by task `holder` and created nothing. */
async function assertHeldBy(store: Store, result: InsertedTask, holder: number): Promise<void> {
  assert.deepEqual(result, {
    id: holder,
    created: false,
    existing: await get(store, holder),
    matchedKey: "unique",
  });
}

/** Claims the task `id` (the only one of its type runnable) and finishes it with `status`. */
async function finishTask(
  store: Store,
  id: number,
  status: "completed" | "failed",
  now: number,
): Promise<void> {
  const leased = await claimOne(store, { now, types: [(await get(store, id)).type] });
  assert.equal(leased.task.id, id);
  const outcome = status === "completed"
    ? { ...fenceOf(leased), status }
    : { ...fenceOf(leased), status, errorMessage: "broken" };
  assert.deepEqual(await finish(store, [outcome], now), new Set([id]));
}

/** How many tasks there are. */
async function count(store: Store): Promise<number> {
  return (await store.taskList({ limit: 1000, offset: 0 })).length;
}

describeEachStore("unique keys", (it) => {
  for (const path of ["one", "many"] as const) {
    it(`(${path}) a key held while active refuses a second task while the first is queued, then running, and frees once it finishes`, async ({ store }) => {
      const first = await insertBy(path, store, newTask(ACTIVE), T0);
      assert.equal(first.created, true);
      assert.deepEqual(await get(store, first.id), inserted(first.id, newTask(ACTIVE), T0));
      await assertHeldBy(store, await insertBy(path, store, newTask(ACTIVE), T0 + 1), first.id);
      const leased = await claimOne(store, { now: T0 + 2, types: ["t"] });
      assert.equal(leased.task.id, first.id);
      await assertHeldBy(store, await insertBy(path, store, newTask(ACTIVE), T0 + 3), first.id);
      await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 4);
      const second = await insertBy(path, store, newTask({ ...ACTIVE, payload: '{"n":2}' }), T0 + 5);
      assert.equal(second.created, true, "a finished task holds its key no more");
      assert.notEqual(second.id, first.id);
      await assertHeldBy(store, await insertBy(path, store, newTask(ACTIVE), T0 + 6), second.id);
      assert.equal(
        (await get(store, first.id)).uniqueKey,
        ACTIVE.uniqueKey,
        "the finished task keeps its key",
      );
    });

    it(`(${path}) a window key refuses a second task for the window from the first one's creation, whatever its status, then lets one in`, async ({ store }) => {
      const first = await insertBy(path, store, newTask(WINDOW), T0);
      assert.equal(first.created, true);
      await finishTask(store, first.id, "completed", T0 + 10);
      await assertHeldBy(store, await insertBy(path, store, newTask(WINDOW), T0 + WINDOW_MS - 1), first.id);
      const second = await insertBy(path, store, newTask(WINDOW), T0 + WINDOW_MS);
      assert.equal(second.created, true, "the window is over at created + forMs");
      // The new window runs from the second task's creation, however long the first one's was.
      await assertHeldBy(
        store,
        await insertBy(path, store, newTask(WINDOW), T0 + 2 * WINDOW_MS - 1),
        second.id,
      );
      const third = await insertBy(path, store, newTask(WINDOW), T0 + 2 * WINDOW_MS);
      assert.equal(third.created, true);
      assert.equal(
        (await get(store, first.id)).uniqueForMs,
        WINDOW_MS,
        "released tasks keep their key and window",
      );
    });
  }

  it("a window key is held by a task still queued after its window, until a later enqueue takes it", async ({ store }) => {
    const first = await store.taskInsertOne(newTask(WINDOW), T0);
    const second = await store.taskInsertOne(newTask(WINDOW), T0 + WINDOW_MS + 5);
    assert.equal(second.created, true);
    assert.equal((await get(store, first.id)).status, "queued", "the first task runs as it would have");
  });

  it("keys are one namespace: a task holding a key in one scope refuses a task with the same key in the other", async ({ store }) => {
    const active = await store.taskInsertOne(newTask(ACTIVE), T0);
    await assertHeldBy(
      store,
      await store.taskInsertOne(newTask({ ...WINDOW, uniqueKey: ACTIVE.uniqueKey }), T0),
      active.id,
    );
    const window = await store.taskInsertOne(newTask(WINDOW), T0);
    await assertHeldBy(
      store,
      await store.taskInsertOne(newTask({ ...ACTIVE, uniqueKey: WINDOW.uniqueKey }), T0),
      window.id,
    );
    // And apart from idempotency keys: the same text as an idempotency key is another key.
    const keyed = await store.taskInsertOne(newTask({ idempotencyKey: ACTIVE.uniqueKey }), T0);
    assert.equal(keyed.created, true);
  });

  it("in one batch, the first task with a key takes it and the others get it; matchedKey says which key matched", async ({ store }) => {
    const held = await store.taskInsertOne(newTask({ idempotencyKey: "order-1" }), T0);
    const results = await store.taskInsertMany([
      newTask({ ...ACTIVE, payload: '{"n":1}' }),
      newTask({ ...ACTIVE, payload: '{"n":2}' }),
      newTask(),
      newTask({ ...WINDOW }),
      newTask({ ...WINDOW, idempotencyKey: "order-2" }),
      newTask({ ...ACTIVE, uniqueKey: "other", idempotencyKey: "order-1" }),
    ], T0 + 1);
    assert.deepEqual(results.map((r) => [r.created, r.matchedKey]), [
      [true, undefined],
      [false, "unique"],
      [true, undefined],
      [true, undefined],
      [false, "unique"],
      [false, "idempotencyKey"],
    ]);
    assert.equal(results[1]!.id, results[0]!.id);
    assert.equal(results[4]!.id, results[3]!.id);
    assert.equal(results[5]!.id, held.id);
    assert.deepEqual(results[1]!.existing, await get(store, results[0]!.id));
    assert.ok(
      results[0]!.id < results[2]!.id && results[2]!.id < results[3]!.id,
      "ids grow in the order given",
    );
    assert.equal(await count(store), 4);
    // A key held by the task whose idempotency key did not match: the unique key is the one named.
    const [other] = await store.taskInsertMany([newTask({ ...ACTIVE, idempotencyKey: "order-3" })], T0 + 2);
    assert.deepEqual([other!.id, other!.created, other!.matchedKey], [results[0]!.id, false, "unique"]);
  });

  it("inside a transaction, a held key gives its holder, a new one is taken, and a rollback frees it", async ({ store }) => {
    const holder = await store.taskInsertOne(newTask(ACTIVE), T0);
    const result = await store.transaction(async (tx) =>
      await store.taskInsertManyWithin(tx, [newTask(ACTIVE), newTask(WINDOW)], T0 + 1, false)
    );
    assert.deepEqual(result.map((r) => [r.id === holder.id, r.created, r.matchedKey]), [
      [true, false, "unique"],
      [false, true, undefined],
    ]);
    const boom = new Error("boom");
    const other = { uniqueKey: "rolled-back", uniqueForMs: null };
    const thrown = await store.transaction(async (tx) => {
      const [taken] = await store.taskInsertManyWithin(tx, [newTask(other)], T0 + 2, false);
      assert.equal(taken!.created, true);
      throw boom;
    }).catch((error) => error);
    assert.equal(thrown, boom);
    assert.equal((await store.taskInsertOne(newTask(other), T0 + 3)).created, true, "the rollback freed it");
    // A window over is released inside the transaction, and the release rolls back with it.
    const window = result[1]!.id;
    await store.transaction(async (tx) => {
      const [again] = await store.taskInsertManyWithin(tx, [newTask(WINDOW)], T0 + WINDOW_MS + 1, false);
      assert.equal(again!.created, true);
      throw boom;
    }).catch(() => {});
    await assertHeldBy(store, await store.taskInsertOne(newTask(WINDOW), T0 + 5), window);
  });

  it("a retry of a failed task whose active key another task holds is refused, naming the holder; once free, it goes", async ({ store }) => {
    const first = await store.taskInsertOne(newTask({ ...ACTIVE, maxAttempts: 1 }), T0);
    await finishTask(store, first.id, "failed", T0 + 1);
    const second = await store.taskInsertOne(newTask(ACTIVE), T0 + 2);
    assert.equal(second.created, true, "a failed task holds its key no more");
    const before = await get(store, first.id);
    const error = await rejection(store.taskRequeue(first.id, T0 + 3), UniqueKeyHeldError);
    assert.deepEqual([error.taskId, error.key, error.holderId, error.code], [
      first.id,
      ACTIVE.uniqueKey,
      second.id,
      "UNIQUE_KEY_HELD",
    ]);
    assert.match(error.message, new RegExp(`held by task ${second.id}`));
    assert.deepEqual(await get(store, first.id), before, "nothing changed");
    assert.equal(
      await store.taskRequeueFailed(undefined, T0 + 3),
      0,
      "retrying all failed tasks leaves it too",
    );
    assert.deepEqual(await get(store, first.id), before);
    await store.taskCancel(second.id, T0 + 4);
    const retried = await store.taskRequeue(first.id, T0 + 5);
    assert.equal(retried.status, "queued");
    await assertHeldBy(store, await store.taskInsertOne(newTask(ACTIVE), T0 + 6), first.id);
  });

  it("retrying every failed task takes back only the newest of several with one active key", async ({ store }) => {
    const ids: number[] = [];
    for (const n of [1, 2, 3]) {
      const { id } = await store.taskInsertOne(
        newTask({ ...ACTIVE, maxAttempts: 1, payload: `{"n":${n}}` }),
        T0 + n,
      );
      await finishTask(store, id, "failed", T0 + n);
      ids.push(id);
    }
    const plain = await store.taskInsertOne(newTask({ type: "plain", maxAttempts: 1 }), T0 + 5);
    await finishTask(store, plain.id, "failed", T0 + 5);
    assert.equal(await store.taskRequeueFailed(undefined, T0 + 6), 2);
    assert.deepEqual(
      await Promise.all([...ids, plain.id].map(async (id) => (await get(store, id)).status)),
      ["failed", "failed", "queued", "queued"],
    );
  });

  it("a window key never stops a retry: the window counts enqueues, not attempts", async ({ store }) => {
    const first = await store.taskInsertOne(newTask({ ...WINDOW, maxAttempts: 1 }), T0);
    await finishTask(store, first.id, "failed", T0 + 1);
    const second = await store.taskInsertOne(newTask(WINDOW), T0 + WINDOW_MS);
    assert.equal(second.created, true);
    assert.equal((await store.taskRequeue(first.id, T0 + WINDOW_MS + 1)).status, "queued");
    await assertHeldBy(store, await store.taskInsertOne(newTask(WINDOW), T0 + WINDOW_MS + 2), second.id);
  });

  it("handles racing to insert one key, alone and in batches, create exactly one task", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const handles = [store, ...await Promise.all([1, 2, 3, 4, 5].map(() => reopen()))];
    for (const [scope, fields] of [["active", ACTIVE], ["window", WINDOW]] as const) {
      const results = await Promise.all(handles.flatMap((handle, i) => [
        handle.taskInsertOne(newTask({ ...fields, payload: `{"one":${i}}` }), T0),
        handle.taskInsertMany([newTask(), newTask({ ...fields, payload: `{"many":${i}}` })], T0)
          .then((r) => r[1]!),
      ]));
      const created = results.filter((r) => r.created);
      assert.equal(created.length, 1, `${scope}: one created of ${results.length}`);
      assert.ok(results.every((r) => r.id === created[0]!.id), `${scope}: all name the one created`);
      assert.ok(results.every((r) => r.created || r.matchedKey === "unique"));
    }
    // A window over, released by racing enqueues: still one new task.
    const later = T0 + WINDOW_MS;
    const results = await Promise.all(
      handles.map((handle, i) =>
        handle.taskInsertOne(newTask({ ...WINDOW, payload: `{"later":${i}}` }), later)
      ),
    );
    assert.equal(results.filter((r) => r.created).length, 1, "one created after the window");
    assert.equal(new Set(results.map((r) => r.id)).size, 1);
  });
  it("a bulk retry of tasks sharing an active key queues the newest that may go back: one refused for a failed dependency leaves the key to an older one", async ({ store }) => {
    const key = { uniqueKey: "sync:7", uniqueForMs: null };
    const older = await store.taskInsertOne(newTask(key), T0);
    await store.taskCancel(older.id, T0 + 1);
    const dependency = await store.taskInsertOne(newTask({ type: "dependency", maxAttempts: 1 }), T0 + 2);
    const [newer] = await store.taskInsertMany([newTask({ ...key, dependsOn: [dependency.id] })], T0 + 3);
    const leased = await claimOne(store, { now: T0 + 4, types: ["dependency"] });
    await finish(store, [{ ...fenceOf(leased), status: "failed", errorMessage: "boom" }], T0 + 5);
    assert.equal((await get(store, newer!.id)).status, "cancelled");
    assert.equal(await store.taskRequeueWhere({ status: "cancelled" }, T0 + 6), 1);
    assert.equal((await get(store, older.id)).status, "queued");
    assert.equal((await get(store, newer!.id)).status, "cancelled");
  });
  it("a retry is refused while a window holder's window lasts, and goes once it is over, the window released as an enqueue would", async ({ store }) => {
    const a = await store.taskInsertOne(newTask({ uniqueKey: "k", uniqueForMs: null }), T0);
    await store.taskCancel(a.id, T0 + 1);
    const w = await store.taskInsertOne(newTask({ uniqueKey: "k", uniqueForMs: 1000 }), T0 + 2);
    await store.taskCancel(w.id, T0 + 3);
    const refused = await rejection(store.taskRequeue(a.id, T0 + 500), UniqueKeyHeldError);
    assert.equal(refused.holderId, w.id);
    assert.match(refused.message, /whose window on it lasts until .* \(it is 'cancelled'\)/);
    assert.equal((await store.taskRequeue(a.id, T0 + 86_400_000)).status, "queued");
    const again = await store.taskInsertOne(newTask({ uniqueKey: "k", uniqueForMs: null }), T0 + 86_400_001);
    assert.deepEqual([again.created, again.id], [false, a.id], "the retried task holds the key now");
  });
});
