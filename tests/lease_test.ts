/**
 * Leases and fencing on a real file, made deterministic with a ManualClock: expired leases are reclaimed
 * (the attempt counts), outcomes and heartbeats of a worker that lost its lease change nothing.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type HandlerContext,
  LeaseLostError,
  ManualClock,
  NonRetryableError,
  type QueueDatabase,
  type Task,
  type TaskHandler,
  WorkerEngine,
  type WorkerEngineOptions,
  type WorkerEvent,
} from "../mod.ts";
import type { Fence, Finish, LeasedTask } from "../src/store/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { deferred, finishMany, rejectionOf, T0, untilAborted, waitFor, withQueueAtT0 } from "./_helpers.ts";

const LEASE_MS = 1000;

/** A worker on the manual clock whose reaper runs on every claim and takes expired leases at once. */
function worker(
  db: QueueDatabase,
  clock: ManualClock,
  workerId: string,
  options: Partial<WorkerEngineOptions> = {},
): WorkerEngine {
  return new WorkerEngine({
    db,
    workerId,
    clock,
    leaseMs: LEASE_MS,
    reapIntervalMs: 1,
    reapGraceMs: 0,
    ...options,
  });
}

/** Claims the next task straight from the store, as a worker that then dies would. */
async function claimAs(db: QueueDatabase, workerId: string, now: number): Promise<LeasedTask> {
  const [leased] = await storeOf(db).taskClaim({
    workerId,
    limit: 1,
    leaseMs: LEASE_MS,
    now,
    strategy: "fifo",
  });
  assert.ok(leased, `${workerId} claimed a task`);
  return leased;
}

function fenceOf(leased: LeasedTask): Fence {
  return { id: leased.task.id, leaseToken: leased.leaseToken };
}

describe("expired leases", () => {
  test("a task whose worker stopped renewing its lease is claimed by another worker once it expires, and that attempt counts", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t", { n: 1 }, { maxAttempts: 3 });
      await claimAs(db, "dead", clock.now());

      const seen: { task: Task; attempt: number }[] = [];
      const handler: TaskHandler = (t, ctx) => void seen.push({ task: t, attempt: ctx.attempt });
      const alive = worker(db, clock, "alive");
      clock.advance(LEASE_MS - 1);
      assert.equal(await alive.claimAndProcess(handler), false, "the lease still holds");
      const held = await queue.get(task.id);
      assert.equal(held?.status, "running");
      assert.equal(held?.lockedBy, "dead");

      clock.advance(2); // past the lease
      assert.equal(await alive.claimAndProcess(handler), true);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].attempt, 2);
      assert.equal(seen[0].task.attempts, 2);
      assert.equal(seen[0].task.lockedBy, "alive");
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed");
      assert.equal(done?.attempts, 2);
      assert.equal(done?.lockedBy, "alive");
    });
  });

  test("the reaper runs at most once per reapIntervalMs of the worker's clock", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const alive = worker(db, clock, "alive", { reapIntervalMs: 5000 });
      const handler: TaskHandler = () => {};
      assert.equal(await alive.claimAndProcess(handler), false); // reaps now, at T0
      const task = await queue.enqueue("t");
      await claimAs(db, "dead", clock.now());
      clock.advance(2000); // the lease expired, but the last reap was only 2 s ago
      assert.equal(await alive.claimAndProcess(handler), false);
      assert.equal((await queue.get(task.id))?.lockedBy, "dead");
      clock.advance(3000);
      assert.equal(await alive.claimAndProcess(handler), true);
      assert.equal((await queue.get(task.id))?.status, "completed");
    });
  });

  test("when no attempts remain, an expired lease fails the task with 'lease expired'", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("crashy", {}, { maxAttempts: 2 });

      await claimAs(db, "dead-1", clock.now());
      clock.advance(LEASE_MS + 1);
      assert.deepEqual(await storeOf(db).taskReapExpired(clock.now()), { requeued: 1, failed: 0 });
      const requeued = await queue.get(task.id);
      assert.equal(requeued?.status, "queued");
      assert.equal(requeued?.attempts, 1);
      assert.equal(requeued?.runAfter, clock.now());
      assert.match(requeued?.errorMessage ?? "", /lease expired/);

      await claimAs(db, "dead-2", clock.now());
      clock.advance(LEASE_MS + 1);
      let ran = false;
      assert.equal(await worker(db, clock, "alive").claimAndProcess(() => void (ran = true)), false);
      assert.equal(ran, false);
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.attempts, 2);
      assert.match(failed?.errorMessage ?? "", /lease expired/);
      assert.match(failed?.errorMessage ?? "", /dead-2/);
      assert.equal(failed?.finishedAt, clock.now());
      assert.equal(failed?.leaseUntil, null);
    });
  });
});

