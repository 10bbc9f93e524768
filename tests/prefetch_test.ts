/**
 * The worker's claim-ahead buffer on a real file: quick tasks are claimed many per statement, slow ones no
 * further ahead than the free slots, `prefetch: 0` turns it off, and buffered tasks are handed back at
 * shutdown, dropped when cancelled, kept leased by heartbeats while they wait, and counted again in a rate
 * window of their queue when the one their claim counted in ends before they start.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  Queue,
  type QueueDatabase,
  type Task,
  WorkerEngine,
  type WorkerEngineOptions,
  type WorkerEvent,
} from "../mod.ts";
import type { ClaimParams, LeasedTask } from "../src/store/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { deferred, delay, T0, withDb, within, withQueueAtT0 } from "./_helpers.ts";

/**
 * How long a handler below waits for the worker to do something before the test fails rather than hangs:
 * far beyond what any of it takes on a loaded machine, so never a measure of speed.
 */
const HANG_MS = 30_000;

function worker(db: QueueDatabase, options: Partial<WorkerEngineOptions> = {}): WorkerEngine {
  return new WorkerEngine({ db, workerId: "w1", ...options });
}

function enqueueN(queue: Queue, n: number): Promise<Task[]> {
  return queue.enqueueMany(Array.from({ length: n }, (_, i) => ({ type: "t", payload: { i } })));
}

interface ClaimCall {
  limit: number;
  got: number;
}

/** The store's methods that claim tasks; each takes the claim's parameters as its last argument. */
const CLAIMING_METHODS = ["taskClaim", "taskRecordAndClaim"];

/**
 * Records every claim the worker makes through the store: how many tasks it asked for and how many it got.
 * A claim made by one claiming method through another is recorded once.
 */
function recordClaims(db: QueueDatabase): ClaimCall[] {
  const calls: ClaimCall[] = [];
  const store = storeOf(db) as unknown as Record<string, unknown>;
  let depth = 0;
  for (const name of CLAIMING_METHODS) {
    const original = store[name];
    if (typeof original !== "function") continue;
    store[name] = async (...args: unknown[]) => {
      depth++;
      try {
        const result: LeasedTask[] | { leased: LeasedTask[] } = await original.apply(storeOf(db), args);
        if (depth === 1) {
          const { limit } = args[args.length - 1] as ClaimParams;
          calls.push({ limit, got: (Array.isArray(result) ? result : result.leased).length });
        }
        return result;
      } finally {
        depth--;
      }
    };
  }
  return calls;
}

/** Records every count again the worker asks the store for: what it counted, and the window's end. */
function recordCountsAgain(db: QueueDatabase): { counted: number; startBy: number | null }[] {
  const counts: { counted: number; startBy: number | null }[] = [];
  const store = storeOf(db);
  const original = store.queueCountAgain.bind(store);
  store.queueCountAgain = async (queue, n, now) => {
    const result = await original(queue, n, now);
    counts.push(result);
    return result;
  };
  return counts;
}

/** Ids in claim order, from the worker's "claimed" events. */
function claimedIds(events: WorkerEvent[]): number[] {
  return events.flatMap((event) => event.type === "claimed" ? [event.task.id] : []);
}

