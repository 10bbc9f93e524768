/**
 * A busy database never surfaces SQLITE_BUSY to the user: transient busy errors are retried inside the
 * store, and the connection stays usable afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";

function deno(
  script: string,
  args: string[],
): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ["run", "-A", new URL(script, import.meta.url).pathname, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  return { child, out: () => out, exit: new Promise((resolve) => child.on("exit", resolve)) };
}

test("a first open of a new file waits while another process holds its write lock, rather than failing at once", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  // Turning a new file to WAL while another process holds its write lock: SQLite's own busy wait gives up
  // at once there (ten processes starting together on a new file sometimes failed so).
  const holder = deno("./fixtures/hold_lock.ts", [path, "800"]);
  await waitFor(() => holder.out().includes("locked"), 20_000, "the lock holder");
  const db = new QueueDatabase(path, { busyTimeoutMs: 20_000 });
  try {
    await db.initializeSchema();
    assert.equal(await holder.exit, 0, holder.out());
    const task = await new Queue(db).enqueue("a", {});
    assert.equal((await new Queue(db).get(task.id))?.status, "queued");
    const mode = await db.transaction((tx) => tx.execute("PRAGMA journal_mode"));
    assert.deepEqual(mode.rows, [{ journal_mode: "wal" }]);
  } finally {
    db.close();
    holder.child.kill();
    remove();
  }
});

test("a write waits out another process's long lock and the connection keeps working after", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path, { busyTimeoutMs: 5000 });
  try {
    await db.initializeSchema();
    const holder = deno("./fixtures/hold_lock.ts", [path, "800"]);
    await waitFor(() => holder.out().includes("locked"), 20_000, "the lock holder");
    const queue = new Queue(db);
    const first = await queue.enqueue("a", {});
    assert.equal(await holder.exit, 0, holder.out());
    const second = await queue.enqueue("b", {});
    await db.transaction((tx) => tx.execute("INSERT INTO task_queue (type) VALUES ('c')"));
    assert.deepEqual((await queue.list()).map((t) => t.type).sort(), ["a", "b", "c"]);
    assert.ok(second.id > first.id);
  } finally {
    db.close();
    remove();
  }
});

test("a write that waits longer than busyTimeoutMs fails clearly, writes nothing, and the next one works", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path, { busyTimeoutMs: 100 });
  try {
    await db.initializeSchema();
    const holder = deno("./fixtures/hold_lock.ts", [path, "1500"]);
    await waitFor(() => holder.out().includes("locked"), 20_000, "the lock holder");
    const queue = new Queue(db);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const started = performance.now();
    await assert.rejects(queue.enqueue("a", {}), (error: Error) => {
      assert.match(error.message, /stayed locked by another process for too long/);
      return true;
    });
    clearInterval(ticker);
    const waited = performance.now() - started;
    assert.ok(waited >= 100 && waited < 1400, `gave up after ${waited.toFixed(0)} ms`);
    // The wait never blocked this process: its timers kept firing.
    assert.ok(ticks >= 5, `only ${ticks} timer ticks while waiting`);
    assert.equal(await holder.exit, 0, holder.out());
    assert.deepEqual(await queue.list(), [], "the refused write left nothing");
    await queue.enqueue("b", {});
    assert.deepEqual((await queue.list()).map((t) => t.type), ["b"]);
  } finally {
    db.close();
    remove();
  }
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
        await new Promise((resolve) => setTimeout(resolve, 50));
      }),
      new Queue(b).enqueue("y", {}),
    ]);
    a.close();
    assert.equal((await new Queue(b).list()).length, 2, "b still works after a closed");
  } finally {
    a.close();
    b.close();
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
    db.close();
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
    check.close();
    assert.deepEqual(stats.counts, {
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
