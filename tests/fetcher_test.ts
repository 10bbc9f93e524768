/**
 * The fetcher's decision whether a task claimed ahead may start (`Fetcher.mayStart`), on a store of the
 * test's own and a clock that moves only when told: a task past the end of its rate window is counted again
 * in the window it would start in, as far as that has room, together with the other late tasks of its queue
 * that the worker holds; those without room go back; a task of a paused queue is not counted; and the
 * deadline is checked after everything the decision waits for, so that no task starts in a window that did
 * not count it. The worker's side, on a real database, is in tests/prefetch_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../src/clock.ts";
import type { QueueDatabase } from "../src/database.ts";
import type { Task } from "../src/task.ts";
import type { LeasedTask, Store } from "../src/store/store.ts";
import { Completer } from "../src/worker/completer.ts";
import { WorkerEvents } from "../src/worker/events.ts";
import { Fetcher } from "../src/worker/fetcher.ts";
import { resolveWorkerOptions } from "../src/worker/options.ts";
import { deferred } from "./_helpers.ts";

const INTERVAL = 1000;
/** The start of a rate window. */
const W = 1_700_000_000_000;

/**
 * The store's side of a start: the paused queues, and counts again in windows of {@link INTERVAL} with room
 * for `limit` each, as the stores count them. Every count is kept.
 */
class RateStore {
  readonly counts: { queue: string; n: number; now: number; counted: number }[] = [];
  /** Counted in each window, by its start. */
  readonly windows = new Map<number, number>();
  paused: ReadonlySet<string> | Promise<ReadonlySet<string>> = new Set();
  /** Called as each count is made, before its answer reaches the worker. */
  onCount = () => {};

  constructor(readonly limit: number) {}

  queuePausedNames(): ReadonlySet<string> | Promise<ReadonlySet<string>> {
    return this.paused;
  }

  queueCountAgain(queue: string, n: number, now: number): Promise<{ counted: number; startBy: number }> {
    const start = Math.floor(now / INTERVAL) * INTERVAL;
    const used = this.windows.get(start) ?? 0;
    const counted = Math.max(0, Math.min(n, this.limit - used));
    this.windows.set(start, used + counted);
    this.counts.push({ queue, n, now, counted });
    this.onCount();
    return Promise.resolve({ counted, startBy: start + INTERVAL });
  }
}

function fetcherOn(store: RateStore, clock: ManualClock): Fetcher {
  // The database is not used: the fetcher reaches the store only.
  const options = resolveWorkerOptions({ db: null as unknown as QueueDatabase, workerId: "w", clock });
  const events = new WorkerEvents(undefined);
  return new Fetcher(store as unknown as Store, new Completer(store as never, clock), events, options);
}

/** Task `id` of `queue`, claimed ahead in the window that ends at `startBy`. */
function claimedAhead(id: number, startBy: number, queue = "mail"): LeasedTask {
  const task = { id, queue, type: "t", attempts: 0, startedAt: null } as unknown as Task;
  return { task, leaseToken: `t${id}`, recordStartFirst: false, startBy };
}

test("a task whose window ends while the worker reads the paused queues is counted again before it starts", async () => {
  const clock = new ManualClock(W + 900);
  const store = new RateStore(5);
  const read = deferred<ReadonlySet<string>>();
  store.paused = read.promise;
  const fetcher = fetcherOn(store, clock);
  const task = claimedAhead(1, W + INTERVAL);
  const decision = fetcher.mayStart(task);
  // The window its claim counted in ends before the answer comes.
  clock.advance(200);
  read.resolve(new Set());
  assert.equal(await decision, true);
  assert.deepEqual(store.counts.map((c) => [c.n, c.counted]), [[1, 1]], "counted in the next window");
  assert.equal(task.startBy, W + 2 * INTERVAL, "it may start until the window that counted it ends");
});

test("a task whose window ends while the worker reads the paused queues goes back when the next is full", async () => {
  const clock = new ManualClock(W + 900);
  const store = new RateStore(0);
  const read = deferred<ReadonlySet<string>>();
  store.paused = read.promise;
  const fetcher = fetcherOn(store, clock);
  const decision = fetcher.mayStart(claimedAhead(1, W + INTERVAL));
  clock.advance(200);
  read.resolve(new Set());
  assert.equal(await decision, false, "a start now would be one more than the window's limit");
});

