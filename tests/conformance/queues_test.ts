/**
 * Conformance: named queues. Tasks belong to a queue; claims take from the queues asked for and never from
 * a paused one; a queue's concurrency and rate limits hold across every claimer, claimed-ahead tasks and
 * unreaped expired leases included; the listing shows each queue's depth, running tasks and settings.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Store } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, fenceOf, finish, get, insert, LEASE_MS, newTask, sorted, T0 } from "./_fixtures.ts";

/** Inserts `n` tasks into `queue`; returns their ids. */
function fill(store: Store, queue: string, n: number, now = T0): Promise<number[]> {
  return insert(store, Array.from({ length: n }, () => newTask({ queue })), now);
}

/** How many tasks of `queue` are running, as the listing says. */
async function runningIn(store: Store, queue: string, now = T0): Promise<number> {
  return (await store.queueList(now)).find((q) => q.name === queue)?.running ?? 0;
}

const sortedNames = (names: Iterable<string>) => [...names].sort();

const complete = (store: Store, leased: Awaited<ReturnType<typeof claim>>, now: number) =>
  finish(store, leased.map((l) => ({ ...fenceOf(l), status: "completed" as const })), now);

describeEachStore("named queues", (it) => {
  it("a task keeps the queue it was inserted into, and reads filter by queue", async ({ store }) => {
    const [a] = await fill(store, "emails", 1);
    const [b] = await insert(store, [newTask()]);
    assert.equal((await get(store, a!)).queue, "emails");
    assert.equal((await get(store, b!)).queue, "default");
    const listed = await store.taskList({ queue: "emails", limit: 10, offset: 0 });
    assert.deepEqual(listed.map((t) => t.id), [a]);
  });

  it("a claim takes only from the queues asked for, and from all when none are named", async ({ store }) => {
    const emails = await fill(store, "emails", 2);
    const reports = await fill(store, "reports", 2);
    const defaults = await fill(store, "default", 1);
    const only = await claim(store, { queues: ["reports"], limit: 10 });
    assert.deepEqual(sorted(only.map((l) => l.task.id)), reports);
    assert.ok(only.every((l) => l.task.queue === "reports"), "the claimed task carries its queue");
    const rest = await claim(store, { limit: 10 });
    assert.deepEqual(sorted(rest.map((l) => l.task.id)), sorted([...emails, ...defaults]));
  });

  it("a paused queue is not claimed from, nor runnable; its running tasks finish; resumed, it is", async ({ store }) => {
    await fill(store, "slow", 3);
    const [running] = await claim(store, { queues: ["slow"] });
    await store.queueUpdate("slow", { paused: true }, T0);
    assert.deepEqual(await claim(store, { limit: 10 }), [], "nothing claimed from a paused queue");
    assert.deepEqual(await claim(store, { queues: ["slow"], limit: 10 }), []);
    assert.deepEqual(await store.taskPending(T0, undefined, ["slow"]), { runnable: 0, running: 1 });
    assert.deepEqual(await complete(store, [running!], T0 + 1), new Set([running!.task.id]));
    await store.queueUpdate("slow", { paused: false }, T0 + 2);
    assert.equal((await claim(store, { limit: 10, now: T0 + 2 })).length, 2);
  });

  it("with a held queue's backlog ahead, claims by priority take the other queues' best, named or not", async ({ store }) => {
    await insert(store, Array.from({ length: 20 }, () => newTask({ queue: "held", priority: -5 })));
    const a = await insert(store, [3, 1, 2].map((priority) => newTask({ queue: "a", priority })));
    const b = await insert(store, [0, 4].map((priority) => newTask({ queue: "b", priority, type: "u" })));
    const c = await insert(store, [newTask({ queue: "c", priority: 1, runAfter: T0 + 1000 })]);
    await store.queueUpdate("held", { paused: true }, T0);
    const byPriority = { strategy: "priority" as const };
    // Every queue served: the best of a and b across them; c's task is not due.
    const all = await claim(store, { ...byPriority, limit: 3, start: 1 });
    assert.deepEqual(all.map((l) => l.task.id), [b[0], a[1], a[2]]);
    assert.deepEqual(all.map((l) => l.task.startedAt !== null), [true, false, false]);
    // Named queues, with a type filter: only b's u tasks; then c's once due.
    assert.deepEqual(
      (await claim(store, { ...byPriority, limit: 5, queues: ["b", "c"], types: ["u"] })).map((l) =>
        l.task.id
      ),
      [b[1]],
    );
    assert.deepEqual(
      (await claim(store, { ...byPriority, limit: 5, queues: ["c", "a"], now: T0 + 1000 })).map((l) =>
        l.task.id
      ),
      [c[0], a[0]],
    );
    await store.queueUpdate("held", { paused: false }, T0);
    assert.equal((await claim(store, { ...byPriority, limit: 50, queues: ["held"] })).length, 20);
  });

  it("the paused queues a store names change at once with a pause or resume made through it", async ({ store }) => {
    assert.deepEqual([...await store.queuePausedNames()], []);
    await store.queueUpdate("a", { paused: true }, T0);
    await store.queueUpdate("b", { paused: true, concurrency: 2 }, T0);
    await store.queueUpdate("c", { concurrency: 2 }, T0);
    assert.deepEqual(sortedNames(await store.queuePausedNames()), ["a", "b"], "paused ones, limited or not");
    await store.queueUpdate("a", { paused: false }, T0);
    assert.deepEqual(sortedNames(await store.queuePausedNames()), ["b"]);
  });

  it("a concurrency limit caps running tasks, claimed-ahead and expired ones included", async ({ store }) => {
    await fill(store, "api", 6);
    await fill(store, "default", 2);
    // Claimed ahead before the queue had a limit: they count as running once it has one.
    const ahead = await claim(store, { queues: ["api"], limit: 2, start: 0 });
    await store.queueUpdate("api", { concurrency: 3 }, T0);
    // One claim of everything: the free queue whole, the limited one up to its limit.
    const first = await claim(store, { limit: 10 });
    assert.equal(first.filter((l) => l.task.queue === "default").length, 2);
    const api = [...ahead, ...first.filter((l) => l.task.queue === "api")];
    assert.equal(api.length, 3, "two claimed ahead and one more: all three count");
    assert.deepEqual(await claim(store, { queues: ["api"], limit: 10 }), []);
    // A lease past its deadline still counts until it is reaped.
    const later = T0 + LEASE_MS * 10;
    assert.deepEqual(await claim(store, { queues: ["api"], limit: 10, now: later }), []);
    await complete(store, [api[2]!], later);
    const next = await claim(store, { queues: ["api"], limit: 10, now: later });
    assert.equal(next.length, 1, "a finished task frees one place");
    await store.taskReapExpired(later + 1);
    assert.equal(await runningIn(store, "api", later + 1), 1, "the reaped tasks no longer run");
    assert.equal((await claim(store, { queues: ["api"], limit: 10, now: later + 1 })).length, 2);
  });

  it("tasks claimed ahead from a rate-limited queue must start by the end of the window they counted in", async ({ store }) => {
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await fill(store, "mail", 10, window - 5000);
    await fill(store, "api", 10, window - 5000);
    await store.queueUpdate("mail", { rate: { limit: 100, intervalMs: 1000 } }, window - 5000);
    await store.queueUpdate("api", { concurrency: 50 }, window - 5000);
    const mail = await claim(store, { queues: ["mail"], limit: 5, start: 2, now: window + 300 });
    assert.deepEqual(mail.map((l) => l.startBy), [
      undefined,
      undefined,
      window + 1000,
      window + 1000,
      window + 1000,
    ]);
    assert.deepEqual(mail.map((l) => l.task.startedAt !== null), [true, true, false, false, false]);
    // A queue with a concurrency limit alone: its claimed-ahead tasks count as running; no deadline.
    const api = await claim(store, { queues: ["api"], limit: 5, start: 2, now: window + 300 });
    assert.deepEqual(api.map((l) => l.startBy), [undefined, undefined, undefined, undefined, undefined]);
    assert.equal(await runningIn(store, "api", window + 300), 5);
  });

  it("tasks claimed ahead past the end of their window are counted again in the current one, as far as it has room", async ({ store }) => {
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await fill(store, "mail", 20, window - 5000);
    await store.queueUpdate("mail", { rate: { limit: 5, intervalMs: 1000 } }, window - 5000);
    const first = await claim(store, { queues: ["mail"], limit: 5, start: 2, now: window + 100 });
    assert.deepEqual(first.map((l) => l.startBy), [
      undefined,
      undefined,
      window + 1000,
      window + 1000,
      window + 1000,
    ]);
    // The three claimed ahead did not start in time: counted in the next window, they may start until it ends.
    assert.deepEqual(await store.queueCountAgain("mail", 3, window + 1200), {
      counted: 3,
      startBy: window + 2000,
    });
    assert.equal(
      (await claim(store, { queues: ["mail"], limit: 10, now: window + 1300 })).length,
      2,
      "room for 2",
    );
    assert.deepEqual(await store.queueCountAgain("mail", 3, window + 1400), {
      counted: 0,
      startBy: window + 2000,
    });
    // A later window with room for two of three.
    assert.equal((await claim(store, { queues: ["mail"], limit: 3, now: window + 2100 })).length, 3);
    assert.deepEqual(await store.queueCountAgain("mail", 3, window + 2200), {
      counted: 2,
      startBy: window + 3000,
    });
    // A count whose time is before the window a claim opened counts in that window, as a claim does.
    assert.equal((await claim(store, { queues: ["mail"], limit: 1, now: window + 3001 })).length, 1);
    assert.deepEqual(await store.queueCountAgain("mail", 5, window + 2999), {
      counted: 4,
      startBy: window + 4000,
    });
    assert.equal((await claim(store, { queues: ["mail"], limit: 10, now: window + 3500 })).length, 0, "full");
  });

  it("a queue without a rate limit needs no count again: all may start, with no deadline", async ({ store }) => {
    assert.deepEqual(
      await store.queueCountAgain("free", 4, T0),
      { counted: 4, startBy: null },
      "no settings",
    );
    await store.queueUpdate("api", { concurrency: 2 }, T0);
    assert.deepEqual(
      await store.queueCountAgain("api", 4, T0),
      { counted: 4, startBy: null },
      "no rate limit",
    );
  });

  it("a paused queue counts nothing again: none of its late tasks may start, and its window keeps its room", async ({ store }) => {
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await fill(store, "mail", 10, window - 5000);
    await store.queueUpdate("mail", { rate: { limit: 2, intervalMs: 1000 } }, window - 5000);
    const ahead = await claim(store, { queues: ["mail"], limit: 2, start: 0, now: window + 100 });
    assert.deepEqual(ahead.map((l) => l.startBy), [window + 1000, window + 1000]);
    await store.queueUpdate("mail", { paused: true }, window + 200);
    // Their window over, the queue paused: none may start, and none is counted in the next window.
    assert.deepEqual(await store.queueCountAgain("mail", 2, window + 1100), { counted: 0, startBy: null });
    await store.queueUpdate("mail", { paused: false }, window + 1200);
    assert.equal(
      (await claim(store, { queues: ["mail"], limit: 10, now: window + 1300 })).length,
      2,
      "the next window's room is whole: a count of the paused queue's tasks would have taken it",
    );
    assert.deepEqual(await store.queueCountAgain("mail", 2, window + 1400), {
      counted: 0,
      startBy: window + 2000,
    });
  });

  it("counts again never count more than a window's limit, across calls and with claims between", async ({ store }) => {
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await fill(store, "mail", 10, window - 5000);
    await store.queueUpdate("mail", { rate: { limit: 5, intervalMs: 1000 } }, window - 5000);
    assert.equal((await claim(store, { queues: ["mail"], limit: 1, now: window + 100 })).length, 1);
    const first = await store.queueCountAgain("mail", 3, window + 200);
    const second = await store.queueCountAgain("mail", 3, window + 300);
    assert.deepEqual([first.counted, second.counted], [3, 1], "1 claimed, then 3 and 1 counted: 5");
    assert.deepEqual(await store.queueCountAgain("mail", 1, window + 400), {
      counted: 0,
      startBy: window + 1000,
    });
    assert.deepEqual(await claim(store, { queues: ["mail"], limit: 10, now: window + 500 }), [], "full");
  });

  it("counts again made at once on many handles never count more than a window's limit, together", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const LIMIT = 7;
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await store.queueUpdate("mail", { rate: { limit: LIMIT, intervalMs: 1000 } }, window - 5000);
    const handles = [store, ...await Promise.all([1, 2, 3, 4].map(() => reopen()))];
    for (let round = 0; round < 10; round++) {
      const now = window + round * 1000 + 10;
      const results = await Promise.all(handles.map((handle) => handle.queueCountAgain("mail", 3, now)));
      const counted = results.reduce((sum, result) => sum + result.counted, 0);
      assert.equal(counted, LIMIT, `round ${round}: ${counted} counted in a window whose limit is ${LIMIT}`);
      for (const { startBy } of results) assert.equal(startBy, window + round * 1000 + 1000);
    }
  });

  it("a claim takes from limited and free queues in the strategy's order across them", async ({ store }) => {
    // A generous limit's big backlog of low priority, inserted first, and a free queue's urgent task.
    await insert(store, Array.from({ length: 30 }, () => newTask({ queue: "bulk", priority: 9 })));
    const [urgent] = await insert(store, [newTask({ queue: "default", priority: 0 })]);
    await store.queueUpdate("bulk", { concurrency: 1000 }, T0);
    assert.deepEqual((await claim(store, { limit: 1, strategy: "priority" })).map((l) => l.task.id), [
      urgent,
    ]);
    // And the other way round: the limited queue's better tasks come first, within its limit.
    const [best] = await insert(store, [newTask({ queue: "bulk", priority: -1 })]);
    await insert(store, [newTask({ queue: "default", priority: 5 })]);
    const two = await claim(store, { limit: 2, strategy: "priority" });
    assert.deepEqual(two.map((l) => [l.task.queue, l.task.priority]), [["bulk", -1], ["default", 5]]);
    assert.equal(two[0]!.task.id, best);
    // First in, first out across them: a free task enqueued before a limited queue's.
    const [early] = await insert(store, [newTask({ queue: "default", priority: 9 })]);
    await insert(store, [newTask({ queue: "bulk", priority: 0 })]);
    const fifo = await claim(store, { limit: 1, strategy: "fifo" });
    assert.equal(fifo[0]!.task.queue, "bulk", "the backlog's oldest task, enqueued before either");
    await store.queueUpdate("bulk", { paused: true }, T0);
    assert.deepEqual((await claim(store, { limit: 1, strategy: "fifo" })).map((l) => l.task.id), [early]);
  });

  for (const strategy of ["priority", "fifo"] as const) {
    it(`a claim that names a limited queue twice takes no more than its limits leave (${strategy})`, async ({ store }) => {
      await fill(store, "api", 10);
      await fill(store, "mail", 10);
      await store.queueUpdate("api", { concurrency: 2 }, T0);
      await store.queueUpdate("mail", { rate: { limit: 3, intervalMs: 60_000 } }, T0);
      const leased = await claim(store, { strategy, limit: 20, queues: ["api", "mail", "api", "mail"] });
      const of = (queue: string) => leased.filter((l) => l.task.queue === queue).length;
      assert.deepEqual([of("api"), of("mail")], [2, 3]);
    });
  }

  it("lowering a limit below the running tasks claims nothing until they finish; none removes it", async ({ store }) => {
    await fill(store, "api", 5);
    const leased = await claim(store, { queues: ["api"], limit: 3 });
    await store.queueUpdate("api", { concurrency: 1 }, T0);
    assert.deepEqual(await claim(store, { limit: 10 }), []);
    await complete(store, leased.slice(0, 2), T0 + 1);
    assert.deepEqual(await claim(store, { limit: 10, now: T0 + 1 }), [], "still one running: the limit");
    await store.queueUpdate("api", { concurrency: null }, T0 + 2);
    assert.equal((await claim(store, { limit: 10, now: T0 + 2 })).length, 2);
  });

  it("a rate limit counts claims per window, aligned to epoch time", async ({ store }) => {
    const window = Math.ceil(T0 / 1000) * 1000 + 1000;
    await fill(store, "mail", 10, window - 5000);
    await store.queueUpdate("mail", { rate: { limit: 3, intervalMs: 1000 } }, window - 5000);
    assert.equal((await claim(store, { limit: 10, now: window + 100 })).length, 3);
    assert.equal((await claim(store, { limit: 10, now: window + 999 })).length, 0, "the window is full");
    assert.equal((await claim(store, { limit: 2, now: window + 1000 })).length, 2, "a new window");
    assert.equal((await claim(store, { limit: 10, now: window + 1500 })).length, 1);
    assert.equal((await claim(store, { limit: 10, now: window + 3000 })).length, 3);
  });

  it("a claim whose time is before the rate window another claim opened counts in that window", async ({ store }) => {
    await insert(store, Array.from({ length: 40 }, () => newTask({ queue: "mail" })));
    const edge = Math.ceil((T0 + 10_000) / 500) * 500;
    await store.queueUpdate("mail", { rate: { limit: 8, intervalMs: 500 } }, T0);
    // The second claim read its time 2 ms before the first (it waited for the lock, or its host is behind).
    const first = await claim(store, { queues: ["mail"], limit: 40, now: edge + 1 });
    const late = await claim(store, { queues: ["mail"], limit: 40, now: edge - 1 });
    const third = await claim(store, { queues: ["mail"], limit: 40, now: edge + 2 });
    assert.deepEqual([first.length, late.length, third.length], [8, 0, 0]);
    assert.equal((await claim(store, { queues: ["mail"], limit: 40, now: edge + 500 })).length, 8);
  });

  it("limits combine: the smaller of what each leaves", async ({ store }) => {
    await fill(store, "q", 10);
    await store.queueUpdate("q", { concurrency: 4, rate: { limit: 3, intervalMs: 60_000 } }, T0);
    assert.equal((await claim(store, { limit: 10 })).length, 3);
    await store.queueUpdate("q", { rate: null }, T0);
    assert.equal((await claim(store, { limit: 10 })).length, 1, "the concurrency limit, with 3 running");
  });

  it("settings change field by field, and the listing shows depth, running, limits, pause and wait", async ({ store }) => {
    await insert(store, Array.from({ length: 3 }, () => newTask({ queue: "a", runAfter: T0 - 500 })));
    await insert(store, [newTask({ queue: "a", runAfter: T0 + 60_000 })]);
    await claim(store, { queues: ["a"] });
    assert.deepEqual(await store.queueUpdate("b", { concurrency: 5 }, T0), {
      name: "b",
      concurrency: 5,
      rate: null,
      paused: false,
    });
    await store.queueUpdate("b", { rate: { limit: 100, intervalMs: 1000 } }, T0);
    assert.deepEqual(await store.queueUpdate("b", { paused: true }, T0), {
      name: "b",
      concurrency: 5,
      rate: { limit: 100, intervalMs: 1000 },
      paused: true,
    });
    assert.deepEqual(await store.queueList(T0), [
      { name: "a", concurrency: null, rate: null, paused: false, queued: 3, running: 1, oldestWaitMs: 500 },
      {
        name: "b",
        concurrency: 5,
        rate: { limit: 100, intervalMs: 1000 },
        paused: true,
        queued: 0,
        running: 0,
        oldestWaitMs: null,
      },
    ]);
  });

  it("a queue paused or limited through another handle is not claimed from freely, at once", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    await fill(store, "p", 4);
    await fill(store, "l", 4);
    const other = await reopen();
    // The other handle has claimed before, so it knows of no held queue.
    assert.equal((await claim(other, { queues: ["p"] })).length, 1);
    await store.queueUpdate("p", { paused: true }, T0);
    await store.queueUpdate("l", { concurrency: 1 }, T0);
    assert.deepEqual(await claim(other, { limit: 10 }), [], "neither the paused nor the limited queue");
  });

  it("claimers on many handles at once never run more of a limited queue than its limit", {
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const LIMIT = 3;
    await fill(store, "api", 60);
    await store.queueUpdate("api", { concurrency: LIMIT }, T0);
    const handles = [store, ...await Promise.all([1, 2, 3, 4].map(() => reopen()))];
    const held: Awaited<ReturnType<typeof claim>> = [];
    let claimed = 0;
    for (let round = 0; claimed < 60 && round < 200; round++) {
      const now = T0 + round;
      const batches = await Promise.all(
        handles.map((handle, i) => claim(handle, { workerId: `w${i}`, queues: ["api"], limit: 2, now })),
      );
      held.push(...batches.flat());
      claimed += batches.flat().length;
      assert.ok(held.length <= LIMIT, `round ${round}: ${held.length} running, over the limit of ${LIMIT}`);
      assert.equal(await runningIn(store, "api", now), held.length);
      // Finish one or two, so that the next round's claimers race for the places freed.
      await complete(store, held.splice(0, 1 + (round % 2)), now);
    }
    assert.equal(claimed, 60, "every task was claimed in the end");
  });
  for (const strategy of ["priority", "fifo"] as const) {
    it(
      `a queue limited by another handle since this one last looked is not claimed past its limit (${strategy})`,
      {
        needs: ["secondHandle"],
      },
      async ({ store, reopen }) => {
        await store.queueUpdate("l1", { concurrency: 5 }, T0);
        await fill(store, "l1", 1);
        await fill(store, "q", 20);
        // This handle reads the held queues now (l1 limited, q free) and may keep them for a while.
        assert.equal((await claim(store, { limit: 1, strategy, queues: ["l1"] })).length, 1);
        const other = await reopen();
        await other.queueUpdate("q", { concurrency: 2 }, T0);
        await claim(store, { limit: 10, strategy });
        const running = await runningIn(other, "q");
        assert.ok(running <= 2, `q has ${running} running tasks, over its concurrency limit of 2`);
      },
    );
  }
});
