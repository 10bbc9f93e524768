/**
 * Nothing is lost when workers die: worker processes drain a queue, on a file and on a PostgreSQL server,
 * while a driver SIGKILLs them and starts replacements. Every task ends completed, none is left running, every execution beyond the first is
 * explained by a kill, and no task is charged for an attempt it did not run beyond what a kill can cut off
 * in its victim's handler slots.
 *
 * The driver feeds the queue in waves, one per kill, and kills a worker as soon as it reports a claim that
 * left it holding far more tasks than it has slots, so that kills follow the drain's progress however fast
 * this machine is, and each lands where tasks charged at their claim rather than at their start would show.
 *
 * Sizes come from the environment so that `deno task soak` can run it bigger:
 * PRISMQ_CRASH_TASKS (default 2000), PRISMQ_CRASH_KILLS (20), PRISMQ_CRASH_WORKERS (4).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { delay, makeTempDir, waitFor } from "./_helpers.ts";
import { PROCESS_DATABASES, type ProcessDatabase } from "./_databases.ts";

const TASKS = Number(process.env.PRISMQ_CRASH_TASKS ?? 2000);
const KILLS = Number(process.env.PRISMQ_CRASH_KILLS ?? 20);
const WORKERS = Number(process.env.PRISMQ_CRASH_WORKERS ?? 4);
/**
 * Long enough that a worker slowed down by a busy machine still renews its leases in time (it renews every
 * second, and another worker takes a lease only 2 s after it expired), short enough that a killed worker's
 * tasks come back soon.
 */
const LEASE_MS = 3000;
const CONCURRENCY = 8;
const fixture = new URL("./fixtures/crash_worker.ts", import.meta.url).pathname;
/** A victim holds at least this many tasks: twice its slots claimed ahead, beyond the slots themselves. */
const VICTIM_HOLDS = 3 * CONCURRENCY;

interface Worker {
  id: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Resolves once the worker listens for SIGTERM. */
  ready: Promise<void>;
  stderr: string;
}

for (const database of PROCESS_DATABASES) {
  test(
    `${WORKERS} workers drain ${TASKS} tasks from ${database.name} through ${KILLS} SIGKILLs without losing one or charging one for nothing`,
    { skip: database.skip },
    () => crashTest(database),
  );
}