describe("fencing by lease token", () => {
  test("a finish, extension or release with a stale lease token changes nothing; the current holder's succeeds", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      const first = await claimAs(db, "old", clock.now());
      clock.advance(LEASE_MS + 1);
      await storeOf(db).taskReapExpired(clock.now());
      const second = await claimAs(db, "new", clock.now());
      assert.equal(second.task.id, task.id);
      assert.notEqual(second.leaseToken, first.leaseToken);

      const stale = fenceOf(first);
      const before = await queue.get(task.id);
      const staleFinishes: Finish[] = [
        { ...stale, status: "completed" },
        { ...stale, status: "failed", errorMessage: "stale failure" },
        { ...stale, status: "queued", runAfter: clock.now() + 5000, errorMessage: "stale retry" },
      ];
      for (const finish of staleFinishes) {
        const held = await finishMany(storeOf(db), [finish], clock.now());
        assert.equal(held.size, 0, `a stale '${finish.status}' is refused`);
      }
      assert.equal(await storeOf(db).taskExtendLease(stale, clock.now() + 99_999, clock.now()), false);
      assert.equal((await storeOf(db).taskReleaseMany([stale], clock.now())).size, 0);
      assert.deepEqual(await queue.get(task.id), before);
      assert.equal(before?.status, "running");
      assert.equal(before?.lockedBy, "new");

      const current = fenceOf(second);
      assert.equal(await storeOf(db).taskExtendLease(current, clock.now() + 5000, clock.now()), true);
      assert.equal((await queue.get(task.id))?.leaseUntil, clock.now() + 5000);
      assert.deepEqual(
        await finishMany(storeOf(db), [{ ...current, status: "completed" }], clock.now()),
        new Set([task.id]),
      );
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed");
      assert.equal(done?.lockedBy, "new");
      assert.equal(done?.leaseUntil, null);
      // Once recorded, the token is spent.
      assert.equal(
        (await finishMany(storeOf(db), [{ ...current, status: "failed", errorMessage: "x" }], clock.now()))
          .size,
        0,
      );
      assert.equal(await storeOf(db).taskExtendLease(current, clock.now() + 5000, clock.now()), false);
      assert.equal((await queue.get(task.id))?.status, "completed");
    });
  });

  test("in one batch of outcomes, only those whose fence holds are applied", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const [x, y] = await queue.enqueueMany([{ type: "t" }, { type: "t" }]);
      const xOld = await claimAs(db, "w", clock.now());
      const yLeased = await claimAs(db, "w", clock.now());
      assert.deepEqual([xOld.task.id, yLeased.task.id], [x.id, y.id]);
      // x is cancelled while running: its fence no longer holds.
      await queue.cancel(x.id);
      const held = await finishMany(storeOf(db), [
        { ...fenceOf(xOld), status: "completed" },
        { ...fenceOf(yLeased), status: "failed", errorMessage: "y failed" },
      ], clock.now());
      assert.deepEqual(held, new Set([y.id]));
      assert.equal((await queue.get(x.id))?.status, "cancelled");
      const yAfter = await queue.get(y.id);
      assert.equal(yAfter?.status, "failed");
      assert.equal(yAfter?.errorMessage, "y failed");
    });
  });
});

