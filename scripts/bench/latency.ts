/**
 * S5: how soon an idle worker in another process starts a task that was just enqueued, and what the idle
 * worker costs in CPU while it waits. The worker is scripts/bench/latency_worker.ts, a library worker with
 * default options; it prints each task's number and the time its handler started.
 *
 * Both processes read the same system clock, calibrated together before the run (clock.ts), so the latency
 * is the handler's start minus the moment before `enqueue` was called, without the time the line then
 * takes through the pipe to this process (about a millisecond here, reported on its own row). That the
 * clocks agree is checked on every task: each start must fall between its enqueue and its line's arrival.
 *
 * R5 times the same hand-off with no queue logic, which is the floor this machine sets: every step starts on
 * a processor that was idle. On a SQLite file: scripts/bench/raw_latency_worker.ts and a prepared INSERT;
 * on PostgreSQL: scripts/bench/raw_pg_latency_worker.ts, woken by the insert trigger's NOTIFY (see
 * `raw_postgres.ts`).
 *
 * @module
 */
import process from "node:process";
import { chooseEngine } from "../../src/store/sqlite/engines.ts";
import { Queue, QueueDatabase } from "../../mod.ts";
import { denoCommand, REPO } from "./binary.ts";
import { type BenchContext, eachRun, type Goal, type Measured, type Scenario } from "./context.ts";
import {
  assertClean,
  clockTicksPerSecond,
  cpuTicks,
  delay,
  exitWithin,
  withChildren,
  within,
} from "./processes.ts";
import { createSchema } from "./queue_files.ts";
import { calibrateClock, clockNow } from "./clock.ts";

const INSERT =
  "INSERT INTO task_queue (type, payload, priority, max_attempts, run_after, created_at, updated_at) " +
  "VALUES ('noop', ?, 100, 5, ?, ?, ?)";
/** Between one enqueue's return and the next enqueue. */
const SPACING_MS = 10;
/**
 * How far apart two processes' readings of the system clock may be before the figures mean nothing. Both
 * calibrate just before the run (see clock.ts), to within microseconds on a quiet machine.
 */
const CLOCK_TOLERANCE_MS = 0.25;

/** How one side of the hand-off is done: PrismQ's, or the raw driver's with no queue logic. */
export interface HandOff {
  /** "s5" or "r5": what the database is named after. */
  name: string;
  /** The worker, a script in scripts/bench/ taking the database's location. */
  workerScript: string;
  /** Opens the enqueuing side on the database; `enqueue(i)` queues a `noop` task with payload `{ i }`. */
  openEnqueuer(location: string): { enqueue(i: number): Promise<unknown>; close(): void | Promise<void> };
}

const PRISMQ: HandOff = {
  name: "s5",
  workerScript: "latency_worker.ts",
  openEnqueuer(path) {
    const db = new QueueDatabase(path);
    const queue = new Queue(db);
    return { enqueue: (i) => queue.enqueue("noop", { i }), close: () => db.close() };
  },
};

/** R5 on a SQLite file: a prepared INSERT, and a prepared claim on each change of the write-ahead log. */
export const SQLITE_RAW_HANDOFF: HandOff = {
  name: "r5",
  workerScript: "raw_latency_worker.ts",
  openEnqueuer(path) {
    const db = chooseEngine().open(path);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000");
    const insert = db.prepare(INSERT, false);
    return {
      enqueue(i) {
        const now = Date.now();
        return Promise.resolve(insert.run([JSON.stringify({ i }), now, now, now]));
      },
      close: () => db.close(),
    };
  },
};

/** The value at fraction `p` of sorted `values`, by nearest rank. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

interface LatencyRun {
  p50: number;
  p95: number;
  max: number;
  /** Enqueue to the handler's line read from the pipe, p50. */
  pipeP50: number;
  idleCpuPercent: number;
}

/** When the worker's handler started task `i`, and when its line reached this process. */
interface Arrival {
  startedAt: number;
  readAt: number;
}

