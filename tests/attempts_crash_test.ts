/**
 * An attempt counts only for a task whose handler started: tasks claimed ahead of free slots go back with
 * their attempts untouched when their worker is SIGKILLed, and a task that kills its worker still runs out
 * of attempts. Real worker processes, real SIGKILLs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase, type Task } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";

const fixture = new URL("./fixtures/attempts_worker.ts", import.meta.url).pathname;
/** Far in the future: every lease has expired by then. */
const LATER = Date.now() + 24 * 3_600_000;

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function startWorker(
  dbPath: string,
  log: string,
  id: string,
  concurrency: number,
  leaseMs = 60_000,
): WorkerProcess {
  const args = ["run", "-A", fixture, dbPath, log, id, String(concurrency), String(leaseMs)];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  return {
    child,
    exited: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))),
    stderr: () => stderr,
  };
}

/** The starts a worker logged, as `[type, id]`. */
function starts(log: string): [string, number][] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) => {
    const [type, id] = line.split(" ");
    return [type, Number(id)];
  });
}

test("a SIGKILLed worker's claimed-ahead tasks go back with their attempts untouched; only started ones fail", async () => {
  const { dir, remove } = makeTempDir("prismq-attempts-");
  const dbPath = join(dir, "queue.db");
  const log = join(dir, "w.log");
  const db = new QueueDatabase(dbPath);
  let worker: WorkerProcess | undefined;
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    // Quick tasks first, so that the worker learns its handlers are quick and claims far ahead; then tasks
    // that hang, which fill its 8 slots while the rest of them wait claimed ahead.
    await queue.enqueueMany(Array.from({ length: 300 }, () => ({ type: "quick", priority: 0 })));
    const hanging = await queue.enqueueMany(
      Array.from({ length: 100 }, () => ({ type: "hang", priority: 1, maxAttempts: 1 })),
    );
    worker = startWorker(dbPath, log, "w", 8);
    await waitFor(
      async () => {
        const counts = (await queue.stats()).counts;
        return counts.completed === 300 && starts(log).filter(([type]) => type === "hang").length === 8;
      },
      30_000,
      "300 quick tasks completed and 8 hanging ones started",
    );
    // A start is written with the worker's next grouped write, while its handler runs: wait until all 8
    // are on disk, since a task whose start was never written goes back untouched, as the design says.
    await waitFor(
      async () =>
        (await queue.list({ status: "running", limit: 1000 })).filter((task) => task.attempts === 1)
          .length === 8,
      30_000,
      "the 8 hanging tasks' starts to be written",
    );
    const claimedAhead = (await queue.list({ status: "running", limit: 1000 })).length;
    assert.ok(claimedAhead > 8, `the worker claimed only ${claimedAhead} tasks: nothing was claimed ahead`);
    worker.child.kill("SIGKILL");
    await worker.exited;

    await storeOf(db).taskReapExpired(LATER);
    const started = new Set(starts(log).filter(([type]) => type === "hang").map(([, id]) => id));
    assert.equal(started.size, 8);
    for (const task of hanging) {
      const after = (await queue.get(task.id))!;
      if (started.has(task.id)) {
        assert.equal(after.status, "failed", `task ${task.id} started, so its one attempt is spent`);
        assert.equal(after.attempts, 1);
        assert.match(after.errorMessage ?? "", /lease expired/);
      } else {
        assert.equal(after.status, "queued", `task ${task.id} never started`);
        assert.equal(after.attempts, 0, `task ${task.id} never started, so no attempt counts`);
      }
    }
  } finally {
    worker?.child.kill("SIGKILL");
    await worker?.exited;
    await db.close();
    remove();
  }
});

test("a task that kills its worker every time it starts kills at most maxAttempts + 1 workers", async () => {
  const { dir, remove } = makeTempDir("prismq-attempts-");
  const dbPath = join(dir, "queue.db");
  const db = new QueueDatabase(dbPath);
  const maxAttempts = 3;
  const CONCURRENCY = 4;
  const LEASE_MS = 300;
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    const deaths: string[] = [];
    let poison: Task = await queue.enqueue("die", {}, { maxAttempts, priority: 1 });
    // Each round, quick tasks ahead of it make the worker claim it ahead of its free slots, so that it starts
    // in the moment after its start is noted and before it is written: the one death it may go uncharged
    // for, which must not come again after a recorded start (only an outcome ends the need to write starts
    // first). A worker's first claim takes one task per slot and none ahead; its second claims far ahead,
    // and with twice as many quick tasks as slots it reaches the poison with quick tasks still before it.
    for (let round = 0; poison.status !== "failed"; round++) {
      assert.ok(
        round <= maxAttempts,
        `still ${poison.status} after ${round} deaths (${deaths.join("; ")}): a task that kills its worker ` +
          `may go uncharged for one death at most`,
      );
      await queue.enqueueMany(
        Array.from({ length: 2 * CONCURRENCY }, () => ({ type: "quick", priority: 0 })),
      );
      const log = join(dir, `w${round}.log`);
      const worker = startWorker(dbPath, log, `w${round}`, CONCURRENCY, LEASE_MS);
      const exit = await worker.exited;
      assert.equal(exit.signal, "SIGKILL", `worker ${round} was meant to die: ${worker.stderr()}`);
      assert.ok(starts(log).some(([type]) => type === "die"), `worker ${round} died without starting it`);
      // Reaped as any worker would once the lease has expired, so that it is runnable again now.
      await waitFor(
        async () => {
          await storeOf(db).taskReapExpired(Date.now());
          return (await queue.get(poison.id))!.status !== "running";
        },
        30_000,
        "the dead worker's lease to expire",
      );
      poison = (await queue.get(poison.id))!;
      deaths.push(`${poison.status} after ${poison.attempts} attempts`);
    }
    assert.equal(poison.attempts, maxAttempts);
    assert.match(poison.errorMessage ?? "", /lease expired/);
  } finally {
    await db.close();
    remove();
  }
});
