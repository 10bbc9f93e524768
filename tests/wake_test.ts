/**
 * An idle worker learns of tasks that another process enqueues by watching the database file's write-ahead
 * log, not by polling; on an in-memory database, where there is no log to watch, it runs as before. Woken by
 * any commit to the file, it looks before it claims, so as not to take the write lock for nothing; woken by
 * PostgreSQL's notification that tasks were queued, it claims at once.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Queue, QueueDatabase, type Task, WorkerEngine } from "../mod.ts";
import type { LeasedTask } from "../src/store/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { deferred, REPO, waitFor, withDb } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";

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

/**
 * The worker's looks (`taskPending`) and claims on `db`'s store, in the order they were called, and
 * `leased` when a claim answered with tasks.
 */
function looksAndClaims(db: QueueDatabase): string[] {
  const calls: string[] = [];
  const store = storeOf(db) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = (name: string) => store[name]!.bind(storeOf(db));
  const taskPending = original("taskPending");
  store.taskPending = (...args) => {
    calls.push("look");
    return taskPending(...args);
  };
  // A store's taskRecordAndClaim may call its taskClaim: one claim, counted once.
  let claiming = 0;
  for (const name of ["taskClaim", "taskRecordAndClaim"]) {
    const claim = original(name);
    store[name] = async (...args) => {
      if (claiming > 0) return await claim(...args);
      claiming++;
      try {
        calls.push("claim");
        const result = await claim(...args) as LeasedTask[] | { leased: LeasedTask[] };
        if ((Array.isArray(result) ? result : result.leased).length > 0) calls.push("leased");
        return result;
      } finally {
        claiming--;
      }
    };
  }
  return calls;
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

test("an idle worker woken by a commit to the file that queues nothing it runs looks, and does not claim", async () => {
  await withDb(async (db, path) => {
    const calls = looksAndClaims(db);
    const idle = firstEmptyClaim(db);
    const ran: Task[] = [];
    const worker = new WorkerEngine({ db, workerId: "w1", pollIntervalMs: POLL_MS, types: ["mine"] });
    const loop = worker.runLoop({ taskHandler: (task) => void ran.push(task) });
    try {
      await Promise.race([idle, loop]);
      calls.length = 0;
      await enqueueFromAnotherProcess(path, "theirs", {});
      const mine = await enqueueFromAnotherProcess(path, "mine", {});
      await waitFor(() => ran.length > 0, RUN_DEADLINE_MS, "the worker to run its task");
      assert.equal(ran[0]!.id, mine.id);
    } finally {
      await worker.stop();
    }
    await loop;
    const beforeLeased = calls.slice(0, calls.indexOf("leased"));
    assert.ok(beforeLeased.includes("look"), `it looked: ${calls.join(", ")}`);
    assert.deepEqual(
      beforeLeased.filter((call) => call === "claim"),
      ["claim"],
      `only the claim that took its task took the write lock: ${calls.join(", ")}`,
    );
  });
});

test(
  "on PostgreSQL, an idle worker woken by the notification that a task was queued claims it without looking first",
  { skip: postgresUnavailable() },
  async () => {
    const database = await freshDatabase();
    const db = new QueueDatabase(database.url);
    // Another handle: its enqueue wakes the worker by the server's notification alone.
    const other = new QueueDatabase(database.url);
    try {
      await db.initializeSchema();
      const calls = looksAndClaims(db);
      const idle = firstEmptyClaim(db);
      const ran: Task[] = [];
      const worker = new WorkerEngine({ db, workerId: "w1", pollIntervalMs: POLL_MS });
      const loop = worker.runLoop({ taskHandler: (task) => void ran.push(task) });
      try {
        await Promise.race([idle, loop]);
        calls.length = 0;
        // Sent before the worker's LISTEN is in force, it goes unheard, and the call the store makes once the
        // LISTEN takes effect wakes the worker instead: either way it is told that tasks were queued.
        const task = await new Queue(other).enqueue("wake", {});
        await waitFor(() => ran.length > 0, RUN_DEADLINE_MS, "the worker to run the task");
        assert.equal(ran[0]!.id, task.id);
      } finally {
        await worker.stop();
      }
      assert.equal((await loop).completed, 1);
      assert.ok(calls.includes("leased"), calls.join(", "));
      assert.deepEqual(
        calls.slice(0, calls.indexOf("leased")).filter((call) => call === "look"),
        [],
        calls.join(", "),
      );
    } finally {
      await other.close();
      await db.close();
      await database.drop();
    }
  },
);
