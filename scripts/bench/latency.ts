/**
 * S5: how soon an idle worker in another process starts a task that was just enqueued, and what the idle
 * worker costs in CPU while it waits. The worker is scripts/bench/latency_worker.ts, a library worker with
 * default options; it prints each task's number and the time its handler started.
 *
 * Both processes read the same system clock (`performance.timeOrigin + performance.now()`), so the latency
 * is the handler's start minus the moment before `enqueue` was called, without the time the line then
 * takes through the pipe to this process (about a millisecond here, reported on its own row). That the
 * clocks agree is checked on every task: each start must fall between its enqueue and its line's arrival.
 *
 * R5 times the same hand-off with no queue logic (scripts/bench/raw_latency_worker.ts and a prepared
 * INSERT), which is the floor this machine sets: every step starts on a processor that was idle.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { chooseEngine } from "../../src/store/sqlite/engines.ts";
import { Queue, QueueDatabase } from "../../mod.ts";
import { REPO } from "./binary.ts";
import { type BenchContext, eachRun, type Measured } from "./context.ts";
import {
  assertClean,
  clockTicksPerSecond,
  cpuTicks,
  delay,
  exitWithin,
  withChildren,
  within,
} from "./processes.ts";
import { createSchema, removeDb } from "./queue_files.ts";

const INSERT =
  "INSERT INTO task_queue (type, payload, priority, max_attempts, run_after, created_at, updated_at) " +
  "VALUES ('noop', ?, 100, 5, ?, ?, ?)";
/** Between one enqueue's return and the next enqueue. */
const SPACING_MS = 10;
/** How far apart two processes' readings of the system clock may be before the figures mean nothing. */
const CLOCK_TOLERANCE_MS = 0.1;

/** Milliseconds on the system clock, with a microsecond's resolution; the same in every process. */
function clockNow(): number {
  return performance.timeOrigin + performance.now();
}

/** How one side of the hand-off is done: PrismQ's, or the raw driver's with no queue logic. */
interface HandOff {
  /** The worker, a script in scripts/bench/ taking the file's path. */
  workerScript: string;
  /** Opens the enqueuing side on the file; `enqueue(i)` queues a `noop` task with payload `{ i }`. */
  openEnqueuer(path: string): { enqueue(i: number): Promise<unknown>; close(): void };
}

const PRISMQ: HandOff = {
  workerScript: "latency_worker.ts",
  openEnqueuer(path) {
    const db = new QueueDatabase(path);
    const queue = new Queue(db);
    return { enqueue: (i) => queue.enqueue("noop", { i }), close: () => db.close() };
  },
};

const RAW: HandOff = {
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

/** The Deno that runs this bench, or `npx deno` under another runtime. */
function denoCommand(script: string): [string, string[]] {
  const args = ["run", "-A", join(REPO, "scripts", "bench", script)];
  return "Deno" in globalThis ? [process.execPath, args] : ["npx", ["deno", ...args]];
}

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
  const path = ctx.newPath(handOff === RAW ? "r5" : "s5");
  await createSchema(path);
  try {
    return await withChildren(async (startChild) => {
      const arrived = new Map<number, Arrival>();
      let pid = 0;
      let ready!: () => void;
      let allArrived!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const haveAll = new Promise<void>((resolve) => (allArrived = resolve));
      const [command, args] = denoCommand(handOff.workerScript);
      const worker = startChild(command, [...args, path], {
        cwd: REPO,
        onLine(line) {
          const readAt = clockNow();
          if (line.startsWith("ready ")) {
            // The worker's own pid: under `npx deno`, the spawned process is npx.
            pid = Number(line.slice("ready ".length));
            ready();
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
      const enqueuer = handOff.openEnqueuer(path);
      try {
        for (let i = 0; i < tasks; i++) {
          sent.push(clockNow());
          await enqueuer.enqueue(i);
          await delay(SPACING_MS);
        }
        await within(Promise.race([haveAll, exitedEarly]), 30_000, `all ${tasks} tasks to start`);
      } finally {
        enqueuer.close();
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
    removeDb(path);
  }
}

const what = (ctx: BenchContext) =>
  `enqueue to handler start in another process (${ctx.sizes.latencyTasks} tasks, ${SPACING_MS} ms apart)`;

export async function latency(ctx: BenchContext): Promise<Measured[]> {
  const runs = await eachRun(ctx.sizes.runs, () => latencyRun(ctx, PRISMQ));
  return [
    {
      id: "S5",
      label: `latency, ${what(ctx)}, p50`,
      unit: "ms",
      runs: runs.map((run) => run.p50),
      target: { op: "<=", value: 1 },
      baselineIds: ["R5"],
    },
    {
      id: "S5.p95",
      label: "latency, p95",
      unit: "ms",
      runs: runs.map((run) => run.p95),
      target: { op: "<=", value: 5 },
      baselineIds: ["R5.p95"],
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
  ];
}

/** R5: the same hand-off with no queue logic: a raw insert, and a raw claim on each change of the log. */
export async function rawLatency(ctx: BenchContext): Promise<Measured[]> {
  const runs = await eachRun(ctx.sizes.runs, () => latencyRun(ctx, RAW));
  return [
    {
      id: "R5",
      label: `raw latency, ${what(ctx)}: a prepared INSERT, and a prepared claim UPDATE on each change of ` +
        `the write-ahead log, ${chooseEngine().name}, p50`,
      unit: "ms",
      runs: runs.map((run) => run.p50),
    },
    { id: "R5.p95", label: "raw latency, p95", unit: "ms", runs: runs.map((run) => run.p95) },
  ];
}
