/**
 * Nothing is lost when workers die: worker processes drain a queue while a driver SIGKILLs them at random
 * moments and starts replacements. Every task ends completed, none is left running, and every execution
 * beyond the first is explained by a kill.
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
import { delay, makeTempDir } from "./_helpers.ts";

const TASKS = Number(process.env.PRISMQ_CRASH_TASKS ?? 2000);
const KILLS = Number(process.env.PRISMQ_CRASH_KILLS ?? 20);
const WORKERS = Number(process.env.PRISMQ_CRASH_WORKERS ?? 4);
const LEASE_MS = 1500;
const CONCURRENCY = 8;
const fixture = new URL("./fixtures/crash_worker.ts", import.meta.url).pathname;

interface Worker {
  id: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: string;
}

test(`${WORKERS} workers drain ${TASKS} tasks through up to ${KILLS} SIGKILLs without losing one`, async () => {
  const { dir, remove } = makeTempDir("prismq-crash-");
  const dbPath = join(dir, "queue.db");
  const workers: Worker[] = [];
  try {
    const db = new QueueDatabase(dbPath);
    await db.initializeSchema();
    const queue = new Queue(db);
    const tasks = await queue.enqueueMany(
      Array.from({ length: TASKS }, (_, i) => ({ type: "record", payload: { i }, maxAttempts: 1000 })),
    );
    let started = 0;
    const start = (): Worker => {
      const id = `w${started++}`;
      const child = spawn(
        process.execPath,
        ["run", "-A", fixture, dbPath, join(dir, `${id}.log`), id, String(LEASE_MS), String(CONCURRENCY)],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      const worker: Worker = {
        id,
        child,
        stderr: "",
        exited: new Promise((r) => child.on("exit", (code) => r(code))),
      };
      child.stderr!.on("data", (chunk) => (worker.stderr += chunk));
      workers.push(worker);
      return worker;
    };
    const running = new Set(Array.from({ length: WORKERS }, start));
    const killed = new Set<string>();
    // Kills follow the drain's progress, not the clock, so that they land however fast this machine drains:
    // one at a random moment after each 1/(KILLS + 1) of the tasks completes.
    while (killed.size < KILLS) {
      await delay(5 + Math.random() * 40);
      const counts = (await queue.stats()).counts;
      if (counts.queued + counts.running === 0) break;
      if (counts.completed < ((killed.size + 1) * TASKS) / (KILLS + 1)) continue;
      const victims = [...running];
      const victim = victims[Math.floor(Math.random() * victims.length)];
      victim.child.kill("SIGKILL");
      await victim.exited;
      running.delete(victim);
      killed.add(victim.id);
      running.add(start());
    }
    assert.ok(killed.size >= Math.min(KILLS, 5), `only ${killed.size} kills landed before the queue drained`);
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
    db.close();
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
    // An attempt counts only for a start: beyond its executions, a task may be charged only for a claim to
    // start at once that a kill cut off before its handler began (at most one claim's worth per kill).
    const db2 = new QueueDatabase(dbPath);
    const final = await new Queue(db2).list({ limit: TASKS + 10 });
    db2.close();
    let overcharged = 0;
    for (const task of final) {
      overcharged += Math.max(0, task.attempts - (runsByTask.get(task.id)?.length ?? 0));
    }
    assert.ok(
      overcharged <= killed.size * CONCURRENCY,
      `${overcharged} attempts were charged to tasks that did not run them (${killed.size} kills)`,
    );
    console.log(
      `crash test: ${TASKS} tasks, ${killed.size} kills, ${workers.length} worker processes, ` +
        `${executions} executions (${executions - TASKS} repeated after kills), ${overcharged} attempts ` +
        `charged beyond executions`,
    );
  } finally {
    for (const worker of workers) worker.child.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    remove();
  }
});
