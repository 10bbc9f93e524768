/**
 * A busy database never surfaces SQLITE_BUSY to the user: transient busy errors are retried inside the
 * store, and the connection stays usable afterwards.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import {
  DatabaseError,
  type HandlerContext,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
  type WorkerEvent,
} from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import {
  deferred,
  delay,
  holdWriteLock,
  makeTempDir,
  rejectionOf,
  track,
  withDb,
  within,
} from "./_helpers.ts";

function deno(
  script: string,
  args: string[],
): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["run", "-A", new URL(script, import.meta.url).pathname, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  return { child, out: () => out, exit: new Promise((resolve) => child.on("exit", resolve)) };
}

type LockHolder = Awaited<ReturnType<typeof holdWriteLock>>;

/**
 * A migrated database whose writes wait up to `busyTimeoutMs` for a lock, and `takeLock()`, which has another
 * process take the file's write lock until the test calls `release()` on what it returns: the test, not a
 * timer, decides how long the lock is held, so the checks below see it held however slowly either process
 * runs. A lock the test did not let go is let go when `fn` settles.
 */
async function withLockableDb(
  busyTimeoutMs: number,
  fn: (db: QueueDatabase, takeLock: () => Promise<LockHolder>) => Promise<void>,
): Promise<void> {
  await withDb(async (db, path) => {
    let holder: LockHolder | undefined;
    try {
      await fn(db, async () => (holder = await holdWriteLock(path)));
    } finally {
      await holder?.release();
    }
  }, { busyTimeoutMs });
}

// How long a write may keep waiting in these tests before it is taken for hung: far longer than anything
// here should take on a loaded machine, and never a measure of speed.
const HANG_MS = 60_000;

test("a first open of a new file waits while another process holds its write lock, rather than failing at once", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  // Turning a new file to WAL while another process holds its write lock: SQLite's own busy wait gives up
  // at once there (ten processes starting together on a new file sometimes failed so).
  const holder = await holdWriteLock(path);
  const db = new QueueDatabase(path, { busyTimeoutMs: HANG_MS });
  try {
    const opening = db.initializeSchema();
    const settled = track(opening);
    // Still held: an open that failed at once would have settled by now (this can only miss a failure on a
    // slow machine, never invent one).
    await delay(200);
    assert.equal(settled(), false, "the open did not wait for the lock");
    const exited = holder.release();
    await opening;
    assert.equal(await exited, 0, holder.output());
    const task = await new Queue(db).enqueue("a", {});
    assert.equal((await new Queue(db).get(task.id))?.status, "queued");
    const mode = await db.transaction((tx) => tx.execute("PRAGMA journal_mode"));
    assert.deepEqual(mode.rows, [{ journal_mode: "wal" }]);
  } finally {
    await db.close();
    await holder.release();
    remove();
  }
});

test("a write waits out another process's long lock and the connection keeps working after", async () => {
  await withLockableDb(HANG_MS, async (db, takeLock) => {
    const holder = await takeLock();
    const queue = new Queue(db);
    const writing = queue.enqueue("a", {});
    const settled = track(writing);
    await delay(200);
    assert.equal(settled(), false, "the write did not wait for the lock");
    const exited = holder.release();
    const first = await writing;
    assert.equal(await exited, 0, holder.output());
    const second = await queue.enqueue("b", {});
    await db.transaction((tx) => tx.execute("INSERT INTO task_queue (type) VALUES ('c')"));
    assert.deepEqual((await queue.list()).map((t) => t.type).sort(), ["a", "b", "c"]);
    assert.ok(second.id > first.id);
  });
});

test("a write that waits longer than busyTimeoutMs fails clearly, writes nothing, and the next one works", async () => {
  await withLockableDb(100, async (db, takeLock) => {
    // Held until after the write gave up, so that only busyTimeoutMs can have ended its wait.
    const holder = await takeLock();
    const queue = new Queue(db);
    const started = performance.now();
    const writing = queue.enqueue("a", {});
    const settled = track(writing);
    // The wait never blocked this process: the event loop's next turn, asked for once the write had begun,
    // came while the write was still waiting. A wait inside SQLite would hold the thread until it gave up,
    // so that turn could only come after the failure. (A turn, not a timer: on a busy machine a timer may
    // come due only after the write has given up, behind the write's own retries.)
    const interleaved = new Promise<boolean>((resolve) => setImmediate(() => resolve(!settled())));
    await assert.rejects(within(HANG_MS, "the refused write", writing), (error: Error) => {
      assert.match(error.message, /stayed locked by another process for too long/);
      return true;
    });
    const waited = performance.now() - started;
    assert.equal(await interleaved, true, "the event loop turned only once the write had failed");
    assert.ok(waited >= 100, `gave up after ${waited.toFixed(0)} ms, before busyTimeoutMs`);
    assert.equal(await holder.release(), 0, holder.output());
    assert.deepEqual(await queue.list(), [], "the refused write left nothing");
    await queue.enqueue("b", {});
    assert.deepEqual((await queue.list()).map((t) => t.type), ["b"]);
  });
});

