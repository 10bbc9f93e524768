/**
 * A graceful stop under contention: busy `prismq run` processes on one file, stopped by SIGTERM one at a
 * time while the others keep the write lock busy. Each must hand back or finish every task it claimed
 * before it exits 0, and say nothing on stderr; with `maxAttempts: 1`, no task may fail.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, waitFor, within } from "./_helpers.ts";
import { buildBinary, type Proc, start } from "./_binary.ts";

const WORKERS = 6;
const STOPS = 20;
const TASKS = 60_000;

let binary: Awaited<ReturnType<typeof buildBinary>>;
before(async () => (binary = await buildBinary()));
after(() => binary?.remove());

test(`${STOPS} SIGTERMs to busy workers on one file leave nothing running and fail nothing`, async () => {
  const { dir, remove } = makeTempDir("prismq-shutdown-");
  const dbPath = join(dir, "queue.db");
  const db = new QueueDatabase(dbPath);
  const workers = new Map<string, Proc>();
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    // Quick tasks, so that every worker claims far ahead and has many to hand back; some take a moment.
    for (let i = 0; i < TASKS; i += 10_000) {
      await queue.enqueueMany(Array.from({ length: 10_000 }, (_, j) => ({
        type: "noop",
        payload: { sleepMs: (i + j) % 5 === 0 ? 10 : 0 },
        maxAttempts: 1,
      })));
    }
    let started = 0;
    const launch = () => {
      const id = `w${started++}`;
      const run = start(binary.bin, ["run", "--db", dbPath, "--worker-id", id, "--json", "--grace", "5s"], {
        cwd: dir,
      });
      workers.set(id, run);
      return id;
    };
    for (let i = 0; i < WORKERS; i++) launch();
    const heldBy = async (id: string) =>
      (await queue.list({ status: "running", limit: 100_000 })).filter((t) => t.lockedBy === id).length;

    for (let stop = 0; stop < STOPS; stop++) {
      const [id, run] = [...workers.entries()][stop % workers.size];
      // Stopped while it holds tasks, claimed ahead and running.
      await waitFor(async () => (await heldBy(id)) > 0, 60_000, `${id} to hold tasks`);
      process.kill(run.child.pid!, "SIGTERM");
      const exit = await within(120_000, `${id} after SIGTERM`, run.done);
      workers.delete(id);
      assert.equal(exit.signal, null, `${id} was killed by ${exit.signal}`);
      assert.equal(exit.code, 0, `${id} exited ${exit.code}: ${exit.stderr}`);
      assert.equal(exit.stderr, "", `${id} wrote to stderr`);
      assert.doesNotMatch(exit.stdout, /"event":"error"/, `${id} reported an error`);
      assert.equal(await heldBy(id), 0, `${id} left tasks running after it stopped`);
      if ((await queue.stats()).counts.queued === 0) break;
      launch();
    }
    for (const [id, run] of workers) {
      // A process signalled before it listens for signals would die of it.
      await waitFor(() => run.stdout.includes(" started: "), 60_000, `${id} to start`);
      process.kill(run.child.pid!, "SIGTERM");
      const exit = await within(120_000, `${id} after SIGTERM`, run.done);
      assert.equal(exit.code, 0, `${id}: ${exit.stderr}`);
    }
    workers.clear();
    const counts = (await queue.stats()).counts;
    assert.equal(counts.running, 0, JSON.stringify(counts));
    assert.equal(
      counts.failed,
      0,
      `tasks failed that a stop should have handed back: ${JSON.stringify(counts)}`,
    );
    assert.equal(counts.completed + counts.queued, TASKS);
  } finally {
    for (const run of workers.values()) run.child.kill("SIGKILL");
    await Promise.all([...workers.values()].map((run) => run.done.catch(() => {})));
    await db.close();
    remove();
  }
});
