/**
 * The fleet's maintenance (reaping expired leases) is led by one worker at a time on PostgreSQL: only the
 * leader looks for expired leases; a leader that stops resigns and another takes over at its next bid, and
 * reaps a dead worker's task. On a SQLite file every worker reaps, as before. The worker processes of
 * tests/postgres_fault_test.ts show a leader killed with SIGKILL replaced once its lease expires.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import postgres from "postgres";
import { QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";

const skip = postgresUnavailable();
const GUARD_MS = 30_000;

/** Counts the calls of `method` on `db`'s store. */
function countCalls(db: QueueDatabase, method: "taskExpiredLeases" | "leaderElect"): { calls: number } {
  const store = storeOf(db) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const counter = { calls: 0 };
  const original = store[method]!.bind(store);
  store[method] = (...args: unknown[]) => {
    counter.calls++;
    return original(...args);
  };
  return counter;
}

function worker(db: QueueDatabase, workerId: string): WorkerEngine {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("work", () => {});
  return new WorkerEngine({
    db,
    workerId,
    handlerRegistry: registry,
    pollIntervalMs: 20,
    reapIntervalMs: 50,
    reapGraceMs: 100,
    leaderLeaseMs: 600,
  });
}

test(
  "one worker at a time leads the maintenance: only it looks for expired leases; when it stops, another takes over and reaps a dead worker's task",
  {
    skip,
  },
  async () => {
    const database = await freshDatabase();
    const app = postgres(database.url, { max: 1, onnotice: false });
    const dbs = [new QueueDatabase(database.url), new QueueDatabase(database.url)];
    try {
      for (const db of dbs) await db.initializeSchema();
      const leader = async () => (await app`SELECT leader_id FROM leaders`).map((row) => row.leader_id);
      const [a, b] = [worker(dbs[0]!, "a"), worker(dbs[1]!, "b")];
      const [looksA, looksB] = dbs.map((db) => countCalls(db, "taskExpiredLeases"));
      const bidsB = countCalls(dbs[1]!, "leaderElect");
      const loopA = a.runLoop();
      await waitFor(async () => (await leader()).join() === "a", GUARD_MS, "a to lead");
      const loopB = b.runLoop();
      await waitFor(() => bidsB.calls >= 3, GUARD_MS, "three bids by b");
      await waitFor(() => looksA!.calls >= 3, GUARD_MS, "a to look for expired leases");
      assert.deepEqual(await leader(), ["a"]);
      assert.equal(looksB!.calls, 0, "b, not leading, never looked for expired leases");

      await a.stop();
      await loopA;
      await waitFor(async () => (await leader()).join() === "b", GUARD_MS, "b to take over");
      // A worker that died holding a task: its lease expired ten seconds ago by the server's clock.
      const [{ id }] = await app`
      INSERT INTO task_queue (type, status, attempts, started_at, locked_by, lease_token, lease_until)
      VALUES ('work', 'running', 1, 0, 'dead', 'dead-token',
        (extract(epoch from clock_timestamp()) * 1000)::bigint - 10000)
      RETURNING id`;
      await waitFor(
        async () => (await app`SELECT status FROM task_queue WHERE id = ${id}`)[0]!.status === "completed",
        GUARD_MS,
        "the dead worker's task to be reaped and run",
      );
      assert.ok(looksB!.calls > 0);
      const [task] = await app`SELECT attempts::int, locked_by FROM task_queue WHERE id = ${id}`;
      assert.deepEqual({ ...task }, { attempts: 2, locked_by: "b" });
      await b.stop();
      await loopB;
      assert.deepEqual(await leader(), [], "b resigned as it stopped");
    } finally {
      for (const db of dbs) await db.close();
      await app.end();
      await database.drop();
    }
  },
);

test("on a SQLite file every worker looks for expired leases, as before", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const dbs = [new QueueDatabase(path), new QueueDatabase(path)];
  try {
    for (const db of dbs) await db.initializeSchema();
    const looks = dbs.map((db) => countCalls(db, "taskExpiredLeases"));
    const workers = dbs.map((db, i) => worker(db, `w${i}`));
    const loops = workers.map((w) => w.runLoop());
    await waitFor(() => looks.every((look) => look.calls >= 2), GUARD_MS, "both to look");
    for (const w of workers) await w.stop();
    await Promise.all(loops);
  } finally {
    for (const db of dbs) await db.close();
    remove();
  }
});
