/**
 * A worker frozen with SIGSTOP past its lease loses the task to another worker, and when resumed with
 * SIGCONT it cannot overwrite the other worker's result: real processes, real signals, `prismq run` on a
 * file and on a PostgreSQL server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { DatabaseError, Queue, QueueDatabase } from "../mod.ts";
import { delay, heldRequests, makeTempDir, waitFor, within } from "./_helpers.ts";
import { PROCESS_DATABASES, type ProcessDatabase } from "./_databases.ts";

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

/**
 * Whether no process holds, on the database `db` is on, what another process would have to wait for: on a
 * file, the write lock (taken and let go, writing nothing; `db` must give up on it quickly); on PostgreSQL,
 * an open transaction (a session idle in one holds its row locks until its client speaks again). A
 * statement the server is running needs nothing from its client and ends on its own.
 */
async function nothingHeld(kind: ProcessDatabase["kind"], db: QueueDatabase): Promise<boolean> {
  if (kind === "postgres") {
    const { rows } = await db.transaction((tx) =>
      tx.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() " +
          "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
      )
    );
    return Number(rows[0]!.n) === 0;
  }
  try {
    await db.transaction(() => Promise.resolve());
    return true;
  } catch (error) {
    if (error instanceof DatabaseError) return false;
    throw error;
  }
}

/**
 * Freezes the process with SIGSTOP at a moment it holds nothing others wait for (see {@link nothingHeld}):
 * frozen in the middle of a write (a heartbeat, say), it would keep every other process from writing until
 * it is resumed. Should it hold something, it runs on a moment and is frozen again.
 */
async function freezeOutsideWrites(
  pid: number,
  kind: ProcessDatabase["kind"],
  db: QueueDatabase,
): Promise<void> {
  for (let attempt = 1;; attempt++) {
    process.kill(pid, "SIGSTOP");
    if (await nothingHeld(kind, db)) return;
    if (attempt === 100) throw new Error("the worker held a write each of 100 times it was frozen");
    process.kill(pid, "SIGCONT");
    await delay(10);
  }
}

for (const database of PROCESS_DATABASES) {
  test(
    `a worker frozen past its lease on ${database.name} loses the task and cannot overwrite the result when it resumes`,
    { skip: database.skip },
    () => leaseLossTest(database),
  );
}

async function leaseLossTest(database: ProcessDatabase): Promise<void> {
  const { dir, remove } = makeTempDir();
  const { location, drop } = await database.create(dir);
  // On a file, gives up on the write lock after 100 ms, for freezeOutsideWrites; this test's other use of it
  // only reads.
  const db = new QueueDatabase(location, database.kind === "file" ? { busyTimeoutMs: 100 } : {});
  // The task is a request that worker a never gets an answer to, so that it is still running when frozen
  // however slowly this machine runs it; worker b's is answered at once.
  const server = await heldRequests();
  let a: ReturnType<typeof worker> | undefined;
  let b: ReturnType<typeof worker> | undefined;
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    const task = await queue.enqueue("http_request", { url: server.url, timeoutMs: 300_000 });

    a = worker(location, "worker-a");
    // Running, and its start recorded: the attempt counts.
    await waitFor(
      async () => server.arrived === 1 && (await queue.get(task.id))?.startedAt != null,
      30_000,
      "worker a to start the task",
    );
    await freezeOutsideWrites(a.child.pid!, database.kind, db);
    server.answerNew();

    // Its lease expires with no heartbeat from the frozen process; b waits for that, then takes the task.
    b = worker(location, "worker-b");
    assert.equal(await within(60_000, "worker b", b.exit), 0);
    const done = await queue.get(task.id);
    assert.equal(done?.status, "completed");
    assert.equal(done?.lockedBy, "worker-b");
    assert.equal(done?.attempts, 2, "the frozen attempt counts");
    assert.match(done?.errorMessage ?? "", /lease expired: worker worker-a/);
    assert.equal(server.arrived, 2);

    // process.kill, not child.kill: Deno's ChildProcess ignores kill() after the first call.
    process.kill(a.child.pid!, "SIGCONT");
    assert.equal(await within(60_000, "worker a after it was resumed", a.exit), 0);
    const lost = a.events().find((e) => e.event === "lease-lost");
    assert.ok(lost, `worker a learned it lost the task: ${JSON.stringify(a.events())}`);
    assert.equal(lost.taskId, task.id);
    assert.ok(!a.events().some((e) => e.event === "completed"), "worker a recorded no completion");

    const after = await queue.get(task.id);
    assert.deepEqual(after, done, "worker b's result stands");
  } finally {
    for (const w of [a, b]) {
      if (!w || w.child.exitCode !== null || w.child.signalCode !== null) continue;
      process.kill(w.child.pid!, "SIGKILL");
      await w.exit;
    }
    await server.close();
    await db.close();
    await drop();
    remove();
  }
}
