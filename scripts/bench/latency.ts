/**
 * S5: how soon an idle worker in another process starts a task that was just enqueued, and what the idle
 * worker costs in CPU while it waits. The worker is scripts/bench/latency_worker.ts, a library worker with
 * default options; it prints each task's number when its handler starts.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
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

const WORKER_SCRIPT = join(REPO, "scripts", "bench", "latency_worker.ts");
/** Between one enqueue's return and the next enqueue. */
const SPACING_MS = 10;

/** The Deno that runs this bench, or `npx deno` under another runtime. */
function denoCommand(): [string, string[]] {
  const args = ["run", "-A", WORKER_SCRIPT];
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
  idleCpuPercent: number;
}

async function latencyRun(ctx: BenchContext): Promise<LatencyRun> {
  const { latencyTasks: tasks, idleSettleMs, idleWindowMs } = ctx.sizes;
  const path = ctx.newPath("s5");
  await createSchema(path);
  try {
    return await withChildren(async (startChild) => {
      /** performance.now() when the worker's line for task i was read. */
      const arrived = new Map<number, number>();
      let pid = 0;
      let ready!: () => void;
      let allArrived!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const haveAll = new Promise<void>((resolve) => (allArrived = resolve));
      const [command, args] = denoCommand();
      const worker = startChild(command, [...args, path], {
        cwd: REPO,
        onLine(line) {
          const now = performance.now();
          if (line.startsWith("ready ")) {
            // The worker's own pid: under `npx deno`, the spawned process is npx.
            pid = Number(line.slice("ready ".length));
            ready();
          } else if (/^\d+$/.test(line) && !arrived.has(Number(line))) {
            arrived.set(Number(line), now);
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
      const db = new QueueDatabase(path);
      try {
        const queue = new Queue(db);
        for (let i = 0; i < tasks; i++) {
          sent.push(performance.now());
          await queue.enqueue("noop", { i });
          await delay(SPACING_MS);
        }
        await within(Promise.race([haveAll, exitedEarly]), 30_000, `all ${tasks} tasks to start`);
      } finally {
        db.close();
      }
      process.kill(pid, "SIGTERM");
      const exit = await exitWithin(worker, 30_000, "the latency worker after SIGTERM");
      assertClean(exit, worker, "the latency worker after SIGTERM");

      const latencies = sent.map((at, i) => arrived.get(i)! - at).sort((a, b) => a - b);
      return {
        p50: percentile(latencies, 0.5),
        p95: percentile(latencies, 0.95),
        max: latencies.at(-1)!,
        idleCpuPercent,
      };
    });
  } finally {
    removeDb(path);
  }
}

export async function latency(ctx: BenchContext): Promise<Measured[]> {
  const runs = await eachRun(ctx.sizes.runs, () => latencyRun(ctx));
  const what = `latency, enqueue to handler start in another process (${ctx.sizes.latencyTasks} tasks, ` +
    `${SPACING_MS} ms apart, read through a pipe)`;
  return [
    {
      id: "S5",
      label: `${what}, p50`,
      unit: "ms",
      runs: runs.map((run) => run.p50),
      target: { op: "<=", value: 1 },
    },
    {
      id: "S5.p95",
      label: "latency, p95",
      unit: "ms",
      runs: runs.map((run) => run.p95),
      target: { op: "<=", value: 5 },
    },
    { id: "S5.max", label: "latency, max", unit: "ms", runs: runs.map((run) => run.max) },
    {
      id: "S5.idleCpu",
      label: `idle worker CPU over ${ctx.sizes.idleWindowMs / 1000} s, % of one core`,
      unit: "%",
      runs: runs.map((run) => run.idleCpuPercent),
      target: { op: "<", value: 2 },
    },
  ];
}
