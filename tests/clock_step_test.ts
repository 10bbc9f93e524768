/**
 * Clock steps: a worker whose wall clock runs 45 s ahead of a live worker's (as after a step of every clock
 * on a host, or one host's clock ahead of another's) sees that worker's 30-second leases as expired, and
 * must not take them while it lives; once it dies, they are taken. Real processes, a real SIGKILL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ManualClock, Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { makeTempDir, waitFor, withDb } from "./_helpers.ts";

const fixture = new URL("./fixtures/attempts_worker.ts", import.meta.url).pathname;
const LEASE_MS = 30_000;
const STEP_MS = 45_000;
/**
 * How long the other worker's reaper must see a lease expired, with the same deadline, before it takes it:
 * fifteen times the holder's 200 ms between renewals, so that a holder slowed down by a busy machine still
 * renews in time.
 */
const REAP_GRACE_MS = 3000;

test("a worker whose clock is 45 s ahead takes no lease from a live worker, and takes them once it dies", async () => {
  const { dir, remove } = makeTempDir("prismq-clock-");
  const dbPath = join(dir, "queue.db");
  const log = join(dir, "holder.log");
  const db = new QueueDatabase(dbPath);
  // The holder renews its leases every 200 ms; the other worker waits REAP_GRACE_MS of its own elapsed time.
  const holder = spawn(
    process.execPath,
    ["run", "-A", fixture, dbPath, log, "holder", "8", String(LEASE_MS), "200"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const holderExit = new Promise((resolve) => holder.on("exit", resolve));
  let ahead: WorkerEngine | undefined;
  let loop: Promise<unknown> | undefined;
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    const tasks = await queue.enqueueMany(Array.from({ length: 8 }, () => ({ type: "hang" })));
    await waitFor(
      () => existsSync(log) && readFileSync(log, "utf8").split("\n").filter(Boolean).length === 8,
      30_000,
      "the holder to start all eight",
    );
    // Each look the other worker's reaper takes at expired leases: when (on this process's monotonic clock,
    // which is the reaper's too) and how many it found.
    const looks: { at: number; expired: number }[] = [];
    const expiredLeases = storeOf(db).taskExpiredLeases.bind(storeOf(db));
    storeOf(db).taskExpiredLeases = async (now, limit) => {
      const leases = await expiredLeases(now, limit);
      looks.push({ at: performance.now(), expired: leases.length });
      return leases;
    };
    const ran: number[] = [];
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("hang", (task) => void ran.push(task.id));
    ahead = new WorkerEngine({
      db,
      workerId: "ahead",
      handlerRegistry: registry,
      leaseMs: LEASE_MS,
      reapIntervalMs: 100,
      reapGraceMs: REAP_GRACE_MS,
      clock: { now: () => Date.now() + STEP_MS },
    });
    loop = ahead.runLoop();
    // Until its looks, ten a second, span twice its grace from the first that found all eight expired by its
    // clock: a lease seen expired for its grace without being renewed would have been taken by then. Counted
    // in looks, not in time slept, so that a slow start of the worker does not shorten the watch.
    await waitFor(
      () => {
        const first = looks.find((look) => look.expired === 8);
        return first !== undefined && looks.at(-1)!.at - first.at >= 2 * REAP_GRACE_MS;
      },
      60_000,
      "the other worker's reaper to look at the expired leases for twice its grace",
    );
    for (const task of tasks) {
      const now = await queue.get(task.id);
      assert.equal(now?.status, "running", `task ${task.id} was taken from a live worker`);
      assert.equal(now?.lockedBy, "holder");
    }
    assert.deepEqual(ran, []);

    holder.kill("SIGKILL");
    await holderExit;
    await waitFor(() => ran.length === 8, 30_000, "the dead worker's tasks to be taken and run");
    await waitFor(async () => (await queue.stats()).counts.completed === 8, 10_000, "all eight recorded");
  } finally {
    holder.kill("SIGKILL");
    await holderExit;
    await ahead?.stop({ graceMs: 0 });
    await loop;
    await db.close();
    remove();
  }
});

test("a step of the wall clock does not take a live worker's leases, nor stop its reaper", async () => {
  await withDb(async (db) => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const queue = new Queue(db, { clock });
    const dead = await queue.enqueue("t");
    const live = await queue.enqueue("t");
    const claim = (workerId: string) =>
      storeOf(db).taskClaim({ workerId, limit: 1, leaseMs: LEASE_MS, now: clock.now(), strategy: "fifo" });
    const [deadLease] = await claim("dead");
    const [liveLease] = await claim("live");
    assert.deepEqual([deadLease.task.id, liveLease.task.id], [dead.id, live.id]);
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("t", () => {});
    const reaper = new WorkerEngine({
      db,
      workerId: "reaper",
      handlerRegistry: registry,
      clock,
      leaseMs: LEASE_MS,
      reapIntervalMs: 1000,
      reapGraceMs: 2000,
    });

    // Every clock steps 45 s forward: both leases look expired at once.
    clock.set(clock.now() + STEP_MS);
    assert.equal(await reaper.claimAndProcess(), false, "seen expired, not taken yet");
    // Time passes; the live worker renews its lease, the dead one does not.
    clock.advance(1500);
    assert.equal(
      await storeOf(db).taskExtendLease(
        { id: live.id, leaseToken: liveLease.leaseToken },
        clock.now() + LEASE_MS,
        clock.now(),
      ),
      true,
    );
    clock.advance(1500);
    assert.equal(await reaper.claimAndProcess(), true, "the dead worker's task, after the grace");
    assert.equal((await queue.get(dead.id))?.status, "completed");
    assert.equal((await queue.get(live.id))?.lockedBy, "live");

    // A step back by ten minutes does not stop the reaper: it looks by elapsed time, not the wall clock.
    clock.set(clock.now() - 600_000);
    const later = await queue.enqueue("t");
    await claim("dead-2");
    clock.advance(LEASE_MS + 1);
    assert.equal(await reaper.claimAndProcess(), false);
    clock.advance(2000);
    assert.equal(await reaper.claimAndProcess(), true);
    assert.equal((await queue.get(later.id))?.status, "completed");
  });
});