describe("how far ahead a worker claims", () => {
  test("with quick handlers, 500 tasks are claimed in far fewer statements than tasks", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 500);
      const claims = recordClaims(db);
      const ran: number[] = [];
      const summary = await worker(db, { concurrency: 1 }).runLoop({
        taskHandler: (task) => void ran.push(task.id),
        untilEmpty: true,
      });
      assert.equal(summary.completed, 500);
      assert.equal(ran.length, 500);
      assert.equal(new Set(ran).size, 500);
      assert.equal((await queue.stats()).counts.completed, 500);
      assert.ok(
        claims.some((call) => call.got > 1),
        `none of ${claims.length} claims returned more than one task`,
      );
      assert.ok(claims.length < 100, `expected fewer than 100 claim statements, got ${claims.length}`);
      assert.equal(claims.reduce((sum, call) => sum + call.got, 0), 500);
    });
  });

  test("with slow handlers, a worker claims no more tasks than it has free slots", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 12);
      const claims = recordClaims(db);
      const summary = await worker(db, { concurrency: 2 }).runLoop({
        taskHandler: () => delay(30),
        untilEmpty: true,
      });
      assert.equal(summary.completed, 12);
      // The limit each claim asks for is the most direct observable: the worker holds at most what it has
      // running plus what it claims, and it claims only when its buffer is empty. (Counting 'running' rows
      // would over-count: a finished task's outcome is written a moment after its slot is reused.) A 30 ms
      // handler is three times the ~10 ms the worker claims ahead for, so it must never ask beyond its
      // two slots.
      for (const call of claims) {
        assert.ok(call.limit <= 2, `a claim asked for ${call.limit} tasks with concurrency 2`);
        assert.ok(call.got <= 2);
      }
      assert.ok(claims.length >= 6, `12 tasks two at a time need at least 6 claims, got ${claims.length}`);
    });
  });

  test("with prefetch 0, a worker claims no more tasks than it has free slots, however quick they are", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 60);
      const claims = recordClaims(db);
      const summary = await worker(db, { concurrency: 3, prefetch: 0 }).runLoop({
        taskHandler: () => {},
        untilEmpty: true,
      });
      assert.equal(summary.completed, 60);
      for (const call of claims) {
        assert.ok(call.limit <= 3, `a claim asked for ${call.limit} tasks with concurrency 3 and prefetch 0`);
      }
      assert.ok(
        claims.length >= 20,
        `60 tasks three at a time need at least 20 claims, got ${claims.length}`,
      );
    });
  });
});

