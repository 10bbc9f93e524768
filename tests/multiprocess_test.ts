/**
 * Two worker processes drain one queue at once, each task exactly once: on a file, one process on each
 * SQLite engine (node:sqlite and libsql); on a PostgreSQL server, one process on Deno and one on Bun (two
 * socket layers under the `postgres` driver).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, REPO, waitFor } from "./_helpers.ts";
import { PROCESS_DATABASES } from "./_databases.ts";

const fixture = new URL("./fixtures/drain_worker.ts", import.meta.url).pathname;
const BUN = join(REPO, "node_modules", ".bin", "bun");

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

/** How a worker process is started: the runtime, and the SQLite engine it opens files with. */
interface WorkerKind {
  name: string;
  runtime: "deno" | "bun";
  engine: "node" | "libsql";
}

const DENO_NODE_SQLITE: WorkerKind = { name: "node:sqlite", runtime: "deno", engine: "node" };
const DENO_LIBSQL: WorkerKind = { name: "libsql", runtime: "deno", engine: "libsql" };
const DENO: WorkerKind = { name: "Deno", runtime: "deno", engine: "node" };
const BUN_WORKER: WorkerKind = { name: "Bun", runtime: "bun", engine: "node" };

function startWorker(args: string[], kind: WorkerKind): Proc {
  const [command, runArgs] = kind.runtime === "deno"
    ? [process.execPath, ["run", "-A", fixture]]
    : [BUN, [fixture]];
  const child = spawn(command, [...runArgs, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PRISMQ_SQLITE_ENGINE: kind.engine },
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

for (const database of PROCESS_DATABASES) {
  const kinds = database.kind === "file" ? [DENO_NODE_SQLITE, DENO_LIBSQL] : [DENO, BUN_WORKER];
  test(
    `two worker processes, one on ${kinds[0].name} and one on ${
      kinds[1].name
    }, drain 2,000 tasks from ${database.name}, each exactly once`,
    {
      skip: database.skip,
    },
    async () => {
      const { dir, remove } = makeTempDir();
      const { location, drop } = await database.create(dir);
      const workers: Proc[] = [];
      try {
        const db = new QueueDatabase(location);
        await db.initializeSchema();
        const tasks = await new Queue(db).enqueueMany(
          Array.from({ length: 2000 }, (_, i) => ({ type: "record", payload: { i } })),
        );
        await db.close();

        workers.push(
          ...kinds.map((kind, i) =>
            startWorker([location, join(dir, `${"ab"[i]}.log`), `worker-${"ab"[i]}`], kind)
          ),
        );
        await waitFor(
          () => workers.every((w) => w.stdout.includes("ready")),
          30_000,
          "both workers to start",
        );
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

        const check = new QueueDatabase(location);
        const stats = await new Queue(check).stats();
        await check.close();
        assert.deepEqual(stats.counts, {
          waiting: 0,
          queued: 0,
          running: 0,
          completed: 2000,
          failed: 0,
          cancelled: 0,
        });
      } finally {
        for (const w of workers) {
          if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
        }
        await Promise.all(workers.map((w) => w.exit));
        await drop();
        remove();
      }
    },
  );
}
