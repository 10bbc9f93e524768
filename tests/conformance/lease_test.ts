/**
 * Conformance: leases. Extending one, heartbeats that extend many and report the ones lost, and which
 * leases count as expired at a given time. "Later" is just a larger `now`: no test waits for a clock.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { WorkerInfo } from "../../src/store/store.ts";
import { describeEachStore } from "./_harness.ts";
import { claim, claimOne, fenceOf, finish, get, insert, LEASE_MS, newTask, T0 } from "./_fixtures.ts";

function workerInfo(id: string, heartbeatAt: number, fields: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id,
    host: "host-1",
    pid: 4242,
    startedAt: T0,
    heartbeatAt,
    concurrency: 4,
    handlerTypes: ["a", "b"],
    ...fields,
  };
}

describeEachStore("extending leases", (it) => {
  it("an extension sets the lease to the deadline given, while the claim holds the task", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store);
    assert.equal(await store.taskExtendLease(fenceOf(leased), T0 + 7777, T0 + 500), true);
    const task = await get(store, id!);
    assert.deepEqual(task, { ...leased.task, leaseUntil: T0 + 7777 });
  });

  it("a lease past its deadline but not reaped still holds: an extension revives it, and a reap then spares it", async ({ store }) => {
    const [id] = await insert(store, [newTask({ maxAttempts: 1 })]);
    const fence = fenceOf(await claimOne(store, { workerId: "w1" }));
    let now = T0 + LEASE_MS; // exactly at the deadline: not expired yet
    assert.deepEqual(await store.taskReapExpired(now), { requeued: 0, failed: 0 });
    now += 500; // past the deadline, and no reap has run
    assert.equal(await store.taskExtendLease(fence, now + LEASE_MS, now), true);
    assert.deepEqual(await store.taskReapExpired(now + 1), { requeued: 0, failed: 0 });
    assert.equal((await get(store, id!)).status, "running");
    // Left to expire with its only attempt used, it fails; the holder's outcome then changes nothing.
    now += LEASE_MS + 1;
    assert.deepEqual(await store.taskReapExpired(now), { requeued: 0, failed: 1 });
    assert.deepEqual(await finish(store, [{ ...fence, status: "completed" }], now), new Set());
    const failed = await get(store, id!);
    assert.deepEqual(
      [failed.status, failed.attempts, failed.finishedAt, failed.errorMessage],
      ["failed", 1, now, "lease expired: worker w1 stopped renewing it"],
    );
  });

  it("expired leases are those whose deadline is before now, earliest first, at most the limit asked", async ({ store }) => {
    const [a, b, c] = await insert(store, 3);
    const la = await claimOne(store, { leaseMs: 300 });
    const lb = await claimOne(store, { leaseMs: 100 });
    const lc = await claimOne(store, { leaseMs: 200 });
    assert.deepEqual([la.task.id, lb.task.id, lc.task.id], [a, b, c]);
    assert.deepEqual(
      await store.taskExpiredLeases(T0 + 100, 10),
      [],
      "a lease at its deadline has not expired",
    );
    assert.deepEqual(await store.taskExpiredLeases(T0 + 201, 10), [
      { id: b, leaseToken: lb.leaseToken, leaseUntil: T0 + 100 },
      { id: c, leaseToken: lc.leaseToken, leaseUntil: T0 + 200 },
    ]);
    assert.deepEqual(await store.taskExpiredLeases(T0 + 1000, 1), [
      { id: b, leaseToken: lb.leaseToken, leaseUntil: T0 + 100 },
    ]);
    // Neither listing changed anything.
    for (const l of [la, lb, lc]) assert.deepEqual(await get(store, l.task.id), l.task);
  });

  it("a task no longer running has no lease to expire", async ({ store }) => {
    await insert(store, 3);
    const leased = await claim(store, { limit: 3 });
    await finish(store, [{ ...fenceOf(leased[0]!), status: "completed" }], T0 + 1);
    await store.taskCancel(leased[1]!.task.id, T0 + 1);
    assert.deepEqual(
      (await store.taskExpiredLeases(T0 + 10 * LEASE_MS, 10)).map((lease) => lease.id),
      [leased[2]!.task.id],
    );
  });
});

describeEachStore("heartbeats", (it) => {
  it("a heartbeat extends every lease it holds to one deadline and reports none lost", async ({ store }) => {
    const ids = await insert(store, 3);
    const leased = await claim(store, { limit: 3 });
    assert.deepEqual(await store.workerHeartbeat(null, leased.map(fenceOf), T0 + 9000), []);
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await get(store, id), { ...leased[i]!.task, leaseUntil: T0 + 9000 });
    }
  });

  it("a heartbeat reports each lease it could not extend with what the task is now, and extends the rest", async ({ store }) => {
    const [done, cancelled, reclaimed, purged, kept, newest] = await insert(store, 6);
    const leased = await claim(store, { workerId: "w1", limit: 5 });
    const fence = (id: number | undefined) => fenceOf(leased.find((l) => l.task.id === id)!);
    await finish(store, [{ ...fence(done), status: "completed" }, {
      ...fence(purged),
      status: "failed",
      errorMessage: "x",
    }], T0 + 1);
    await store.taskCancel(cancelled!, T0 + 1);
    assert.equal(await store.taskPurge(["failed"], T0 + 2), 1);
    // The reclaimed task: its lease extended by everyone but itself, so that it alone expires and is reclaimed.
    await store.workerHeartbeat(null, [fence(kept)], T0 + 10 * LEASE_MS);
    await store.taskReapExpired(T0 + LEASE_MS + 1);
    await claimOne(store, { workerId: "w2", now: T0 + LEASE_MS + 1 });
    assert.equal((await get(store, reclaimed!)).lockedBy, "w2");
    const reclaimedNow = await get(store, reclaimed!);

    const lost = await store.workerHeartbeat(null, leased.map(fenceOf), T0 + 20 * LEASE_MS);
    assert.deepEqual(lost.sort((x, y) => x.id - y.id), [
      { id: done, status: "completed" },
      { id: cancelled, status: "cancelled" },
      { id: reclaimed, status: "running" },
      { id: purged, status: "deleted" },
    ]);
    assert.equal((await get(store, kept!)).leaseUntil, T0 + 20 * LEASE_MS);
    assert.deepEqual(await get(store, reclaimed!), reclaimedNow, "the new claim's lease is left alone");
    assert.equal((await get(store, newest!)).status, "queued");
  });

  it("a heartbeat with a worker records it; workers are listed by id, with what they last said", async ({ store }) => {
    assert.deepEqual(await store.workerList(), []);
    assert.deepEqual(await store.workerHeartbeat(workerInfo("w-b", T0), [], T0 + LEASE_MS), []);
    await store.workerHeartbeat(
      workerInfo("w-a", T0 + 5, { host: null, pid: null, handlerTypes: [] }),
      [],
      0,
    );
    await store.workerHeartbeat(workerInfo("w-b", T0 + 10, { concurrency: 8, handlerTypes: ["c"] }), [], 0);
    assert.deepEqual(await store.workerList(), [
      workerInfo("w-a", T0 + 5, { host: null, pid: null, handlerTypes: [] }),
      workerInfo("w-b", T0 + 10, { concurrency: 8, handlerTypes: ["c"] }),
    ]);
  });

  it("a heartbeat with a worker and leases records both in one call", async ({ store }) => {
    const [id] = await insert(store, 1);
    const leased = await claimOne(store, { workerId: "w-1" });
    assert.deepEqual(
      await store.workerHeartbeat(workerInfo("w-1", T0 + 100), [fenceOf(leased)], T0 + 3000),
      [],
    );
    assert.equal((await get(store, id!)).leaseUntil, T0 + 3000);
    assert.deepEqual(await store.workerList(), [workerInfo("w-1", T0 + 100)]);
  });

  it("workers silent since before a time are pruned, their ids returned in order; a worker can be deleted", async ({ store }) => {
    for (const [id, at] of [["w3", T0 + 30], ["w1", T0 + 10], ["w2", T0 + 20], ["w4", T0 + 40]] as const) {
      await store.workerHeartbeat(workerInfo(id, at), [], 0);
    }
    assert.deepEqual(await store.workerPrune(T0 + 10), [], "a heartbeat at the time itself is not older");
    assert.deepEqual(await store.workerPrune(T0 + 30), ["w1", "w2"]);
    assert.deepEqual((await store.workerList()).map((w) => w.id), ["w3", "w4"]);
    await store.workerDelete("w4");
    await store.workerDelete("no-such-worker");
    assert.deepEqual((await store.workerList()).map((w) => w.id), ["w3"]);
  });
});