async function latencyRun(ctx: BenchContext, handOff: HandOff): Promise<LatencyRun> {
  const { latencyTasks: tasks, idleSettleMs, idleWindowMs } = ctx.sizes;
  const location = await ctx.db.create(handOff.name);
  await createSchema(location);
  try {
    return await withChildren(async (startChild) => {
      const arrived = new Map<number, Arrival>();
      let pid = 0;
      let ready!: () => void;
      let allArrived!: () => void;
      let calibrated!: () => void;
      const isCalibrated = new Promise<void>((resolve) => (calibrated = resolve));
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const haveAll = new Promise<void>((resolve) => (allArrived = resolve));
      const [command, args] = denoCommand(handOff.workerScript);
      const worker = startChild(command, [...args, location], {
        cwd: REPO,
        onLine(line) {
          const readAt = clockNow();
          if (line.startsWith("ready ")) {
            // The worker's own pid: under `npx deno`, the spawned process is npx.
            pid = Number(line.slice("ready ".length));
            ready();
            return;
          }
          if (line === "calibrated") {
            calibrated();
            return;
          }
          const match = /^(\d+) (\d+(?:\.\d+)?)$/.exec(line);
          if (match && !arrived.has(Number(match[1]))) {
            arrived.set(Number(match[1]), { startedAt: Number(match[2]), readAt });
            if (arrived.size === tasks) allArrived();
          }
        },
      });
      const exitedEarly = worker.done.then((exit) => {
        assertClean(exit, worker, "the latency worker");
        throw new Error("the latency worker exited by itself");
      });
      // Awaited only while the worker should be running; its normal exit at the end is no error.
      exitedEarly.catch(() => {});
      await within(Promise.race([isReady, exitedEarly]), 60_000, "the latency worker to be ready");

      /** The worker's CPU ticks; when /proc has no such process, why the worker exited. */
      const ticksNow = async () => {
        try {
          return cpuTicks(pid);
        } catch (error) {
          await Promise.race([exitedEarly, delay(1_000)]);
          throw error;
        }
      };
      await delay(idleSettleMs);
      const windowStart = performance.now();
      const ticksBefore = await ticksNow();
      await delay(idleWindowMs);
      const ticks = await ticksNow() - ticksBefore;
      const windowSeconds = (performance.now() - windowStart) / 1000;
      const idleCpuPercent = 100 * ticks / clockTicksPerSecond() / windowSeconds;

      const sent: number[] = [];
      calibrateClock();
      process.kill(pid, "SIGUSR1");
      await within(
        Promise.race([isCalibrated, exitedEarly]),
        30_000,
        "the latency worker to calibrate its clock",
      );
      const enqueuer = handOff.openEnqueuer(location);
      try {
        for (let i = 0; i < tasks; i++) {
          sent.push(clockNow());
          await enqueuer.enqueue(i);
          await delay(SPACING_MS);
        }
        await within(Promise.race([haveAll, exitedEarly]), 30_000, `all ${tasks} tasks to start`);
      } finally {
        await enqueuer.close();
      }
      process.kill(pid, "SIGTERM");
      const exit = await exitWithin(worker, 30_000, "the latency worker after SIGTERM");
      assertClean(exit, worker, "the latency worker after SIGTERM");

      const latencies: number[] = [];
      const throughPipe: number[] = [];
      sent.forEach((at, i) => {
        const { startedAt, readAt } = arrived.get(i)!;
        if (startedAt < at - CLOCK_TOLERANCE_MS || startedAt > readAt + CLOCK_TOLERANCE_MS) {
          throw new Error(
            `task ${i} started at ${startedAt.toFixed(3)} ms by the worker's clock, outside its enqueue ` +
              `(${at.toFixed(3)}) and the arrival of its line (${readAt.toFixed(3)}): the two processes' ` +
              "clocks disagree, so enqueue-to-start cannot be measured on this machine",
          );
        }
        latencies.push(startedAt - at);
        throughPipe.push(readAt - at);
      });
      latencies.sort((a, b) => a - b);
      throughPipe.sort((a, b) => a - b);
      return {
        p50: percentile(latencies, 0.5),
        p95: percentile(latencies, 0.95),
        max: latencies.at(-1)!,
        pipeP50: percentile(throughPipe, 0.5),
        idleCpuPercent,
      };
    });
  } finally {
    await ctx.db.remove(location);
  }
}

const what = (ctx: BenchContext) =>
  `enqueue to handler start in another process (${ctx.sizes.latencyTasks} tasks, ${SPACING_MS} ms apart)`;

/** S5: PrismQ's hand-off, its p50 and p95 held to `goals`, and an idle worker's CPU. */
export const latency = (goals: { p50: Goal; p95: Goal }): Scenario => async (ctx) => {
  const runs = await eachRun(ctx.sizes.runs, () => latencyRun(ctx, PRISMQ));
  return [
    {
      id: "S5",
      label: `latency, ${what(ctx)}, p50`,
      unit: "ms",
      runs: runs.map((run) => run.p50),
      ...goals.p50,
    },
    {
      id: "S5.p95",
      label: "latency, p95",
      unit: "ms",
      runs: runs.map((run) => run.p95),
      ...goals.p95,
    },
    { id: "S5.max", label: "latency, max", unit: "ms", runs: runs.map((run) => run.max) },
    {
      id: "S5.pipe",
      label: "latency to the handler's line read through a pipe by the enqueuing process, p50",
      unit: "ms",
      runs: runs.map((run) => run.pipeP50),
    },
    {
      id: "S5.idleCpu",
      label: `idle worker CPU over ${ctx.sizes.idleWindowMs / 1000} s, % of one core`,
      unit: "%",
      runs: runs.map((run) => run.idleCpuPercent),
      target: { op: "<", value: 2 },
    },
  ] satisfies Measured[];
};

/** R5: the same hand-off with no queue logic, as `handOff` does it; `how` says how, for the label. */
export const rawLatency = (handOff: HandOff, how: string): Scenario => async (ctx) => {
  const runs = await eachRun(ctx.sizes.runs, () => latencyRun(ctx, handOff));
  return [
    {
      id: "R5",
      label: `raw latency, ${what(ctx)}: ${how}, p50`,
      unit: "ms",
      runs: runs.map((run) => run.p50),
    },
    { id: "R5.p95", label: "raw latency, p95", unit: "ms", runs: runs.map((run) => run.p95) },
  ] satisfies Measured[];
};

/** How {@link SQLITE_RAW_HANDOFF} hands off, for R5's label. */
export const SQLITE_RAW_HOW = "a prepared INSERT, and a prepared claim UPDATE on each change of the " +
  `write-ahead log, ${chooseEngine().name}`;