describe("tasks waiting in the buffer", () => {
  test("stopping a worker hands its claimed-ahead tasks back at once: queued, attempt not counted, reported as released", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 50);
      const events: WorkerEvent[] = [];
      let expectedReleases = Infinity;
      const allReleased = deferred();
      const w = worker(db, {
        concurrency: 1,
        onEvent: (event) => {
          events.push(event);
          const released = events.filter((e) => e.type === "released").length;
          if (released >= expectedReleases) allReleased.resolve();
        },
      });
      const ran: number[] = [];
      let buffered: number[] = [];
      let stopping: Promise<void> | undefined;
      let releasedWhileRunning: unknown = "the handler never stopped the worker";
      const summary = await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          const claimed = claimedIds(events);
          // The first task is claimed alone; once the worker has seen how quick handlers are, it claims
          // ahead. Stop at the first task that starts while others wait in the buffer.
          if (stopping || claimed.length === ran.length) return;
          buffered = claimed.filter((id) => !ran.includes(id));
          expectedReleases = buffered.length;
          stopping = w.stop();
          // This handler is still running: the buffered tasks must come back without waiting for it. (The
          // bound is a hang guard: waiting for this handler would never end.)
          releasedWhileRunning = await within(HANG_MS, "the buffered tasks' release", allReleased.promise)
            .then(() => true, (error) => error);
        },
        // Ends the loop, should no task ever start while others are buffered.
        untilEmpty: true,
      });
      await stopping;

      assert.ok(
        buffered.length > 1,
        `expected several tasks in the buffer at the stop, got ${buffered.length}`,
      );
      assert.equal(releasedWhileRunning, true);
      const releasedIds = events.flatMap((e) => e.type === "released" ? [e.task.id] : []);
      assert.deepEqual(releasedIds.toSorted((a, b) => a - b), buffered.toSorted((a, b) => a - b));
      assert.equal(summary.released, buffered.length);
      assert.equal(summary.completed, ran.length);
      assert.equal(summary.claimed, ran.length + buffered.length);
      for (const id of buffered) {
        const task = await queue.get(id);
        assert.ok(task);
        assert.equal(task.status, "queued", `task ${id}`);
        assert.equal(task.attempts, 0, `task ${id}`);
        assert.equal(task.leaseUntil, null, `task ${id}`);
      }
      const { counts } = await queue.stats();
      assert.equal(counts.running, 0);
      assert.equal(counts.completed, ran.length);
      assert.equal(counts.queued, 50 - ran.length);
    });
  });

  test("a queue paused while tasks wait in the buffer starts none of them: they go back, attempt not counted", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 50);
      const events: WorkerEvent[] = [];
      const w = worker(db, { concurrency: 1, onEvent: (event) => void events.push(event) });
      const ran: number[] = [];
      let buffered: number[] = [];
      let pausedAt = -1;
      const summary = await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          const claimed = claimedIds(events);
          // Pause at the first task that starts while others wait in the buffer.
          if (pausedAt !== -1 || claimed.length === ran.length) return;
          buffered = claimed.filter((id) => !ran.includes(id));
          await queue.pauseQueue("default");
          pausedAt = ran.length;
        },
        // Ends the loop once nothing is runnable: a paused queue's tasks are not.
        untilEmpty: true,
      });

      assert.ok(
        buffered.length > 1,
        `expected several tasks in the buffer at the pause, got ${buffered.length}`,
      );
      assert.equal(ran.length, pausedAt, `${ran.length - pausedAt} tasks started after the pause`);
      const releasedIds = events.flatMap((e) => e.type === "released" ? [e.task.id] : []);
      assert.deepEqual(releasedIds.toSorted((a, b) => a - b), buffered.toSorted((a, b) => a - b));
      assert.equal(summary.released, buffered.length);
      for (const id of buffered) {
        const task = await queue.get(id);
        assert.equal(task?.status, "queued", `task ${id}`);
        assert.equal(task?.attempts, 0, `task ${id}`);
      }
      await queue.resumeQueue("default");
      const rest = await w.runLoop({ taskHandler: () => {}, untilEmpty: true });
      assert.equal(rest.completed, 50 - ran.length, "resumed, every task left runs");
    });
  });

  test("tasks claimed ahead whose rate window ends before they start are counted in the next one, and start", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await queue.setQueueLimits("default", { rate: { limit: 1000, intervalMs: 300 } });
      await enqueueN(queue, 50);
      const events: WorkerEvent[] = [];
      const w = worker(db, { concurrency: 1, onEvent: (event) => void events.push(event) });
      const ran: number[] = [];
      let buffered: number[] = [];
      let over = Infinity;
      const summary = await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          const claimed = claimedIds(events);
          if (buffered.length > 0 || claimed.length === ran.length) return;
          buffered = claimed.filter((id) => !ran.includes(id));
          // Longer than the interval: the window the buffered tasks' claim counted in is over when they
          // could start, and a start now must be counted in the window it is made in.
          over = task.startedAt! + 400;
          await delay(400);
        },
        untilEmpty: true,
      });

      assert.ok(buffered.length > 1, `expected several tasks in the buffer, got ${buffered.length}`);
      const released = events.flatMap((e) => e.type === "released" ? [e.task.id] : []);
      assert.deepEqual(released, [], "the next window had room for them all: none went back");
      assert.equal(summary.completed, 50);
      for (const id of buffered) {
        const task = await queue.get(id);
        assert.equal(task?.attempts, 1, `task ${id}: one attempt`);
        assert.ok(task!.startedAt! >= over, `task ${id} started past the window its claim counted in`);
      }
    });
  });

  test("tasks claimed ahead whose rate window ends before they start go back unstarted when the next one is full", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await queue.setQueueLimits("default", { rate: { limit: 1000, intervalMs: 300 } });
      await enqueueN(queue, 12);
      const events: WorkerEvent[] = [];
      const w = worker(db, { concurrency: 1, onEvent: (event) => void events.push(event) });
      const ran: number[] = [];
      let buffered: number[] = [];
      const summary = await w.runLoop({
        taskHandler: async () => {
          ran.push(ran.length);
          const claimed = claimedIds(events);
          if (buffered.length > 0 || claimed.length === ran.length) return;
          buffered = claimed.slice(ran.length);
          // A new rate, and so a new window, with room for two; the buffered tasks' window ends meanwhile.
          await queue.setQueueLimits("default", { rate: { limit: 2, intervalMs: 300 } });
          await delay(400);
        },
        untilEmpty: true,
      });

      assert.ok(buffered.length > 2, `expected several tasks in the buffer, got ${buffered.length}`);
      const released = events.flatMap((e) => e.type === "released" ? [e.task.id] : []);
      assert.deepEqual(
        released.toSorted((a, b) => a - b),
        buffered.slice(2).toSorted((a, b) => a - b),
        "the first two in the buffer were counted in the window, and started; the others went back",
      );
      assert.equal(summary.completed, 12, "claimed again in later windows, every task ran");
      for (const id of buffered) assert.equal((await queue.get(id))?.attempts, 1, `task ${id}: one attempt`);
    });
  });

  test("with several slots, late tasks taken to start at once are counted as far as their window has room, and no window starts more than its limit", async () => {
    await withDb(async (db) => {
      const INTERVAL = 500;
      const SLOTS = 4;
      const queue = new Queue(db);
      await queue.setQueueLimits("default", { rate: { limit: 1000, intervalMs: INTERVAL } });
      const tasks = await enqueueN(queue, 12);
      const events: WorkerEvent[] = [];
      const w = worker(db, { concurrency: SLOTS, onEvent: (event) => void events.push(event) });
      const counts = recordCountsAgain(db);
      const ran: number[] = [];
      /**
       * When each task started after the slots were freed (all since the new rate), as its handler is told:
       * the time its start was allowed at. (The row's is its outcome's when both are written together,
       * which may fall in a later window.)
       */
      const startedAt: number[] = [];
      let buffered: number[] = [];
      let blocked = 0;
      const gate = deferred();
      let opened = false;
      const summary = await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          if (opened) return void startedAt.push(task.startedAt!);
          // Claimed ahead and not started yet: what waits in the buffer once every slot is held here.
          const waiting = events.flatMap((e) =>
            e.type === "claimed" && e.task.startedAt === null && !ran.includes(e.task.id) ? [e.task.id] : []
          );
          if (waiting.length === 0) return;
          // Every slot is held until the buffered tasks' window is over, then all are freed at once: as many
          // late tasks are taken to start together as there are slots.
          if (++blocked === SLOTS) {
            buffered = waiting;
            // A new rate, and so a new window, with room for two; the buffered tasks' window ends meanwhile.
            await queue.setQueueLimits("default", { rate: { limit: 2, intervalMs: INTERVAL } });
            await delay(INTERVAL + 100);
            opened = true;
            gate.resolve();
          }
          await within(HANG_MS, `all ${SLOTS} slots held with tasks in the buffer`, gate.promise);
        },
        untilEmpty: true,
      });

      assert.ok(buffered.length > 2, `expected several tasks in the buffer, got ${buffered.length}`);
      assert.equal(summary.completed, 12, "every task ran");
      const released = events.flatMap((e) => e.type === "released" ? [e.task.id] : []);
      assert.equal(new Set(released).size, released.length, "none went back twice");
      assert.ok(released.every((id) => buffered.includes(id)), "only late tasks went back");
      const counted = buffered.filter((id) => !released.includes(id));
      assert.ok(counted.length >= 1, "the next window had room: some were counted again there, and started");
      // The store counted no window past its room, and no more tasks started than it counted.
      const byWindow = new Map<number, number>();
      for (const { counted, startBy } of counts) {
        byWindow.set(startBy!, (byWindow.get(startBy!) ?? 0) + counted);
      }
      for (const [end, n] of byWindow) assert.ok(n <= 2, `${n} counted again in the window ending at ${end}`);
      const total = counts.reduce((sum, count) => sum + count.counted, 0);
      assert.ok(counted.length <= total, `${counted.length} started late, ${total} counted again`);
      if (byWindow.size === 1) {
        // As a rule, every count is made in the window the slots were freed in (on a loaded machine, a
        // count may come after it ended, in the next window, with room of its own).
        assert.equal(counted.length, 2, "room for 2: two of the late tasks started");
        assert.equal(released.length, buffered.length - 2, "and the others went back");
      }
      // Every start since the new rate (the slots held from before it until after), in the window it was
      // made in: never more than 2 in one.
      assert.equal(ran.length, 12, "each task started once");
      assert.ok(
        startedAt.length >= buffered.length,
        "every buffered task started after the slots were freed",
      );
      for (const { id } of tasks) assert.equal((await queue.get(id))?.attempts, 1, `task ${id}: one attempt`);
      const starts = new Map<number, number>();
      for (const at of startedAt) {
        const window = Math.floor(at / INTERVAL) * INTERVAL;
        starts.set(window, (starts.get(window) ?? 0) + 1);
      }
      for (const [window, n] of starts) assert.ok(n <= 2, `${n} starts in the window at ${window}`);
    });
  });

  test("a buffered task cancelled before it starts is never run, and is reported as cancelled", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await enqueueN(queue, 20);
      const events: WorkerEvent[] = [];
      let target = -1;
      const targetLost = deferred();
      const w = worker(db, {
        concurrency: 1,
        heartbeatIntervalMs: 20,
        onEvent: (event) => {
          events.push(event);
          if (event.type === "cancelled" && event.task.id === target) targetLost.resolve();
        },
      });
      const ran: number[] = [];
      let statusBeforeCancel: string | undefined;
      let noticed: unknown = "the handler never cancelled a buffered task";
      const summary = await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          const claimed = claimedIds(events);
          if (target !== -1 || claimed.length === ran.length) return;
          // The last task claimed has not started: it waits in the buffer behind this one.
          target = claimed[claimed.length - 1];
          statusBeforeCancel = (await queue.get(target))?.status;
          await queue.cancel(target);
          // Keep the only slot busy until a heartbeat has noticed the cancellation.
          noticed = await within(HANG_MS, "a cancelled event for the cancelled task", targetLost.promise)
            .then(() => true, (error) => error);
        },
        untilEmpty: true,
      });

      assert.notEqual(target, -1, "no task started while another was buffered");
      assert.equal(statusBeforeCancel, "running", "the cancelled task had been claimed");
      assert.equal(noticed, true);
      assert.ok(!ran.includes(target), `the cancelled task ${target} ran`);
      assert.equal((await queue.get(target))?.status, "cancelled");
      const cancelled = events.filter((e) => e.type === "cancelled");
      assert.deepEqual(cancelled.map((e) => e.type === "cancelled" && e.task.id), [target]);
      assert.deepEqual(events.filter((e) => e.type === "lease-lost"), []);
      assert.equal(summary.cancelled, 1);
      assert.equal(summary.leaseLost, 0);
      assert.equal(summary.completed, 19);
      assert.equal(ran.length, 19);
      assert.equal((await queue.stats()).counts.completed, 19);
    });
  });

  test("heartbeats renew the leases of buffered tasks while they wait behind a running one", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      await enqueueN(queue, 20);
      // Resolves once a heartbeat that set leases to T0 + 1500 has been written.
      const renewed = deferred();
      const heartbeat = storeOf(db).workerHeartbeat.bind(storeOf(db));
      storeOf(db).workerHeartbeat = async (info, fences, leaseUntil) => {
        const lost = await heartbeat(info, fences, leaseUntil);
        if (leaseUntil === T0 + 1500) renewed.resolve();
        return lost;
      };
      const events: WorkerEvent[] = [];
      const w = worker(db, {
        clock,
        concurrency: 1,
        leaseMs: 1000,
        heartbeatIntervalMs: 20,
        onEvent: (event) => void events.push(event),
      });
      const ran: number[] = [];
      let target = -1;
      let before: Task | undefined;
      let after: Task | undefined;
      let ranBeforeRenewal: boolean | undefined;
      let waited: unknown = "no task started while another was buffered";
      await w.runLoop({
        taskHandler: async (task) => {
          ran.push(task.id);
          const claimed = claimedIds(events);
          if (target !== -1 || claimed.length === ran.length) return;
          target = claimed[claimed.length - 1];
          before = await queue.get(target);
          clock.advance(500);
          // The clock stands still now, so a heartbeat from here on sets every lease to T0 + 1500.
          waited = await within(HANG_MS, "a heartbeat at T0 + 500", renewed.promise).then(
            () => true,
            (e) => e,
          );
          after = await queue.get(target);
          ranBeforeRenewal = ran.includes(target);
        },
        untilEmpty: true,
      });

      assert.equal(waited, true);
      assert.ok(before && after);
      assert.equal(before.status, "running");
      assert.equal(before.leaseUntil, T0 + 1000, "claimed at T0 with a 1000 ms lease");
      assert.equal(ranBeforeRenewal, false, "the task was still waiting in the buffer");
      assert.equal(after.status, "running");
      assert.equal(after.lockedBy, "w1");
      assert.equal(after.leaseUntil, T0 + 1500, "the waiting task's lease was renewed");
      const final = await queue.get(target);
      assert.equal(final?.status, "completed");
      assert.equal(final?.attempts, 1);
    });
  });

  test("a heartbeat that was slow does not take a task from its new claim: only the token it sent is lost", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const store = storeOf(db) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const heartbeat = store.workerHeartbeat.bind(storeOf(db));
      const slowHeartbeat = deferred();
      const secondStarted = deferred();
      const heartbeatReturned = deferred();
      let slowNext = false;
      // Stands in for a heartbeat that waits for another process's write lock: it goes to the database only
      // once the second attempt has started, so the order below holds however the machine schedules it.
      store.workerHeartbeat = async (...args) => {
        if (!slowNext) return heartbeat(...args);
        slowNext = false;
        slowHeartbeat.resolve();
        await within(HANG_MS, "the second attempt to start", secondStarted.promise);
        try {
          return await heartbeat(...args);
        } finally {
          heartbeatReturned.resolve();
        }
      };
      const task = await queue.enqueue("t", {});
      const events: WorkerEvent[] = [];
      const w = worker(db, {
        leaseMs: 1000,
        heartbeatIntervalMs: 20,
        retry: { initialDelayMs: 0, jitter: 0 },
        onEvent: (event) => events.push(event),
      });
      const summary = await w.runLoop({
        untilEmpty: true,
        taskHandler: async (_task, ctx) => {
          if (ctx.attempt > 1) {
            // The second attempt is still running when the slow heartbeat returns, and until the worker
            // has acted on its answer (synchronously, before any timer can fire).
            secondStarted.resolve();
            await within(HANG_MS, "the slow heartbeat to return", heartbeatReturned.promise);
            return await delay(0);
          }
          // The slow heartbeat carries this claim's token; the task fails, is retried at once and claimed
          // again under a new token, all before that heartbeat returns.
          slowNext = true;
          await slowHeartbeat.promise;
          throw new Error("first attempt fails");
        },
      });
      assert.deepEqual(events.filter((event) => event.type === "lease-lost"), []);
      assert.equal(summary.leaseLost, 0);
      const final = await queue.get(task.id);
      assert.equal(final?.status, "completed");
      assert.equal(final?.attempts, 2);
    });
  });
});
