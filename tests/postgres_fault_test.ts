/**
 * Workers on PostgreSQL through faults, against a real server on 127.0.0.1:
 *
 * - A worker whose connections stall, or are cut with the server unreachable, for longer than its lease
 *   (the fault-injecting proxy of tests/fixtures/fault_proxy.ts sits between it and the server): another
 *   worker takes the task over and completes it; the first worker's completion, written once the fault
 *   ends, is refused by the lease's fence and changes nothing, and that worker reports the task lost.
 * - A shorter outage: the worker keeps its handler's outcome and records it once the server is back.
 * - The server restarted twice mid-drain (`pg_ctl stop -m fast`, then `-m immediate`, and started again)
 *   under two worker processes: every task completes, none runs twice (leases outlast the outage), none
 *   is left running.
 * - The leader of the fleet's maintenance, a worker process holding a task, is SIGKILLed: the other worker
 *   takes over the lead once its lease expires, reaps the task and completes it.
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import postgres from "postgres";
import {
  Queue,
  QueueDatabase,
  type RunSummary,
  TaskHandlerRegistry,
  WorkerEngine,
  type WorkerEvent,
} from "../mod.ts";
import { type FaultProxy, startFaultProxy } from "./fixtures/fault_proxy.ts";
import { startPostgres } from "./fixtures/postgres_server.ts";
import { deferred, makeTempDir, waitFor, within } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";

const skip = postgresUnavailable();
/** How long a test waits for anything: a guard against hanging, never a measure. */
const GUARD_MS = 60_000;

/** The ways the proxy fails a worker's connections, and how each ends. */
const FAULTS: { name: string; start: (proxy: FaultProxy) => void; end: (proxy: FaultProxy) => void }[] = [
  { name: "whose connections stall", start: (proxy) => proxy.stall(), end: (proxy) => proxy.resume() },
  {
    name: "whose connections are cut, the server unreachable",
    start: (proxy) => {
      proxy.refuse(true);
      proxy.cut();
    },
    end: (proxy) => proxy.refuse(false),
  },
];

/** Options of a worker reached through the proxy: quick to notice a silent server, slow to give up. */
const THROUGH_PROXY = { requestTimeoutMs: 500, connectTimeoutMs: 500, reconnectTimeoutMs: GUARD_MS };

/** Quick leases, reaps and elections, so that a lost lease is taken over within a few seconds. */
const QUICK = { leaseMs: 1000, reapIntervalMs: 100, leaderLeaseMs: 400, pollIntervalMs: 20 };

function registryWith(handle: () => unknown): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("job", handle);
  return registry;
}

/** Resolves once the server has no session on the database at `app` but `app`'s own. */
async function sessionsGone(app: postgres.Sql): Promise<void> {
  await waitFor(
    async () => {
      const [{ n }] = await app`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()`;
      return n === 0;
    },
    GUARD_MS,
    "every other session on the database to end",
  );
}

for (const fault of FAULTS) {
  test(
    `a worker ${fault.name} loses its lease; another completes the task; the late completion changes nothing`,
    {
      skip,
    },
    async () => {
      const database = await freshDatabase();
      const proxy = await startFaultProxy(Number(new URL(database.url).port));
      const app = postgres(database.url, { max: 1, onnotice: false });
      const dbA = new QueueDatabase(proxy.via(database.url), THROUGH_PROXY);
      const dbB = new QueueDatabase(database.url);
      const release = deferred();
      try {
        await dbA.initializeSchema();
        await dbB.initializeSchema();
        const runs: string[] = [];
        const entered = deferred();
        const eventsA: WorkerEvent[] = [];
        const a = new WorkerEngine({
          db: dbA,
          workerId: "a",
          handlerRegistry: registryWith(async () => {
            runs.push("a");
            entered.resolve();
            await release.promise;
          }),
          ...QUICK,
          onEvent: (event) => eventsA.push(event),
        });
        const loopA = a.runLoop();
        const { id } = await new Queue(dbB).enqueue("job", {});
        await within(GUARD_MS, "a's handler to start", entered.promise);

        fault.start(proxy);
        const completedByB = deferred();
        const b = new WorkerEngine({
          db: dbB,
          workerId: "b",
          handlerRegistry: registryWith(() => void runs.push("b")),
          ...QUICK,
          onEvent: (event) => event.type === "completed" && completedByB.resolve(),
        });
        const loopB = b.runLoop();
        await within(GUARD_MS, "b to take the task over and complete it", completedByB.promise);
        const [taken] = await app`SELECT * FROM task_queue WHERE id = ${id}`;
        assert.equal(taken!.status, "completed");
        assert.equal(taken!.locked_by, "b");

        // a's handler returns; its completion waits for the database, and is written once the fault ends.
        release.resolve();
        fault.end(proxy);
        await waitFor(
          () => eventsA.some((event) => event.type === "lease-lost"),
          GUARD_MS,
          "a to learn that it lost the task",
        );
        await a.stop();
        const summaryA: RunSummary = await loopA;
        await b.stop();
        await loopB;
        await dbA.close();
        await dbB.close();
        await proxy.close();
        // Whatever a sent before and during the fault has reached the server by now.
        await sessionsGone(app);
        assert.deepEqual((await app`SELECT * FROM task_queue WHERE id = ${id}`)[0], taken, "changed nothing");
        assert.deepEqual(runs, ["a", "b"], "a repeat only by the worker that lost the lease");
        assert.equal(Number(taken!.attempts), 2);
        assert.deepEqual(
          { completed: summaryA.completed, leaseLost: summaryA.leaseLost },
          { completed: 0, leaseLost: 1 },
        );
      } finally {
        release.resolve();
        await proxy.close();
        await dbA.close();
        await dbB.close();
        await app.end();
        await database.drop();
      }
    },
  );
}

