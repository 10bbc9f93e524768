/**
 * Each slot of a schedule fires exactly once across worker processes that die and restart around the slots:
 * five `prismq run` processes (the command line's `main()`, tests/fixtures/schedule_worker.ts) share a
 * database, on a file and on a PostgreSQL server, with two schedules every second, while the driver SIGKILLs
 * a random worker every few seconds and starts a replacement, and once kills all five together and starts
 * them again after a few seconds of downtime.
 *
 * Every slot of `every_second_all` (missed: "all") from the first fired to the last has exactly one task: no
 * gap (the downtime's slots are caught up), no duplicate; the schedule's state names the last of them.
 * `every_second_latest` (missed: "latest") fires no slot twice, and fewer slots than the other: after the
 * downtime it fired only the latest missed slot.
 *
 * PRISMQ_SCHEDULE_TEST_SECONDS sets how long the workers run (default 60).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { Queue, QueueDatabase, type Task } from "../mod.ts";
import { delay, makeTempDir, waitFor } from "./_helpers.ts";
import { PROCESS_DATABASES, type ProcessDatabase } from "./_databases.ts";

const SECONDS = Number(process.env.PRISMQ_SCHEDULE_TEST_SECONDS ?? 60);
const WORKERS = 5;
const fixture = new URL("./fixtures/schedule_worker.ts", import.meta.url).pathname;

interface Worker {
  id: string;
  child: ChildProcess;
  exited: Promise<number | string | null>;
  /** Resolves once the worker listens for SIGTERM (it says it started). */
  ready: Promise<void>;
  stderr: string;
  stdout: string;
}

for (const database of PROCESS_DATABASES) {
  test(
    `${WORKERS} workers on ${database.name} fire each slot of a one-second schedule exactly once through SIGKILLs and restarts`,
    { skip: database.skip },
    () => scheduleTest(database),
  );
}

async function scheduleTest(database: ProcessDatabase): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-schedule-");
  const { location, drop } = await database.create(dir);
  const workers = new Set<Worker>();
  let started = 0;
  const start = (): Worker => {
    const id = `w${started++}`;
    const child = spawn(process.execPath, ["run", "-A", fixture, location, id], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let ready!: () => void;
    const worker: Worker = {
      id,
      child,
      stderr: "",
      stdout: "",
      exited: new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal))),
      ready: new Promise((resolve) => (ready = resolve)),
    };
    child.stdout!.on("data", (chunk) => {
      worker.stdout += chunk;
      if (worker.stdout.includes(`Worker ${id} started`)) ready();
    });
    child.stderr!.on("data", (chunk) => (worker.stderr += chunk));
    workers.add(worker);
    return worker;
  };
  const kill = async (worker: Worker) => {
    worker.child.kill("SIGKILL");
    await worker.exited;
    workers.delete(worker);
  };
  const db = new QueueDatabase(location);
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    for (let i = 0; i < WORKERS; i++) start();
    const end = Date.now() + SECONDS * 1000;
    const outageAt = Date.now() + SECONDS * 500;
    let outage = false;
    let kills = 0;
    while (Date.now() < end) {
      await delay(1000 + Math.random() * 3000);
      if (!outage && Date.now() >= outageAt) {
        // Every worker down at once, across several slots; then all back.
        outage = true;
        await Promise.all([...workers].map(kill));
        kills += WORKERS;
        await delay(3500);
        for (let i = 0; i < WORKERS; i++) start();
        continue;
      }
      const victims = [...workers];
      await kill(victims[Math.floor(Math.random() * victims.length)]!);
      kills++;
      // Sometimes at once, sometimes after a slot or two.
      if (Math.random() < 0.5) await delay(Math.random() * 2500);
      start();
    }
    // Let the last workers settle on the current slot, then stop them all.
    await waitFor(async () => {
      const [all] = await queue.schedules();
      return all !== undefined && all.lastSlot !== null && Date.now() - all.lastSlot < 5000;
    }, 30_000);
    await Promise.all([...workers].map(async (worker) => {
      await worker.ready;
      worker.child.kill("SIGTERM");
      const code = await worker.exited;
      // Deno's child_process reports the signal it sent as the cause of exit, even of a process that
      // handled it and exited by itself: the worker's last line says it stopped.
      assert.ok(
        (code === 0 || code === "SIGTERM") && worker.stdout.includes(`Worker ${worker.id} stopped`),
        `${worker.id} ended with ${code}: ${worker.stdout}${worker.stderr}`,
      );
    }));

    const tasks: Task[] = [];
    for (let offset = 0;; offset += 1000) {
      const page = await queue.list({ type: "tick", limit: 1000, offset });
      tasks.push(...page);
      if (page.length < 1000) break;
    }
    const slotsOf = (schedule: string) =>
      tasks.filter((task) => (task.payload as { schedule: string }).schedule === schedule)
        .map((task) => task.runAfter).sort((a, b) => a - b);
    const all = slotsOf("all");
    const latest = slotsOf("latest");
    assert.ok(all.length >= SECONDS / 2, `only ${all.length} slots fired in ${SECONDS} s`);
    const duplicates = (slots: number[]) => slots.filter((slot, i) => slot === slots[i - 1]);
    assert.deepEqual(duplicates(all), [], "every_second_all fired a slot twice");
    assert.deepEqual(duplicates(latest), [], "every_second_latest fired a slot twice");
    const gaps = all.filter((slot, i) => i > 0 && slot - all[i - 1]! !== 1000);
    assert.deepEqual(gaps.map((slot) => new Date(slot).toISOString()), [], "every_second_all skipped slots");
    assert.ok(all.every((slot) => slot % 1000 === 0));
    const states = await queue.schedules();
    assert.deepEqual(states.map((state) => state.name), ["every_second_all", "every_second_latest"]);
    assert.equal(states[0]!.lastSlot, all.at(-1));
    assert.equal(states[1]!.lastSlot, latest.at(-1));
    assert.ok(
      latest.length < all.length,
      `latest fired ${latest.length} slots, all ${all.length}: none dropped`,
    );
    assert.ok(latest.every((slot) => slot >= all[0]! - 1000 && slot <= all.at(-1)!));
    console.log(
      `${database.name}: ${all.length} slots in ${SECONDS} s through ${kills} SIGKILLs, each fired once; ` +
        `"latest" fired ${latest.length}`,
    );
  } finally {
    for (const worker of workers) worker.child.kill("SIGKILL");
    await Promise.all([...workers].map((worker) => worker.exited));
    await db.close();
    await drop();
    remove();
  }
}