describe("heartbeats", () => {
  test("ctx.heartbeat() extends the lease, so the reaper leaves the task alone past its first deadline", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      const leases: (number | null | undefined)[] = [];
      let otherClaimed: boolean | undefined;
      const other = worker(db, clock, "other");
      // Automatic heartbeats are far apart in real time; the handler beats by hand.
      const holder = worker(db, clock, "holder", { leaseMs: 10_000, heartbeatIntervalMs: 9_000 });
      assert.equal(
        await holder.claimAndProcess(async (t, ctx) => {
          leases.push((await queue.get(t.id))?.leaseUntil);
          clock.advance(4000);
          await ctx.heartbeat();
          leases.push((await queue.get(t.id))?.leaseUntil);
          clock.advance(6001); // past the first lease, within the extended one
          otherClaimed = await other.claimAndProcess(() => {});
        }),
        true,
      );
      assert.deepEqual(leases, [T0 + 10_000, T0 + 14_000]);
      assert.equal(otherClaimed, false);
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed");
      assert.equal(done?.attempts, 1);
      assert.equal(done?.lockedBy, "holder");
    });
  });

  test("ctx.heartbeat() after another worker reclaimed the task throws LeaseLostError", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      const started = deferred<HandlerContext>();
      const gate = deferred();
      let heartbeatError: unknown;
      const events: WorkerEvent[] = [];
      // The slow worker's clock stands still, so its automatic heartbeats never push the lease past
      // T0 + LEASE_MS, whatever the real time: it behaves as a worker that stopped renewing its lease.
      const slow = worker(db, new ManualClock(T0), "slow", {
        heartbeatIntervalMs: 900,
        onEvent: (event) => events.push(event),
      });
      const slowRun = slow.claimAndProcess(async (_task, ctx) => {
        started.resolve(ctx);
        await gate.promise;
        try {
          await ctx.heartbeat();
        } catch (error) {
          heartbeatError = error;
          throw error;
        }
      });
      let ctx: HandlerContext;
      try {
        ctx = await started.promise;
        clock.advance(LEASE_MS + 1);
        assert.equal(await worker(db, clock, "fast").claimAndProcess(() => {}), true);
      } finally {
        gate.resolve();
      }
      assert.equal(await slowRun, true);
      assert.ok(heartbeatError instanceof LeaseLostError, `got ${String(heartbeatError)}`);
      assert.equal(heartbeatError.taskId, task.id);
      assert.equal(heartbeatError.why, "reclaimed");
      assert.equal(ctx.signal.aborted, true);
      assert.ok(ctx.signal.reason instanceof LeaseLostError);
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed");
      assert.equal(done?.lockedBy, "fast");
      assert.deepEqual(events.map((e) => e.type), ["claimed", "lease-lost"]);
    });
  });

  test("ctx.heartbeat() after the handler returned says the attempt is over, not that the task was reclaimed", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      let kept: HandlerContext | undefined;
      assert.equal(await worker(db, clock, "w").claimAndProcess((_task, ctx) => void (kept = ctx)), true);
      assert.equal((await queue.get(task.id))?.status, "completed");
      const error = await rejectionOf(kept!.heartbeat());
      assert.ok(!(error instanceof LeaseLostError), String(error));
      assert.match(
        String(error),
        new RegExp(`Task ${task.id}: heartbeat\\(\\) was called after its handler returned`),
      );
    });
  });

  test("the automatic heartbeat aborts a handler's signal once another worker reclaimed its task", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      const started = deferred<AbortSignal>();
      // The slow worker's clock stands still, so its heartbeats (every 20 ms of real time) keep setting the
      // lease to T0 + LEASE_MS: they cannot outrun the reclaim, and they are how it learns of it.
      const slow = worker(db, new ManualClock(T0), "slow", { heartbeatIntervalMs: 20 });
      const slowRun = slow.claimAndProcess(async (_task, ctx) => {
        started.resolve(ctx.signal);
        await untilAborted(ctx.signal);
      });
      const signal = await started.promise;
      clock.advance(LEASE_MS + 1);
      assert.equal(await worker(db, clock, "fast").claimAndProcess(() => {}), true);
      // A hang guard for a loaded machine, not how soon the next heartbeat comes.
      await waitFor(() => signal.aborted, 30_000, "the slow worker's signal to abort");
      assert.ok(signal.reason instanceof LeaseLostError);
      assert.equal(signal.reason.why, "reclaimed");
      assert.equal(await slowRun, true);
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed");
      assert.equal(done?.lockedBy, "fast");
    });
  });
});

describe("a worker that lost its lease", () => {
  test("emits 'lease-lost' when its handler finishes late, and the recorded result stays the other worker's", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t", {}, { maxAttempts: 5 });
      const started = deferred();
      const gate = deferred();
      const slowEvents: WorkerEvent[] = [];
      // Its automatic heartbeats are far apart in real time, so it learns of the loss only when it finishes;
      // and its clock stands still, so that even a heartbeat could not push the lease past T0 + 60 s.
      const slow = worker(db, new ManualClock(T0), "slow", {
        leaseMs: 60_000,
        heartbeatIntervalMs: 50_000,
        onEvent: (event) => slowEvents.push(event),
      });
      const slowRun = slow.claimAndProcess(async () => {
        started.resolve();
        await gate.promise;
        return "the slow worker's success";
      });
      let reclaimedAt: number;
      try {
        await started.promise;
        clock.advance(60_001);
        reclaimedAt = clock.now();
        const fast = worker(db, clock, "fast");
        assert.equal(
          await fast.claimAndProcess(() => {
            throw new NonRetryableError("the fast worker's failure");
          }),
          true,
        );
        clock.advance(50);
      } finally {
        gate.resolve();
      }
      assert.equal(await slowRun, true);

      assert.deepEqual(slowEvents.map((e) => e.type), ["claimed", "lease-lost"]);
      const lost = slowEvents[1];
      assert.ok(lost.type === "lease-lost");
      assert.ok(lost.reason instanceof LeaseLostError);
      assert.equal(lost.reason.why, "reclaimed");
      assert.equal(lost.task.id, task.id);

      const recorded = await queue.get(task.id);
      assert.equal(recorded?.status, "failed");
      assert.equal(recorded?.errorMessage, "the fast worker's failure");
      assert.equal(recorded?.lockedBy, "fast");
      assert.equal(recorded?.attempts, 2);
      assert.equal(recorded?.finishedAt, reclaimedAt);
    });
  });
});