test(
  "a worker keeps its handler's outcome while the server cannot be reached, and records it once it is back",
  {
    skip,
  },
  async () => {
    const database = await freshDatabase();
    const proxy = await startFaultProxy(Number(new URL(database.url).port));
    const db = new QueueDatabase(proxy.via(database.url), THROUGH_PROXY);
    const release = deferred();
    try {
      await db.initializeSchema();
      const entered = deferred();
      const events: WorkerEvent[] = [];
      const worker = new WorkerEngine({
        db,
        workerId: "a",
        handlerRegistry: registryWith(async () => {
          entered.resolve();
          await release.promise;
        }),
        ...QUICK,
        leaseMs: GUARD_MS,
        onEvent: (event) => events.push(event),
      });
      const loop = worker.runLoop({ untilEmpty: true });
      const { id } = await new Queue(db).enqueue("job", {});
      await within(GUARD_MS, "the handler to start", entered.promise);
      proxy.refuse(true);
      proxy.cut();
      release.resolve();
      // The worker tries to write the outcome, and tries again: the connections it opens are turned away.
      const before = proxy.accepted;
      await waitFor(() => proxy.accepted >= before + 3, GUARD_MS, "three attempts to reconnect");
      proxy.refuse(false);
      const summary = await within(GUARD_MS, "the loop", loop);
      assert.equal(summary.completed, 1);
      assert.deepEqual(events.filter((event) => event.type === "error"), []);
      const task = await new Queue(db).get(id);
      assert.equal(task?.status, "completed");
      assert.equal(task?.attempts, 1);
    } finally {
      release.resolve();
      await proxy.close();
      await db.close();
      await database.drop();
    }
  },
);

