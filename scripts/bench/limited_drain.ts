/**
 * S8: what a fleet-wide limit costs. One `prismq run --until-empty` drains the same no-op tasks twice per
 * round: from a queue without limits, and from the same queue with a concurrency limit (10,000) and a rate
 * limit (10,000,000 a second) far above what the worker can hold, so that the limits never hold it back and
 * what is measured is their price: every claim takes the limited path (on PostgreSQL, the queue's row
 * locked, its running tasks counted, the rate window written, in one transaction). The two alternate, so
 * that both meet the machine in the same state; the figure is the limited drain's share of the unlimited
 * one, run by run, with a target of 90 %.
 *
 * @module
 */
import { basename } from "node:path";
import { Queue, QueueDatabase } from "../../mod.ts";
import { type BenchContext, eachRun, type Measured, perSecond, type Scenario } from "./context.ts";
import { assertClean, type Child, exitWithin, withChildren } from "./processes.ts";
import { seedQueue } from "./queue_files.ts";
import type { DrainRun } from "./worker_process.ts";

/** A limit well above one worker's concurrency and claims ahead (4 + 512 by default). */
const CONCURRENCY_LIMIT = 10_000;
const RATE_LIMIT = { limit: 10_000_000, intervalMs: 1000 };

/** One drain of `tasks` no-op tasks by one worker, with the default queue limited or not. */
async function drain(ctx: BenchContext, tasks: number, limited: boolean): Promise<DrainRun> {
  const location = await ctx.db.create(limited ? "drain-limited" : "drain-free");
  try {
    await seedQueue(location, tasks);
    if (limited) {
      const db = new QueueDatabase(location);
      try {
        await new Queue(db).setQueueLimits("default", { concurrency: CONCURRENCY_LIMIT, rate: RATE_LIMIT });
      } finally {
        await db.close();
      }
    }
    await ctx.db.settle(location);
    const args = ["run", "--until-empty", "--db", location];
    await withChildren(async (startChild) => {
      const worker: Child = startChild(ctx.binary, args, { cwd: ctx.dir });
      const exit = await exitWithin(worker, 60_000 + 2 * tasks, "the worker");
      assertClean(exit, worker, `${basename(ctx.binary)} run (${limited ? "limited" : "unlimited"} queue)`);
    });
    const outcome = await ctx.db.outcome(location);
    return {
      tasksPerSecond: perSecond(outcome.completed, Math.max(outcome.windowMs, 1)),
      completed: outcome.completed,
      duplicates: outcome.duplicates,
      lost: outcome.lost + (tasks - outcome.tasks),
    };
  } finally {
    await ctx.db.remove(location);
  }
}

/** S8: a limited drain beside an unlimited one, in each round. */
export const limitedDrain: Scenario = async (ctx) => {
  const tasks = ctx.sizes.drain;
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const free = await drain(ctx, tasks, false);
    const limited = await drain(ctx, tasks, true);
    return { free, limited };
  });
  for (const [n, { free, limited }] of runs.entries()) {
    for (const run of [free, limited]) {
      if (run.completed !== tasks || run.duplicates !== 0 || run.lost !== 0) {
        ctx.fail(`S8 run ${n + 1}: ${run.completed} of ${tasks} completed, ${run.duplicates} duplicates`);
      }
    }
  }
  const label = `drain, 1 process: ${tasks.toLocaleString("en")} no-op tasks`;
  return [
    {
      id: "S8",
      label: `${label} from a queue with limits above the worker's reach (concurrency ${
        CONCURRENCY_LIMIT.toLocaleString("en")
      }, rate 10M/s)`,
      unit: "tasks/s",
      runs: runs.map(({ limited }) => limited.tasksPerSecond),
      details: { tasks },
    },
    {
      id: "S8.free",
      label: `${label} from the same queue without limits, in the same rounds`,
      unit: "tasks/s",
      runs: runs.map(({ free }) => free.tasksPerSecond),
    },
    {
      id: "S8.share",
      label: "the limited drain as a share of the unlimited one, round by round",
      unit: "%",
      runs: runs.map(({ free, limited }) => 100 * limited.tasksPerSecond / free.tasksPerSecond),
      target: { op: ">=", value: 90 },
    },
  ] satisfies Measured[];
};
