import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";

const fixture = new URL("./fixtures/drain_worker.ts", import.meta.url).pathname;

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

function startWorker(args: string[], engine: "node" | "libsql"): Proc {
  const child = spawn(process.execPath, ["run", "-A", fixture, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PRISMQ_SQLITE_ENGINE: engine },
  });
  const proc: Proc = {
    child,
    stdout: "",
    stderr: "",
    exit: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
  };
  child.stdout!.on("data", (chunk) => (proc.stdout += chunk));
  child.stderr!.on("data", (chunk) => (proc.stderr += chunk));
  return proc;
}

test("two worker processes, one on node:sqlite and one on libsql, drain 2,000 tasks from one file, each exactly once", async () => {
  const { dir, remove } = makeTempDir();
  try {
    const dbPath = join(dir, "queue.db");
    const db = new QueueDatabase(dbPath);
    await db.initializeSchema();
    const tasks = await new Queue(db).enqueueMany(
      Array.from({ length: 2000 }, (_, i) => ({ type: "record", payload: { i } })),
    );
    db.close();

    const workers = (["node", "libsql"] as const).map((engine, i) =>
      startWorker([dbPath, join(dir, `${"ab"[i]}.log`), `worker-${"ab"[i]}`], engine)
    );
    await waitFor(() => workers.every((w) => w.stdout.includes("ready")), 30_000, "both workers to start");
    for (const w of workers) w.child.stdin!.end("go\n");
    const codes = await Promise.all(workers.map((w) => w.exit));

    for (const w of workers) {
      assert.doesNotMatch(w.stderr, /SQLITE_BUSY|database is locked/i);
      assert.equal(w.stderr.trim(), "", `a worker wrote to stderr: ${w.stderr}`);
    }
    assert.deepEqual(codes, [0, 0]);

    const executions = ["a", "b"].map((name) =>
      readFileSync(join(dir, `${name}.log`), "utf8").split("\n").filter(Boolean).map(Number)
    );
    assert.ok(executions[0].length > 0 && executions[1].length > 0, "both processes ran tasks");
    const all = executions.flat().sort((x, y) => x - y);
    assert.deepEqual(all, tasks.map((t) => t.id), "every task ran exactly once");

    const check = new QueueDatabase(dbPath);
    const stats = await new Queue(check).stats();
    check.close();
    assert.deepEqual(stats.counts, { queued: 0, running: 0, completed: 2000, failed: 0, cancelled: 0 });
  } finally {
    remove();
  }
});