interface Child {
  id: string;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

const WORKER = new URL("./fixtures/pg_worker.ts", import.meta.url).pathname;

/** A worker process (tests/fixtures/pg_worker.ts) on `url`. */
function startWorker(url: string, id: string, options: Record<string, unknown>): Child {
  const child = spawn(process.execPath, ["run", "-A", WORKER, url, id, JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const worker: Child = {
    id,
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
  };
  child.stdout!.on("data", (chunk) => (worker.stdout += chunk));
  child.stderr!.on("data", (chunk) => (worker.stderr += chunk));
  return worker;
}

/** Kills what is still running of `workers`, by process id, and waits for them to exit. */
async function killAll(workers: readonly Child[]): Promise<void> {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      process.kill(worker.child.pid!, "SIGKILL");
    }
  }
  await Promise.all(workers.map((worker) => worker.exited));
}

test("the server restarted twice mid-drain: every task completes, none twice, none left running", {
  skip,
}, async () => {
  const TASKS = 600;
  const server = await startPostgres();
  const { dir, remove } = makeTempDir("prismq-pg-restart-");
  const workers: Child[] = [];
  // The test's own view of the database, which reconnects by itself after each restart.
  const app = postgres(server.url, { max: 1, onnotice: false, connect_timeout: 5 });
  try {
    const db = new QueueDatabase(server.url);
    await db.initializeSchema();
    const queue = new Queue(db);
    await queue.enqueueMany(Array.from({ length: TASKS }, (_, i) => ({ type: "record", payload: { i } })));
    await db.close();
    for (const id of ["w1", "w2"]) {
      workers.push(startWorker(server.url, id, {
        concurrency: 4,
        leaseMs: 30_000,
        untilEmpty: true,
        handlerMs: 20,
        log: join(dir, `${id}.log`),
      }));
    }
    const completed = async () => {
      try {
        return (await app`SELECT count(*)::int AS n FROM task_queue WHERE status = 'completed'`)[0]!.n;
      } catch {
        return -1; // the server is restarting
      }
    };
    /** Executions begun so far, as the workers' logs say: readable while the server is down. */
    const startedSoFar = () =>
      workers.reduce((sum, worker) => {
        const log = join(dir, `${worker.id}.log`);
        return sum + (existsSync(log) ? readFileSync(log, "utf8").split("\n").length - 1 : 0);
      }, 0);
    const doneAtRestarts: number[] = [];
    for (const [after, mode] of [[TASKS / 4, "fast"], [TASKS / 2, "immediate"]] as const) {
      await waitFor(async () => (await completed()) >= after, GUARD_MS, `${after} tasks to complete`);
      server.shutDown(mode);
      doneAtRestarts.push(startedSoFar());
      server.startAgain();
    }
    assert.ok(doneAtRestarts.every((begun) => begun < TASKS), `mid-drain: ${doneAtRestarts} begun`);
    const codes = await within(
      GUARD_MS,
      "the workers to drain the queue",
      Promise.all(workers.map((w) => w.exited)),
    );
    for (const worker of workers) {
      assert.equal(worker.stderr, "", `${worker.id} wrote to stderr`);
    }
    assert.deepEqual(codes, [0, 0], workers.map((w) => w.stdout).join("\n"));

    const rows = await app`SELECT id::int, status, attempts::int FROM task_queue ORDER BY id`;
    assert.equal(rows.length, TASKS);
    assert.deepEqual([...new Set(rows.map((row) => row.status))], ["completed"]);
    const runs = new Map<number, number>();
    for (const worker of workers) {
      const log = join(dir, `${worker.id}.log`);
      if (!existsSync(log)) continue;
      for (const line of readFileSync(log, "utf8").split("\n").filter(Boolean)) {
        runs.set(Number(line), (runs.get(Number(line)) ?? 0) + 1);
      }
    }
    const repeated = [...runs].filter(([, count]) => count > 1);
    assert.deepEqual(repeated, [], "no task ran twice: no lease expired during the restarts");
    assert.equal(runs.size, TASKS);
    // A claim whose answer was lost with its connection charged its tasks an attempt they did not run:
    // they went back when their leases expired (see the README). At most one such attempt per task.
    for (const row of rows) assert.ok(row.attempts === 1 || row.attempts === 2, JSON.stringify(row));
    const summaries = workers.map((worker) => worker.stdout.trim().split("\n").at(-1));
    console.log(`restart test: ${doneAtRestarts} tasks begun at the restarts; ${summaries.join(" ")}`);
  } finally {
    await killAll(workers);
    await app.end({ timeout: 1 });
    server.stop();
    remove();
  }
});

test(
  "the leader killed with SIGKILL while holding a task: another worker takes over the lead, reaps the task and completes it",
  {
    skip,
  },
  async () => {
    const database = await freshDatabase();
    const app = postgres(database.url, { max: 1, onnotice: false });
    const workers: Child[] = [];
    const quick = { leaseMs: 2000, leaderLeaseMs: 1000, reapIntervalMs: 100, concurrency: 2 };
    try {
      const db = new QueueDatabase(database.url);
      await db.initializeSchema();
      const leader = async () =>
        (await app`SELECT leader_id FROM leaders`).map((row) => row.leader_id).join();
      // The first worker leads, alone; with a slot free it keeps looking for work, and so renews its lead.
      const first = startWorker(database.url, "first", { ...quick, hold: true });
      workers.push(first);
      await waitFor(async () => (await leader()) === "first", GUARD_MS, "the first worker to lead");
      const { id } = await new Queue(db).enqueue("hold", {});
      await waitFor(() => first.stdout.includes(`holding ${id}`), GUARD_MS, "the leader to hold the task");
      const second = startWorker(database.url, "second", quick);
      workers.push(second);
      await waitFor(() => second.stdout.includes("ready"), GUARD_MS, "the second worker to start");
      assert.equal(await leader(), "first", "a live leader keeps the lead");

      process.kill(first.child.pid!, "SIGKILL");
      await first.exited;
      await waitFor(
        async () => (await leader()) === "second",
        GUARD_MS,
        "the second worker to take the lead",
      );
      await waitFor(
        async () => (await new Queue(db).get(id))?.status === "completed",
        GUARD_MS,
        "the held task to be reaped and completed",
      );
      const task = await new Queue(db).get(id);
      assert.equal(task?.lockedBy, "second");
      assert.equal(task?.attempts, 2);
      assert.ok(second.stdout.includes(`holding ${id}`));
      await db.close();
    } finally {
      await killAll(workers);
      await app.end();
      await database.drop();
    }
  },
);