test("two handles on one file in one process share a connection instead of deadlocking", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const a = new QueueDatabase(path);
  const b = new QueueDatabase(path);
  try {
    await Promise.all([a.initializeSchema(), b.initializeSchema()]);
    await Promise.all([
      a.transaction(async (tx) => {
        await tx.execute("INSERT INTO task_queue (type) VALUES ('x')");
        await delay(50);
      }),
      new Queue(b).enqueue("y", {}),
    ]);
    await a.close();
    assert.equal((await new Queue(b).list()).length, 2, "b still works after a closed");
  } finally {
    await a.close();
    await b.close();
    remove();
  }
});

test("four processes enqueueing and working one file at full speed see no busy errors", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const perProcess = 600;
  const names = ["p1", "p2", "p3", "p4"];
  try {
    const db = new QueueDatabase(path);
    await db.initializeSchema();
    await db.close();
    const procs = names.map((name) =>
      deno("./fixtures/busy_worker.ts", [
        path,
        name,
        join(dir, `${name}.log`),
        String(perProcess),
        String(4 * perProcess),
      ])
    );
    const codes = await Promise.all(procs.map((p) => p.exit));
    for (const p of procs) assert.doesNotMatch(p.out(), /SQLITE_BUSY|locked|Error/i, p.out());
    assert.deepEqual(codes, [0, 0, 0, 0]);
    const ran = names.flatMap((name) =>
      readFileSync(join(dir, `${name}.log`), "utf8").split("\n").filter(Boolean)
    );
    assert.equal(ran.length, 4 * perProcess);
    assert.equal(new Set(ran).size, 4 * perProcess, "each task ran exactly once");
    const check = new QueueDatabase(path);
    const stats = await new Queue(check).stats();
    await check.close();
    assert.deepEqual(stats.counts, {
      waiting: 0,
      queued: 0,
      running: 0,
      completed: 4 * perProcess,
      failed: 0,
      cancelled: 0,
    });
  } finally {
    remove();
  }
});

/** A handler that runs until its signal aborts, resolving `started` as it begins. */
function untilAborted(started: () => void) {
  return (_task: unknown, ctx: HandlerContext) =>
    new Promise<void>((_, reject) => {
      started();
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
    });
}

const HAND_BACK_FAILED = new RegExp(
  "^Worker 'w' could not hand 1 task back to the queue \\(The database .* stayed locked by another process " +
    "for too long\\..*\\); they go back by themselves when their leases expire, within 60000 ms\\.$",
);

describe("a hand-back at a stop that cannot be written", () => {
  test("ends runLoop with a DatabaseError saying so, and stop() resolves only after it was tried", async () => {
    await withLockableDb(200, async (db, takeLock) => {
      const task = await new Queue(db).enqueue("hang", {});
      const started = deferred();
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("hang", untilAborted(started.resolve));
      const errors: unknown[] = [];
      const onEvent = (event: WorkerEvent) => void (event.type === "error" && errors.push(event.error));
      const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, onEvent });
      const loop = worker.runLoop();
      await started.promise;
      const holder = await takeLock();

      // What had been reported when stop() resolved: the loop ends only after the hand-back was tried.
      const reportedAtStop = await worker.stop({ graceMs: 0 }).then(() => [...errors]);
      const error = await rejectionOf(loop);
      assert.ok(error instanceof DatabaseError, String(error));
      assert.match(error.message, HAND_BACK_FAILED);
      assert.ok(reportedAtStop.includes(error), "stop() resolved before the hand-back failed");

      assert.equal(await holder.release(), 0);
      // Not handed back: still the dead claim's until its lease expires, as the message says.
      const stuck = await new Queue(db).get(task.id);
      assert.equal(stuck?.status, "running");
      assert.equal(stuck?.lockedBy, "w");
      assert.deepEqual(await storeOf(db).taskReapExpired(stuck!.leaseUntil! + 1), { requeued: 1, failed: 0 });
    });
  });

  test("makes stop() reject with that DatabaseError when no loop runs", async () => {
    await withLockableDb(200, async (db, takeLock) => {
      await new Queue(db).enqueue("hang", {});
      const started = deferred();
      const worker = new WorkerEngine({ db, workerId: "w" });
      const processing = worker.claimAndProcess(untilAborted(started.resolve));
      await started.promise;
      const holder = await takeLock();
      const error = await rejectionOf(worker.stop({ graceMs: 0 }));
      assert.ok(error instanceof DatabaseError, String(error));
      assert.match(error.message, HAND_BACK_FAILED);
      assert.equal(await processing, true);
      assert.equal(await holder.release(), 0);
      assert.equal((await new Queue(db).list())[0]?.status, "running");
    });
  });
});
