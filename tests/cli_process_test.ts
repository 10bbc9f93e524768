/**
 * The command line as a person meets it, in real processes stopped by real signals: `prismq` run from
 * source (`scripts/prismq.ts`), a real database file, SIGINT and SIGTERM sent with `process.kill`.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import { type Proc, start } from "./_binary.ts";

const PRISMQ = new URL("../scripts/prismq.ts", import.meta.url).pathname;

/** `prismq <args>` from source, in `cwd`, with this process's environment. */
function prismq(cwd: string, args: string[], stdin?: string, stdinOpen = false): Proc {
  const env = { ...process.env, NO_COLOR: "1" } as Record<string, string>;
  return start(process.execPath, ["run", "-A", PRISMQ, ...args], { cwd, env, stdin, stdinOpen });
}

/** A fresh database file, migrated, with a queue on it; closed and removed after `fn`. */
async function withQueue(fn: (queue: Queue, path: string, dir: string) => Promise<void>): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-cli-process-");
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
    await fn(new Queue(db), path, dir);
  } finally {
    await db.close();
    remove();
  }
}

/** Ends `proc` if a failed assertion left it running. */
async function reap(proc: Proc): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    process.kill(proc.child.pid!, "SIGKILL");
  }
  await proc.done.catch(() => {});
}

test("Ctrl-C on a busy worker prints one line for every task it hands back, not one per task", async () => {
  await withQueue(async (queue, path, dir) => {
    const TASKS = 60;
    await queue.enqueueMany(
      Array.from({ length: TASKS }, () => ({ type: "noop", payload: { sleepMs: 60_000 } })),
    );
    const run = prismq(dir, [
      "run",
      "--db",
      path,
      "--concurrency",
      "40",
      "--grace",
      "0s",
      "--worker-id",
      "busy",
    ]);
    try {
      await waitFor(
        async () => (await queue.stats()).counts.running === 40,
        30_000,
        "the worker to run 40 tasks",
      );
      process.kill(run.child.pid!, "SIGINT");
      const exit = await run.done;
      assert.equal(exit.signal, null, "the worker handled SIGINT");
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(exit.stderr, "");
      const handedBack = exit.stdout.split("\n").filter((line) => line.includes("handed back"));
      assert.equal(handedBack.length, 2, `one line and the summary, got:\n${exit.stdout}`);
      assert.match(handedBack[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z handed back 40 tasks to the queue$/);
      assert.match(handedBack[1], /^Worker busy stopped: .* 40 handed back\.$/);
      assert.match(exit.stdout, /SIGINT: finishing running tasks/);
      const counts = (await queue.stats()).counts;
      assert.equal(counts.queued, TASKS);
      assert.equal(counts.running, 0);
    } finally {
      await reap(run);
    }
  });
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  test(`${signal} stops enqueue --ndjson from a pipe, saying truly which lines went in and where to resume`, async () => {
    await withQueue(async (queue, path, dir) => {
      // Two whole batches of 10,000 tasks, one bad line among them, and part of a third batch; the pipe
      // stays open, so that the third is never complete and the load is still reading when signalled.
      const LINES = 20_500;
      const BAD = 78;
      const lines = Array.from(
        { length: LINES },
        (_, i) => i + 1 === BAD ? "{not json" : JSON.stringify({ type: "noop", payload: { sleepMs: i + 1 } }),
      );
      const load = prismq(dir, ["enqueue", "--ndjson", "-", "--db", path], lines.join("\n") + "\n", true);
      try {
        await waitFor(
          async () => (await queue.stats()).counts.queued === 20_000,
          60_000,
          "two batches to be written",
        );
        process.kill(load.child.pid!, signal);
        // The pipe ends only once the stop is said: an end of input first would finish the load instead.
        const ended = () => load.child.exitCode !== null || load.child.signalCode !== null;
        await waitFor(() => load.stderr.includes("stopped") || ended(), 60_000, "the load to say it stopped");
        load.child.stdin!.end();
        const exit = await load.done;
        assert.equal(exit.signal, null, `the load handled ${signal}`);
        assert.equal(exit.code, 1, exit.stderr);
        assert.equal(exit.stdout, "");
        const [bad, stopped, ...rest] = exit.stderr.split("\n");
        assert.match(bad, /^line 78: invalid JSON/);
        assert.equal(
          stopped,
          `prismq enqueue: ${signal}: stopped. Lines 1 to 20,001 were written (20,000 tasks); nothing from ` +
            `line 20,002 on was. Resume from line 20,002.`,
        );
        assert.deepEqual(rest, [""]);
        // What the database holds is exactly lines 1 to 20,001 but the bad one.
        const stored = (await queue.list({ limit: LINES })).map((task) =>
          (task.payload as { sleepMs: number }).sleepMs
        );
        const expected = Array.from({ length: 20_001 }, (_, i) => i + 1).filter((n) => n !== BAD);
        assert.deepEqual(stored.sort((a, b) => a - b), expected);
      } finally {
        await reap(load);
      }
    });
  });
}
