/**
 * An idle worker learns of tasks that another process enqueues by watching the database file's write-ahead
 * log, not by polling; on an in-memory database, where there is no log to watch, it runs as before.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Queue, QueueDatabase, type Task, WorkerEngine } from "../mod.ts";
import type { LeasedTask } from "../src/store/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { deferred, REPO, waitFor, withDb } from "./_helpers.ts";

const ENQUEUE_ONE = new URL("./fixtures/enqueue_one.ts", import.meta.url).pathname;
/** Far longer than any test here may take: a task run before it was up was not found by polling. */
const POLL_MS = 600_000;
/** How long the test waits for the task to run: a hang guard, and far short of the worker's next poll. */
const RUN_DEADLINE_MS = 60_000;

/**
 * Resolves once the worker has tried to claim and found nothing: it is idle from then on. Watches each of
 * the store's methods that claim tasks.
 */
function firstEmptyClaim(db: QueueDatabase): Promise<void> {
  const empty = deferred();
  const store = storeOf(db) as unknown as Record<string, unknown>;
  for (const name of ["taskClaim", "taskRecordAndClaim"]) {
    const original = store[name];
    if (typeof original !== "function") continue;
    store[name] = async (...args: unknown[]) => {
      const result: LeasedTask[] | { leased: LeasedTask[] } = await original.apply(storeOf(db), args);
      if ((Array.isArray(result) ? result : result.leased).length === 0) empty.resolve();
      return result;
    };
  }
  return empty.promise;
}

/** Enqueues one task from a separate Deno process and returns it once that process has exited. */
async function enqueueFromAnotherProcess(dbPath: string, type: string, payload: unknown): Promise<Task> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ENQUEUE_ONE, dbPath, type, JSON.stringify(payload)],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(code, 0, `the enqueuing process failed: ${decoder.decode(stderr)}`);
  return JSON.parse(decoder.decode(stdout));
}

/**
 * Starts a worker that polls every ten minutes, waits until it is idle, has `enqueue` add a task, and expects
 * the worker to run it long before its next poll; then stops the worker and checks the task was recorded as
 * completed.
 */
async function idleWorkerRuns(db: QueueDatabase, enqueue: () => Promise<Task>): Promise<Task> {
  const ran: Task[] = [];
  const idle = firstEmptyClaim(db);
  const worker = new WorkerEngine({ db, workerId: "w1", pollIntervalMs: POLL_MS });
  const loop = worker.runLoop({ taskHandler: (task) => void ran.push(task) });
  let task: Task;
  try {
    // The loop ending (or failing) before it is idle fails the test rather than hanging it.
    await Promise.race([idle, loop]);
    task = await enqueue();
    await waitFor(() => ran.length > 0, RUN_DEADLINE_MS, "the worker to run the task");
    assert.equal(ran.length, 1);
    assert.equal(ran[0].id, task.id);
  } finally {
    await worker.stop();
  }
  const summary = await loop;
  assert.equal(summary.completed, 1);
  assert.equal((await storeOf(db).taskGet(task.id))?.status, "completed");
  return ran[0];
}

test("an idle worker runs a task enqueued by another process long before its next poll, ten minutes away", async () => {
  await withDb(async (db, path) => {
    const ran = await idleWorkerRuns(db, () => enqueueFromAnotherProcess(path, "wake", { from: "child" }));
    assert.deepEqual(ran.payload, { from: "child" });
  });
});

test("on an in-memory database, where no log can be watched, the worker still runs what this process enqueues", async () => {
  const db = new QueueDatabase(":memory:");
  try {
    await db.initializeSchema();
    assert.equal(storeOf(db).watchCommits, undefined, "no commit notifications in memory");
    await idleWorkerRuns(db, () => new Queue(db).enqueue("wake", { from: "here" }));
  } finally {
    await db.close();
  }
});

test("a task this process enqueues while the worker is between an empty claim and its sleep still wakes it", async () => {
  // In memory, so that no watched log wakes the worker later: only the enqueue's own wake-up can.
  const db = new QueueDatabase(":memory:");
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    const enqueued = deferred<Task>();
    let enqueuing = false;
    const store = storeOf(db) as unknown as Record<string, unknown>;
    for (const name of ["taskClaim", "taskRecordAndClaim"]) {
      const original = store[name] as (
        ...args: unknown[]
      ) => Promise<LeasedTask[] | { leased: LeasedTask[] }>;
      store[name] = async (...args: unknown[]) => {
        const result = await original.apply(storeOf(db), args);
        const leased = Array.isArray(result) ? result : result.leased;
        // The claim has answered and the worker has not gone to sleep yet: the wake-up comes now.
        if (leased.length === 0 && !enqueuing) {
          enqueuing = true;
          enqueued.resolve(await queue.enqueue("wake", {}));
        }
        return result;
      };
    }
    const ran: Task[] = [];
    const worker = new WorkerEngine({ db, workerId: "w1", pollIntervalMs: POLL_MS });
    const loop = worker.runLoop({ taskHandler: (task) => void ran.push(task) });
    try {
      const task = await Promise.race([enqueued.promise, loop.then(() => undefined)]);
      assert.ok(task, "the loop ended before it claimed");
      await waitFor(() => ran.length > 0, RUN_DEADLINE_MS, "the worker to run the task before its next poll");
      assert.equal(ran[0]!.id, task.id);
    } finally {
      await worker.stop();
    }
    assert.equal((await loop).completed, 1);
  } finally {
    await db.close();
  }
});
