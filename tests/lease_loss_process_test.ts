/**
 * A worker frozen with SIGSTOP past its lease loses the task to another worker, and when resumed with
 * SIGCONT it cannot overwrite the other worker's result: real processes, real signals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { delay, makeTempDir, waitFor } from "./_helpers.ts";

const prismq = new URL("../scripts/prismq.ts", import.meta.url).pathname;

function worker(
  db: string,
  id: string,
): { child: ChildProcess; events: () => Record<string, unknown>[]; exit: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      "run",
      "-A",
      prismq,
      "run",
      "--db",
      db,
      "--worker-id",
      id,
      "--lease",
      "1s",
      "--concurrency",
      "1",
      "--until-empty",
      "--json",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  const events = () => out.split("\n").filter(Boolean).map((line) => JSON.parse(line));
  return { child, events, exit: new Promise((resolve) => child.on("exit", resolve)) };
}

test("a worker frozen past its lease loses the task and cannot overwrite the result when it resumes", async () => {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    const task = await queue.enqueue("noop", { sleepMs: 2500 });

    const a = worker(path, "worker-a");
    await waitFor(() => a.events().some((e) => e.event === "claimed"), 20_000, "worker a to claim");
    // process.kill, not child.kill: Deno's ChildProcess ignores kill() after the first call.
    process.kill(a.child.pid!, "SIGSTOP");
    await delay(1500); // past the 1 s lease, with no heartbeat from the frozen process

    const b = worker(path, "worker-b");
    assert.equal(await b.exit, 0);
    const done = await queue.get(task.id);
    assert.equal(done?.status, "completed");
    assert.equal(done?.lockedBy, "worker-b");
    assert.equal(done?.attempts, 2, "the frozen attempt counts");
    assert.match(done?.errorMessage ?? "", /lease expired: worker worker-a/);

    process.kill(a.child.pid!, "SIGCONT");
    assert.equal(await a.exit, 0);
    const lost = a.events().find((e) => e.event === "lease-lost");
    assert.ok(lost, `worker a learned it lost the task: ${JSON.stringify(a.events())}`);
    assert.equal(lost.taskId, task.id);
    assert.ok(!a.events().some((e) => e.event === "completed"), "worker a recorded no completion");

    const after = await queue.get(task.id);
    assert.deepEqual(after, done, "worker b's result stands");
  } finally {
    db.close();
    remove();
  }
});