test("a late task of a paused queue goes back uncounted", async () => {
  const clock = new ManualClock(W + INTERVAL + 100);
  const store = new RateStore(5);
  store.paused = new Set(["mail"]);
  const fetcher = fetcherOn(store, clock);
  assert.equal(await fetcher.mayStart(claimedAhead(1, W + INTERVAL)), false);
  assert.deepEqual(store.counts, [], "no room of the next window taken for a task that does not start");
});

test("late tasks started at once, and those held beside them, are counted together as far as the window has room", async () => {
  const clock = new ManualClock(W + INTERVAL + 100);
  const store = new RateStore(5);
  const fetcher = fetcherOn(store, clock);
  const buffered = [2, 3, 4].map((id) => claimedAhead(id, W + INTERVAL));
  const otherQueue = claimedAhead(9, W + INTERVAL, "api");
  const inTime = claimedAhead(8, W + 2 * INTERVAL);
  fetcher.hold([...buffered, otherQueue, inTime]);
  // Four slots free at once: four late tasks taken to start, as the dispatcher takes them.
  const starting = [1, 5, 6, 7].map((id) => claimedAhead(id, W + INTERVAL));
  const decisions = await Promise.all(starting.map((task) => fetcher.mayStart(task)));

  assert.deepEqual(decisions, [true, true, true, true], "room for 5: the four starting first");
  assert.equal(store.windows.get(W + INTERVAL), 5, "never more counted than the window's limit");
  assert.ok(store.counts.every((c) => c.queue === "mail"), "only the late tasks' queue is counted");
  const counted = [...starting, ...buffered].filter((task) => task.startBy === W + 2 * INTERVAL);
  assert.equal(counted.length, 5, "each task counted carries the end of the window that counted it");
  // Those left late go back with the other queue's late task; the one in time stays.
  const back = fetcher.takeUnstartable();
  assert.deepEqual(
    back.map((task) => task.task.id).sort(),
    [...buffered.filter((t) => !counted.includes(t)).map((t) => t.task.id), 9].sort(),
  );
  assert.deepEqual(
    fetcher.buffered.map((task) => task.task.id).sort(),
    [...counted.filter((t) => buffered.includes(t)).map((t) => t.task.id), 8].sort(),
  );
});

test("late tasks started at once beyond the window's room: as many start as it has room for, the others go back", async () => {
  const clock = new ManualClock(W + INTERVAL + 100);
  const store = new RateStore(2);
  const fetcher = fetcherOn(store, clock);
  fetcher.hold([2, 3].map((id) => claimedAhead(id, W + INTERVAL)));
  const starting = [1, 4, 5, 6].map((id) => claimedAhead(id, W + INTERVAL));
  const decisions = await Promise.all(starting.map((task) => fetcher.mayStart(task)));
  assert.equal(decisions.filter(Boolean).length, 2, `${decisions}: two may start`);
  assert.equal(store.windows.get(W + INTERVAL), 2, "the window counted its limit, no more");
  // The two counted are among those starting: none of the window's room went to tasks left waiting.
  assert.deepEqual(fetcher.takeUnstartable().map((task) => task.task.id).sort(), [2, 3]);
});

test("a count whose answer comes after the window it counted in ended is made once more, in the window then", async () => {
  const clock = new ManualClock(W + 2 * INTERVAL - 10);
  const store = new RateStore(5);
  // The first count's answer comes after its window ended.
  store.onCount = () => {
    store.onCount = () => {};
    clock.advance(20);
  };
  const fetcher = fetcherOn(store, clock);
  const buffered = claimedAhead(2, W + INTERVAL);
  fetcher.hold([buffered]);
  const task = claimedAhead(1, W + INTERVAL);
  assert.equal(await fetcher.mayStart(task), true);
  assert.deepEqual(store.counts.map((c) => [c.n, c.counted, c.now - W]), [[2, 2, 1990], [2, 2, 2010]]);
  assert.deepEqual([task.startBy, buffered.startBy], [W + 3 * INTERVAL, W + 3 * INTERVAL]);
});

test("a task whose every count comes after its window ended goes back after two", async () => {
  const clock = new ManualClock(W + 2 * INTERVAL - 10);
  const store = new RateStore(5);
  store.onCount = () => clock.advance(INTERVAL);
  const fetcher = fetcherOn(store, clock);
  assert.equal(await fetcher.mayStart(claimedAhead(1, W + INTERVAL)), false);
  assert.equal(store.counts.length, 2);
});
