/**
 * Named queues' fleet-wide limits with real processes: three `prismq run` processes (the CLI's `main`, with
 * a `probe` handler that logs each start and end, tests/fixtures/probe_worker.ts) share a database file or a
 * PostgreSQL server. A concurrency limit is never exceeded (the overlaps of the logged runs are counted), a
 * rate limit holds in every window, and a pause stops new claims at once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase, systemClock } from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import { PROCESS_DATABASES } from "./_databases.ts";

const fixture = new URL("./fixtures/probe_worker.ts", import.meta.url).pathname;

interface Run {
  code: Promise<number | null>;
  output: () => string;
}

/** `prismq <argv>` with the probe handler, logging to `log`. */
function prismq(log: string, argv: string[]): Run {
  const child = spawn(process.execPath, ["run", "-A", fixture, log, ...argv], { stdio: "pipe" });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return { code: new Promise((resolve) => child.on("exit", resolve)), output: () => output };
}

interface Probe {
  id: number;
  start: number;
  end: number | undefined;
}

/** The runs the logs record, by task. */
function probes(logs: readonly string[]): Probe[] {
  const byId = new Map<number, Probe>();
  for (const log of logs) {
    if (!existsSync(log)) continue;
    for (const line of readFileSync(log, "utf8").split("\n").filter(Boolean)) {
      const [event, id, at] = line.split(" ");
      const probe = byId.get(Number(id)) ?? { id: Number(id), start: NaN, end: undefined };
      if (event === "start") {
        assert.ok(Number.isNaN(probe.start), `task ${id} started twice`);
        probe.start = Number(at);
      } else probe.end = Number(at);
      byId.set(probe.id, probe);
    }
  }
  return [...byId.values()];
}

/**
 * The most runs under way at once. A run's end is logged before its outcome is written and a run's start
 * after its claim committed, so of an end and a start in the same millisecond the end came first.
 */
