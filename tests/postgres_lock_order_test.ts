/**
 * PostgreSQL: a worker's writes of many tasks lock them by ascending id, whatever order it gives them in,
 * so that two such writes (an outcome write and a heartbeat, or two workers' writes) rarely wait on each
 * other in a circle (a single UPDATE locks in the order of its sorted arrays only while the planner drives
 * the join from them, as it does for these sizes; a deadlock left is retried). Each test holds one task's row lock in a transaction of its own, starts a write that
 * must wait for it, and looks, without waiting, at which of the write's other tasks it has locked while it
 * waits: those with smaller ids, and no others. The tasks are given highest id first, and stored in about
 * that order too.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres/mod.ts";
import type { Fence, LeasedTask } from "../src/store/store.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();
const NOW = 1_700_000_000_000;
const TASK = newTask({ runAfter: 0 });

const fenceOf = (leased: LeasedTask): Fence => ({ id: leased.task.id, leaseToken: leased.leaseToken });

/** Tasks claimed by the tests' worker. */
const TASKS = 40;

/**
 * A migrated store with {@link TASKS} tasks claimed by one worker, the first `started` of them started,
 * sorted by id.
 */
async function withClaimed(
  started: number,
  fn: (store: PostgresStore, claimed: LeasedTask[], app: postgres.Sql) => Promise<void>,
): Promise<void> {
  const database = await freshDatabase();
  const store = openPostgresStore(database.url, { maxConnections: 4 });
  const app = postgres(database.url, { max: 3, onnotice: false });
  try {
    await store.migrate(NOW);
    await store.taskInsertMany(Array.from({ length: TASKS }, () => TASK), NOW);
    const claimed = await store.taskClaim({
      workerId: "w",
      limit: TASKS,
      start: started,
      leaseMs: 60_000,
      now: NOW,
      strategy: "fifo",
    });
    assert.equal(claimed.length, TASKS);
    claimed.sort((a, b) => a.task.id - b.task.id);
    // Rows written again from the highest id down: stored in about that order now, so that a plan that reads
    // the table in storage order (the planner's choice for one this small) does not meet them by id either.
    for (const { task } of claimed.toReversed()) {
      await app.unsafe("UPDATE task_queue SET updated_at = updated_at + 1 WHERE id = $1", [task.id]);
    }
    await fn(store, claimed, app);
  } finally {
    await app.end();
    await store.close();
    await database.drop();
  }
}

/** Whether another transaction holds task `id`'s row lock: a lock with NOWAIT fails (55P03) at once. */
async function isLocked(app: postgres.Sql, id: number): Promise<boolean> {
  try {
    await app.unsafe("SELECT id FROM task_queue WHERE id = $1 FOR NO KEY UPDATE NOWAIT", [id]);
    return false;
  } catch (error) {
    if ((error as { code?: string }).code === "55P03") return true;
    throw error;
  }
}

/** Resolves once some session of this database waits for a row lock (polling, for at most 10 s). */
async function someoneWaits(app: postgres.Sql): Promise<void> {
  for (let tries = 0; tries < 1000; tries++) {
    const [row] = await app.unsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (row!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("no session waited for the row lock within 10 s");
}

/**
 * Holds task `held`'s row lock while `write` runs; once the write waits for it, reports which of `ids` the
 * write has locked, then lets it finish.
 */
async function lockedWhileWaiting(
  app: postgres.Sql,
  held: number,
  ids: number[],
  write: () => Promise<unknown>,
): Promise<number[]> {
  let written: Promise<unknown> | undefined;
  const locked: number[] = [];
  await app.begin(async (tx) => {
    await tx.unsafe("SELECT id FROM task_queue WHERE id = $1 FOR NO KEY UPDATE", [held]);
    written = write();
    await someoneWaits(app);
    for (const id of ids) if (await isLocked(app, id)) locked.push(id);
  });
  await written;
  return locked;
}

test("grouped outcomes lock their tasks by ascending id, whatever their order", { skip }, async () => {
  await withClaimed(TASKS, async (store, claimed, app) => {
    // Given highest id first; one in the middle is held elsewhere.
    const finishes = claimed.toReversed().map((leased) => ({
      ...fenceOf(leased),
      status: "completed" as const,
    }));
    const ids = claimed.map((leased) => leased.task.id);
    const held = ids[TASKS / 2]!;
    const locked = await lockedWhileWaiting(
      app,
      held,
      ids.filter((id) => id !== held),
      () => store.taskRecord({ starts: [], finishes }, NOW + 1),
    );
    assert.deepEqual(locked, ids.slice(0, TASKS / 2), "the tasks below the held one are locked, no others");
    assert.equal((await store.taskGet(ids.at(-1)!))?.status, "completed");
  });
});

test("a write of starts and outcomes locks all its tasks by ascending id before its first update", {
  skip,
}, async () => {
  // a and b started with the claim; c was claimed ahead. Its start is written in the statement before the
  // outcomes, so without a lock of all of them first it would be locked before a is waited for.
  await withClaimed(2, async (store, [a, _b, c], app) => {
    const locked = await lockedWhileWaiting(
      app,
      a!.task.id,
      [c!.task.id],
      () =>
        store.taskRecord({
          starts: [{ ...fenceOf(c!), at: NOW + 1 }],
          finishes: [{ ...fenceOf(a!), status: "completed" }],
        }, NOW + 2),
    );
    assert.deepEqual(locked, [], "nothing above the held task is locked while the write waits");
  });
});

test("a heartbeat locks its tasks by ascending id, as outcome writes do", { skip }, async () => {
  await withClaimed(TASKS, async (store, claimed, app) => {
    const ids = claimed.map((leased) => leased.task.id);
    const held = ids[TASKS / 2]!;
    const locked = await lockedWhileWaiting(
      app,
      held,
      ids.filter((id) => id !== held),
      () => store.workerHeartbeat(null, claimed.toReversed().map(fenceOf), NOW + 120_000),
    );
    assert.deepEqual(locked, ids.slice(0, TASKS / 2), "the tasks below the held one are locked, no others");
  });
});