async function crashTest(database: ProcessDatabase): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-crash-");
  const { location, drop } = await database.create(dir);
  const workers: Worker[] = [];
  try {
    const db = new QueueDatabase(location);
    await db.initializeSchema();
    const queue = new Queue(db);
    const tasks: { id: number }[] = [];
    /** Called with each `waiting <n>` line a worker prints after a claim. */
    let onClaim = (_worker: Worker, _waiting: number) => {};
    let started = 0;
    const start = (): Worker => {
      const id = `w${started++}`;
      const child = spawn(
        process.execPath,
        ["run", "-A", fixture, location, join(dir, `${id}.log`), id, String(LEASE_MS), String(CONCURRENCY)],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let ready!: () => void;
      const worker: Worker = {
        id,
        child,
        stderr: "",
        exited: new Promise((r) => child.on("exit", (code) => r(code))),
        ready: new Promise((r) => (ready = r)),
      };
      let stdout = "";
      child.stdout!.on("data", (chunk) => {
        stdout += chunk;
        const lines = stdout.split("\n");
        stdout = lines.pop()!;
        for (const line of lines) {
          if (line === "started") ready();
          else if (line.startsWith("waiting ")) onClaim(worker, Number(line.slice("waiting ".length)));
        }
      });
      child.stderr!.on("data", (chunk) => (worker.stderr += chunk));
      workers.push(worker);
      return worker;
    };
    const running = new Set(Array.from({ length: WORKERS }, start));
    const killed = new Set<string>();
    /** Tasks the victims held beyond their slots, as their last claims left them. */
    let heldAhead = 0;
    /** Whether no task is queued and no live worker holds one. */
    const drained = async () => {
      const held = await queue.list({ status: "running", limit: TASKS });
      return (await queue.stats()).counts.queued === 0 &&
        held.every((task) => ![...running].some((worker) => worker.id === task.lockedBy));
    };
    const wave = Math.ceil(TASKS / (KILLS + 1));
    while (tasks.length < TASKS) {
      const size = Math.min(wave, TASKS - tasks.length);
      const first = tasks.length;
      tasks.push(
        ...await queue.enqueueMany(
          Array.from(
            { length: size },
            (_, i) => ({ type: "record", payload: { i: first + i }, maxAttempts: 1000 }),
          ),
        ),
      );
      if (killed.size === KILLS) continue;
      // The first worker to report holding far more than its slots is killed at once; a wave drained before
      // any did goes by without a kill.
      let victim: Worker | undefined;
      onClaim = (worker, waiting) => {
        if (victim || waiting < VICTIM_HOLDS || !running.has(worker)) return;
        worker.child.kill("SIGKILL");
        victim = worker;
        heldAhead += waiting - CONCURRENCY;
      };
      while (!victim && !(await drained())) await delay(2);
      onClaim = () => {};
      if (!victim) continue;
      await victim.exited;
      running.delete(victim);
      killed.add(victim.id);
      running.add(start());
    }
    assert.ok(killed.size >= KILLS / 2, `only ${killed.size} of ${KILLS} kills landed`);
    // Tasks the victims held go back once their leases expire.
    await waitFor(
      async () => (await queue.stats()).counts.completed === TASKS,
      60_000,
      "every task to complete",
    );
    await Promise.all([...running].map((worker) => Promise.race([worker.ready, worker.exited])));
    // process.kill: Deno's child.kill reports its signal as the cause of exit, even of a graceful one.
    for (const worker of running) process.kill(worker.child.pid!, "SIGTERM");
    const codes = await Promise.all([...running].map((w) => w.exited));
    for (const worker of workers) {
      assert.doesNotMatch(
        worker.stderr,
        /SQLITE_BUSY|database is locked|Error/i,
        `${worker.id}: ${worker.stderr}`,
      );
    }
    assert.ok(codes.every((code) => code === 0), `surviving workers exited with ${codes}`);

    const stats = await queue.stats();
    await db.close();
    assert.equal(stats.counts.completed, TASKS, JSON.stringify(stats.counts));
    assert.equal(stats.counts.running, 0);

    // Who ran what: every task ran, and a task ran more than once only when a killed worker ran it.
    const runsByTask = new Map<number, string[]>();
    for (const worker of workers) {
      const path = join(dir, `${worker.id}.log`);
      if (!existsSync(path)) continue;
      for (const line of readFileSync(path, "utf8").split("\n").filter(Boolean)) {
        const id = Number(line);
        runsByTask.set(id, [...(runsByTask.get(id) ?? []), worker.id]);
      }
    }
    const executions = [...runsByTask.values()].reduce((sum, runs) => sum + runs.length, 0);
    assert.equal(runsByTask.size, TASKS, "every task ran at least once");
    assert.ok(executions >= TASKS);
    for (const task of tasks) {
      const runs = runsByTask.get(task.id)!;
      const bySurvivors = runs.filter((workerId) => !killed.has(workerId));
      assert.ok(
        bySurvivors.length <= 1,
        `task ${task.id} ran ${runs.length} times (${runs.join(", ")}); only killed workers may add runs`,
      );
    }
    // An attempt counts only for a start: beyond its executions, a task may be charged only when a kill cut
    // off its handler after its start was written (by a claim that starts it at once, or first because it was
    // handed back unconfirmed) and before the handler began: at most one per slot of each victim. Each
    // victim held at least twice its slots in tasks claimed ahead, so charging those at their claim fails
    // this by far.
    const db2 = new QueueDatabase(location);
    const final = await new Queue(db2).list({ limit: TASKS + 10 });
    await db2.close();
    let overcharged = 0;
    for (const task of final) {
      overcharged += Math.max(0, task.attempts - (runsByTask.get(task.id)?.length ?? 0));
    }
    assert.ok(
      overcharged <= killed.size * CONCURRENCY,
      `${overcharged} attempts were charged to tasks that did not run them (${killed.size} kills, whose ` +
        `victims held ${heldAhead} tasks beyond their slots)`,
    );
    console.log(
      `crash test on ${database.name}: ${TASKS} tasks, ${killed.size} kills, ${workers.length} worker processes, ` +
        `${executions} executions (${executions - TASKS} repeated after kills), ${overcharged} attempts ` +
        `charged beyond executions; victims held ${heldAhead} tasks beyond their slots`,
    );
  } finally {
    for (const worker of workers) worker.child.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await drop();
    remove();
  }
}
