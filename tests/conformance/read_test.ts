/**
 * Conformance: reading the queue. Getting and listing tasks, the statistics, what is pending or waiting
 * for a later time, and task logs.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TaskLogEntry } from "../../src/store/store.ts";
import type { Task } from "../../src/task.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, finish, insert, newTask, T0 } from "./_fixtures.ts";

const ZERO = { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
const ids = (tasks: Task[]) => tasks.map((task) => task.id);

describeEachStore("getting and listing tasks", (it) => {
  it("getting a task that does not exist gives undefined", async ({ store }) => {
    assert.equal(await store.taskGet(12345), undefined);
    const [id] = await insert(store, 1);
    assert.equal(await store.taskGet(id! + 1), undefined);
  });

  it("getting many tasks gives those that exist, each as got by its id", async ({ store }) => {
    const [a, , c] = await insert(store, 3);
    const many = await store.taskGetMany([c!, a!, 9_999_999, a!]);
    assert.deepEqual(many.map((task) => task.id).sort((x, y) => x - y), [a!, c!]);
    for (const task of many) assert.deepEqual(task, await store.taskGet(task.id));
    assert.deepEqual(await store.taskGetMany([]), []);
  });

  it("a list is newest first, filtered by status and type, with limit and offset", async ({ store }) => {
    const [a1, b1, a2, b2, a3] = await insert(
      store,
      ["a", "b", "a", "b", "a"].map((type) => newTask({ type })),
    );
    await store.taskCancel(a2!, T0 + 1);
    const list = (filter: Partial<Parameters<typeof store.taskList>[0]>) =>
      store.taskList({ limit: 100, offset: 0, ...filter }).then(ids);
    assert.deepEqual(await list({}), [a3, b2, a2, b1, a1]);
    assert.deepEqual(await list({ type: "a" }), [a3, a2, a1]);
    assert.deepEqual(await list({ status: "cancelled" }), [a2]);
    assert.deepEqual(await list({ status: "queued", type: "a" }), [a3, a1]);
    assert.deepEqual(await list({ status: "completed" }), []);
    assert.deepEqual(await list({ type: "zzz" }), []);
    assert.deepEqual(await list({ limit: 2 }), [a3, b2]);
    assert.deepEqual(await list({ limit: 2, offset: 1 }), [b2, a2]);
    assert.deepEqual(await list({ offset: 4 }), [a1]);
    assert.deepEqual(await list({ offset: 5 }), []);
  });

  it("a list pages by id (below the last id seen) and filters by creation time", async ({ store }) => {
    const ids1 = await insert(store, 3, T0);
    const ids2 = await insert(store, 3, T0 + 10);
    const list = (filter: Partial<Parameters<typeof store.taskList>[0]>) =>
      store.taskList({ limit: 100, offset: 0, ...filter }).then(ids);
    const all = [...ids1, ...ids2].reverse();
    assert.deepEqual(await list({ limit: 2 }), all.slice(0, 2));
    assert.deepEqual(await list({ limit: 2, beforeId: all[1] }), all.slice(2, 4));
    assert.deepEqual(await list({ limit: 2, beforeId: all[5] }), []);
    assert.deepEqual(await list({ createdAfter: T0 }), [...ids2].reverse(), "strictly after");
    assert.deepEqual(await list({ createdBefore: T0 + 10 }), [...ids1].reverse(), "strictly before");
    assert.deepEqual(await list({ createdAfter: T0 - 1, createdBefore: T0 + 1 }), [...ids1].reverse());
    assert.deepEqual(await list({ createdAfter: T0 + 10 }), []);
    assert.deepEqual(await list({ createdAfter: T0 - 1, beforeId: ids2[1], limit: 2 }), [ids2[0], ids1[2]]);
    assert.deepEqual(await list({ fromId: all[3], beforeId: all[0] }), all.slice(1, 4), "a window of ids");
    assert.deepEqual(await list({ fromId: all[0] }), [all[0]]);
  });

  it("a list filters by payload values: of the same JSON type, at a nested path, all of them", async ({ store }) => {
    const payloads = [
      { account: 42, user: { name: "ada" } },
      { account: "42", user: { name: "ada" } },
      { account: 42.0, flag: true, user: { name: "bob" } },
      { account: 43, flag: false, none: null },
      { other: 1 },
      { account: [42] },
    ];
    const [p0, p1, p2, p3, , p5] = await insert(
      store,
      payloads.map((payload) => newTask({ payload: JSON.stringify(payload) })),
    );
    const list = (...payload: { path: string[]; value: string | number | boolean | null }[]) =>
      store.taskList({ limit: 100, offset: 0, payload }).then(ids);
    assert.deepEqual(await list({ path: ["account"], value: 42 }), [p2, p0], "numbers, not the string");
    assert.deepEqual(await list({ path: ["account"], value: "42" }), [p1], "the string, not numbers");
    assert.deepEqual(await list({ path: ["user", "name"], value: "ada" }), [p1, p0]);
    assert.deepEqual(
      await list({ path: ["user", "name"], value: "ada" }, { path: ["account"], value: 42 }),
      [p0],
    );
    assert.deepEqual(await list({ path: ["flag"], value: true }), [p2]);
    assert.deepEqual(await list({ path: ["flag"], value: false }), [p3]);
    assert.deepEqual(await list({ path: ["none"], value: null }), [p3], "JSON null, not a missing field");
    assert.deepEqual(await list({ path: ["account"], value: 41 }), []);
    assert.deepEqual(await list({ path: ["missing"], value: "x" }), []);
    assert.equal(
      (await list({ path: ["account", "0"], value: 42 })).includes(p5!),
      false,
      "keys, not indexes",
    );
    assert.deepEqual(
      await store.taskList({ limit: 1, offset: 0, beforeId: p2, payload: [{ path: ["account"], value: 42 }] })
        .then(ids),
      [p0],
    );
  });

  it("a listed task is the same, field for field, as the task got by its id", async ({ store }) => {
    await insert(store, [newTask({ payload: '{"x":[1,2]}', idempotencyKey: "k", timeoutMs: 9 }), newTask()]);
    await claimOne(store);
    for (const task of await store.taskList({ limit: 10, offset: 0 })) {
      assert.deepEqual(task, await store.taskGet(task.id));
    }
  });
});

describeEachStore("statistics", (it) => {
  it("an empty queue has all five counts at zero, no types, no oldest task and nothing recent", async ({ store }) => {
    assert.deepEqual(await store.taskStats(T0), {
      counts: ZERO,
      byType: {},
      oldestQueuedAgeMs: null,
      lastMinute: { completed: 0, failed: 0 },
    });
  });

  it("counts are by status, and by type with every status present", async ({ store }) => {
    const [a1, a2, b1] = await insert(store, ["a", "a", "b", "b", "b"].map((type) => newTask({ type })));
    const leased = await claim(store, { limit: 2 });
    assert.deepEqual(leased.map((l) => l.task.id), [a1, a2]);
    await finish(store, [
      { ...fenceOf(leased[0]!), status: "completed" },
      { ...fenceOf(leased[1]!), status: "failed", errorMessage: "x" },
    ], T0 + 1);
    await store.taskCancel(b1!, T0 + 1);
    await claimOne(store, { now: T0 + 2 });
    const stats = await store.taskStats(T0 + 3);
    assert.deepEqual(stats.counts, { queued: 1, running: 1, completed: 1, failed: 1, cancelled: 1 });
    assert.deepEqual(stats.byType, {
      a: { ...ZERO, completed: 1, failed: 1 },
      b: { ...ZERO, queued: 1, running: 1, cancelled: 1 },
    });
  });

  it("the oldest queued age counts only tasks runnable now, from when they became due", async ({ store }) => {
    const [now] = await insert(store, 1);
    await insert(store, [newTask({ runAfter: T0 + 10_000 })]);
    assert.equal((await store.taskStats(T0 + 4000)).oldestQueuedAgeMs, 4000);
    await store.taskCancel(now!, T0 + 4000);
    assert.equal((await store.taskStats(T0 + 4000)).oldestQueuedAgeMs, null, "the later task is not due yet");
    assert.equal((await store.taskStats(T0 + 10_000)).oldestQueuedAgeMs, 0);
    assert.equal((await store.taskStats(T0 + 11_000)).oldestQueuedAgeMs, 1000);
    await claimOne(store, { now: T0 + 11_000 });
    assert.equal(
      (await store.taskStats(T0 + 11_000)).oldestQueuedAgeMs,
      null,
      "a running task is not waiting",
    );
  });

  it("the last minute counts tasks completed or failed in the 60 seconds up to now, ends included", async ({ store }) => {
    await insert(store, 4);
    const leased = await claim(store, { limit: 4 });
    await finish(store, [
      { ...fenceOf(leased[0]!), status: "completed" },
      { ...fenceOf(leased[1]!), status: "completed" },
      { ...fenceOf(leased[2]!), status: "failed", errorMessage: "x" },
    ], T0);
    await finish(store, [{ ...fenceOf(leased[3]!), status: "completed" }], T0 + 30_000);
    assert.deepEqual((await store.taskStats(T0 + 30_000)).lastMinute, { completed: 3, failed: 1 });
    assert.deepEqual((await store.taskStats(T0 + 60_000)).lastMinute, { completed: 3, failed: 1 });
    assert.deepEqual((await store.taskStats(T0 + 60_001)).lastMinute, { completed: 1, failed: 0 });
    assert.deepEqual((await store.taskStats(T0 + 90_001)).lastMinute, { completed: 0, failed: 0 });
    assert.equal((await store.taskStats(T0 + 90_001)).counts.completed, 3);
  });

  it("the statistics are one snapshot: read while tasks are claimed and completed, they always agree", async ({ store }) => {
    // Each pass of the drain claims one task and completes it, so in any one moment of the queue: the
    // counts add up to every task, all completions are in the last minute, and a queued task is runnable.
    // Counts read at one moment and the rest at another (separate statements outside one snapshot)
    // disagree here within a few reads.
    const total = 120;
    await insert(store, total);
    let draining = true;
    let disagreement: string | undefined;
    const drain = (async () => {
      try {
        for (let i = 0; i < total && disagreement === undefined; i++) {
          const leased = await claimOne(store);
          await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0);
        }
      } finally {
        draining = false;
      }
    })();
    let reads = 0;
    while ((draining || reads === 0) && disagreement === undefined) {
      const { counts, lastMinute, oldestQueuedAgeMs } = await store.taskStats(T0 + 1);
      reads++;
      const agree = counts.queued + counts.running + counts.completed === total &&
        lastMinute.completed === counts.completed && (oldestQueuedAgeMs === null) === (counts.queued === 0);
      if (!agree) disagreement = JSON.stringify({ counts, lastMinute, oldestQueuedAgeMs });
    }
    await drain;
    assert.equal(disagreement, undefined, `read ${reads} disagreed with itself`);
  });
});

describeEachStore("pending and waiting tasks", (it) => {
  it("pending says whether any task (of the types given) is runnable now, and whether any runs", async ({ store }) => {
    const pending = async (now: number, types?: string[]) => {
      const { runnable, running } = await store.taskPending(now, types);
      return { runnable: runnable > 0, running: running > 0 };
    };
    assert.deepEqual(await pending(T0), { runnable: false, running: false });
    await insert(store, [newTask({ type: "a", runAfter: T0 + 100 }), newTask({ type: "b" })]);
    assert.deepEqual(await pending(T0), { runnable: true, running: false });
    assert.deepEqual(await pending(T0, ["a"]), { runnable: false, running: false });
    assert.deepEqual(await pending(T0 + 100, ["a"]), { runnable: true, running: false });
    assert.deepEqual(await pending(T0, []), { runnable: false, running: false });
    await claimOne(store, { types: ["b"] });
    assert.deepEqual(await pending(T0), { runnable: false, running: true });
    assert.deepEqual(await pending(T0, ["b"]), { runnable: false, running: true });
    assert.deepEqual(await pending(T0, ["a"]), { runnable: false, running: false });
  });

  it("waiting counts queued tasks due later (of the types given), and says when the soonest is due", async ({ store }) => {
    assert.deepEqual(await store.taskWaiting(T0), { count: 0, nextRunAfter: null });
    await insert(store, [
      newTask({ type: "a", runAfter: T0 + 300 }),
      newTask({ type: "b", runAfter: T0 + 200 }),
      newTask({ type: "a", runAfter: T0 + 100 }),
      newTask({ type: "a", runAfter: T0 }),
    ]);
    assert.deepEqual(await store.taskWaiting(T0), { count: 3, nextRunAfter: T0 + 100 });
    assert.deepEqual(await store.taskWaiting(T0, ["b"]), { count: 1, nextRunAfter: T0 + 200 });
    assert.deepEqual(await store.taskWaiting(T0, ["c"]), { count: 0, nextRunAfter: null });
    assert.deepEqual(await store.taskWaiting(T0 + 100, ["a"]), { count: 1, nextRunAfter: T0 + 300 });
    // A task backing off after a failed attempt waits too.
    const leased = await claimOne(store);
    await finish(store, [{ ...fenceOf(leased), status: "queued", runAfter: T0 + 50, errorMessage: "x" }], T0);
    assert.deepEqual(await store.taskWaiting(T0), { count: 4, nextRunAfter: T0 + 50 });
  });
});

describeEachStore("task logs", (it) => {
  it("a task's log lists its entries in the order appended, with ids, and details as they were given", async ({ store }) => {
    const [a, b] = await insert(store, 2);
    const entries: TaskLogEntry[] = [
      { taskId: a!, at: T0 + 2, level: "info", message: "first", details: { n: 1, list: [1, "two"] } },
      { taskId: b!, at: T0, level: "debug", message: "other task" },
      { taskId: a!, at: T0 + 1, level: "warn", message: "second, written earlier", details: "text" },
      { taskId: a!, at: T0 + 3, level: "error", message: 'quote " é 😀', details: null },
    ];
    await store.taskLogAppend(entries.slice(0, 2));
    await store.taskLogAppend([]);
    await store.taskLogAppend(entries.slice(2));
    const logs = await store.taskLogList(a!);
    assert.deepEqual(logs.map(({ id: _, ...entry }) => entry), [
      entries[0],
      entries[2],
      entries[3],
    ]);
    for (let i = 1; i < logs.length; i++) assert.ok(logs[i]!.id > logs[i - 1]!.id, "ids grow");
    const other = await store.taskLogList(b!);
    assert.deepEqual(other.map(({ id: _, ...entry }) => entry), [{ ...entries[1], details: undefined }]);
    assert.deepEqual(await store.taskLogList(b! + 100), []);
  });
});