function mostAtOnce(runs: readonly Probe[]): number {
  const events = runs.flatMap((run) => [[run.start, 1], [run.end ?? Infinity, -1]]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let most = 0;
  for (const [, delta] of events) most = Math.max(most, now += delta!);
  return most;
}

for (const database of PROCESS_DATABASES) {
  test(`three worker processes never run more of a queue than its concurrency limit, on ${database.name}`, {
    skip: database.skip,
  }, async () => {
    const { dir, remove } = makeTempDir();
    const { location, drop } = await database.create(dir);
    try {
      const db = new QueueDatabase(location);
      await db.initializeSchema();
      const queue = new Queue(db);
      await queue.setQueueLimits("api", { concurrency: 3 });
      const tasks = await queue.enqueueMany(
        Array.from({ length: 60 }, () => ({ type: "probe", payload: { ms: 15 }, queue: "api" })),
      );
      await db.close();
      const logs = [0, 1, 2].map((i) => join(dir, `w${i}.log`));
      const workers = logs.map((log, i) =>
        prismq(log, [
          "run",
          "--db",
          location,
          "--queues",
          "api",
          "--concurrency",
          "4",
          "--poll",
          "20ms",
          "--until-empty",
          "--worker-id",
          `w${i}`,
        ])
      );
      const codes = await Promise.all(workers.map((w) => w.code));
      assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.output()).join("\n"));
      const runs = probes(logs);
      assert.deepEqual(runs.map((r) => r.id).sort((a, b) => a - b), tasks.map((t) => t.id), "each ran once");
      assert.ok(runs.every((r) => r.end !== undefined), "every run ended");
      const most = mostAtOnce(runs);
      assert.ok(most <= 3, `${most} tasks of the queue ran at once, over its limit of 3`);
    } finally {
      await drop();
      remove();
    }
  });

  test(
    `three worker processes start no more of a queue per window than its rate limit, on ${database.name}`,
    {
      skip: database.skip,
    },
    async () => {
      const { dir, remove } = makeTempDir();
      const { location, drop } = await database.create(dir);
      try {
        const db = new QueueDatabase(location);
        await db.initializeSchema();
        const queue = new Queue(db);
        await queue.setQueueLimits("mail", { rate: { limit: 8, intervalMs: 500 } });
        await queue.enqueueMany(
          Array.from({ length: 30 }, () => ({ type: "probe", payload: { ms: 0 }, queue: "mail" })),
        );
        const logs = [0, 1, 2].map((i) => join(dir, `w${i}.log`));
        // Workers that claim ahead (the default): a rate-limited queue's tasks claimed ahead carry the end of
        // the window their claim was counted in, and go back unstarted if they cannot start by then; every
        // start recorded (startedAt) therefore falls in the window that counted it.
        const workers = logs.map((log, i) =>
          prismq(log, [
            "run",
            "--db",
            location,
            "--poll",
            "20ms",
            "--until-empty",
            "--worker-id",
            `w${i}`,
          ])
        );
        const codes = await Promise.all(workers.map((w) => w.code));
        assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.output()).join("\n"));
        const done = await queue.list({ status: "completed", limit: 100 });
        await db.close();
        assert.equal(done.length, 30);
        const perWindow = new Map<number, number>();
        for (const task of done) {
          const window = Math.floor(task.startedAt! / 500);
          perWindow.set(window, (perWindow.get(window) ?? 0) + 1);
        }
        for (const [window, n] of perWindow) assert.ok(n <= 8, `${n} starts in window ${window}, over 8`);
        // The handlers' own clocks are not checked against the windows: on a loaded machine a process may
        // run a handler long after its start was counted (17 handler starts fell within 500 ms so), which
        // is the scheduler's doing, not a start over the limit.
        assert.equal(probes(logs).length, 30, "every task's handler ran");
      } finally {
        await drop();
        remove();
      }
    },
  );

  test(`a pause stops the fleet's claims from a queue at once; running tasks finish, on ${database.name}`, {
    skip: database.skip,
  }, async () => {
    const { dir, remove } = makeTempDir();
    const { location, drop } = await database.create(dir);
    const logs = [0, 1, 2].map((i) => join(dir, `w${i}.log`));
    try {
      const db = new QueueDatabase(location);
      await db.initializeSchema();
      const queue = new Queue(db);
      await queue.enqueueMany(
        Array.from({ length: 400 }, () => ({ type: "probe", payload: { ms: 10 }, queue: "p" })),
      );
      const workers = logs.map((log, i) =>
        prismq(log, [
          "run",
          "--db",
          location,
          "--queues",
          "p",
          "--prefetch",
          "0",
          "--concurrency",
          "2",
          "--until-empty",
          "--worker-id",
          `w${i}`,
        ])
      );
      await waitFor(() => probes(logs).length >= 10, 60_000, "the workers to start tasks");
      await queue.pauseQueue("p");
      // Read on the clock claims are timed on (the server's, on PostgreSQL): no claim made after the pause
      // took effect can have a start at or before this.
      const paused = db.clockFor(systemClock).now();
      // Paused, nothing is runnable: each worker finishes what it runs and exits.
      const codes = await Promise.all(workers.map((w) => w.code));
      assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.output()).join("\n"));
      const claimed = (await queue.list({ limit: 1000 })).filter((t) => t.status !== "queued");
      const [info] = await queue.listQueues();
      assert.equal(info!.paused, true);
      assert.ok(info!.queued > 0, "tasks are left queued");
      assert.equal(info!.running, 0, "the running tasks finished");
      for (const task of claimed) {
        assert.ok(
          task.startedAt! <= paused,
          `task ${task.id} was claimed ${task.startedAt! - paused} ms after the pause`,
        );
        assert.equal(task.status, "completed");
      }
      await db.close();
    } finally {
      await drop();
      remove();
    }
  });
}
