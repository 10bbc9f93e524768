/**
 * Scenarios that run the compiled `prismq run` as worker processes: S3 and S4 drain a queue with one and
 * several processes (two on a SQLite file, four on PostgreSQL), S6 watches one's memory through a long
 * drain, S7 times its start to the first claim. The raw drains of PostgreSQL (R3, R4) run through the same
 * {@link drainRun} with a worker of their own.
 *
 * @module
 */
import { basename } from "node:path";
import { type BenchContext, eachRun, type Goal, type Measured, perSecond, type Scenario } from "./context.ts";
import { assertClean, type Child, exitWithin, residentKiB, withChildren, within } from "./processes.ts";
import { MemoryWindows } from "./memory_windows.ts";
import { seedQueue } from "./queue_files.ts";

/** Long enough for a slow drain, short enough that a worker that never exits fails the scenario. */
function drainTimeoutMs(tasks: number): number {
  return 60_000 + 2 * tasks;
}

export interface DrainRun {
  tasksPerSecond: number;
  completed: number;
  duplicates: number;
  lost: number;
}

/** A drain's worker process: the command and its arguments for a database location. */
export type DrainCommand = (location: string) => [string, string[]];

/** `prismq run --until-empty` with default settings. */
const prismqRun = (ctx: BenchContext): DrainCommand => (location) => [
  ctx.binary,
  ["run", "--until-empty", "--db", location],
];

/**
 * Starts `processes` workers on a queue of `tasks` no-op tasks, all at once, waits for them to exit, and
 * measures from the database: the first claim to the last completion.
 */
export async function drainRun(
  ctx: BenchContext,
  processes: number,
  tasks: number,
  command: DrainCommand = prismqRun(ctx),
): Promise<DrainRun> {
  const location = await ctx.db.create(`drain-${processes}`);
  try {
    await seedQueue(location, tasks);
    await ctx.db.settle(location);
    const [program, args] = command(location);
    await withChildren(async (startChild) => {
      const workers: Child[] = [];
      for (let n = 0; n < processes; n++) workers.push(startChild(program, args, { cwd: ctx.dir }));
      for (const [n, worker] of workers.entries()) {
        const exit = await exitWithin(worker, drainTimeoutMs(tasks), `worker ${n + 1}`);
        assertClean(exit, worker, `${basename(program)} ${args[0]} (worker ${n + 1} of ${processes})`);
      }
    });
    const outcome = await ctx.db.outcome(location);
    return {
      // The times are whole milliseconds: a window shorter than one reads as 0.
      tasksPerSecond: perSecond(outcome.completed, Math.max(outcome.windowMs, 1)),
      completed: outcome.completed,
      duplicates: outcome.duplicates,
      lost: outcome.lost + (tasks - outcome.tasks),
    };
  } finally {
    await ctx.db.remove(location);
  }
}

/** Records a failure for every run that lost a task or ran one twice. */
export function checkDrains(ctx: BenchContext, id: string, runs: DrainRun[]): void {
  for (const [n, run] of runs.entries()) {
    if (run.duplicates !== 0 || run.lost !== 0) {
      ctx.fail(`${id} run ${n + 1}: ${run.duplicates} duplicate executions, ${run.lost} tasks not completed`);
    }
  }
}

const PROCESSES = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight"];

/** "two processes", or "12 processes". */
export function processesInWords(n: number): string {
  return `${PROCESSES[n] ?? n} process${n === 1 ? "" : "es"}`;
}

/** S3: one `prismq run --until-empty`. */
export const drainOneProcess = (goal: Goal): Scenario => async (ctx) => {
  const tasks = ctx.sizes.drain;
  const runs = await eachRun(ctx.sizes.runs, () => drainRun(ctx, 1, tasks));
  for (const [n, run] of runs.entries()) {
    if (run.completed !== tasks) ctx.fail(`S3 run ${n + 1}: ${run.completed} of ${tasks} tasks completed`);
  }
  return [{
    id: "S3",
    label: `drain, 1 process: ${tasks.toLocaleString("en")} no-op tasks, \`prismq run --until-empty\``,
    unit: "tasks/s",
    runs: runs.map((run) => run.tasksPerSecond),
    ...goal,
    details: { tasks, completed: runs.map((run) => run.completed) },
  }] satisfies Measured[];
};

/** S4: `processes` of `prismq run --until-empty` on one database, started together. */
export const drainProcesses = (processes: number, goal: Goal): Scenario => async (ctx) => {
  const tasks = ctx.sizes.drain;
  const runs = await eachRun(ctx.sizes.runs, () => drainRun(ctx, processes, tasks));
  checkDrains(ctx, "S4", runs);
  const words = processesInWords(processes);
  return [
    {
      id: "S4",
      label: `drain, ${words} on one database: ${tasks.toLocaleString("en")} no-op tasks, together`,
      unit: "tasks/s",
      runs: runs.map((run) => run.tasksPerSecond),
      ...goal,
      requires: ["S4.duplicates", "S4.losses"],
      details: { tasks, completed: runs.map((run) => run.completed) },
    },
    {
      id: "S4.duplicates",
      label: `drain, ${words}: duplicate executions`,
      unit: "tasks",
      runs: runs.map((run) => run.duplicates),
      target: { op: "=", value: 0 },
    },
    {
      id: "S4.losses",
      label: `drain, ${words}: tasks not completed`,
      unit: "tasks",
      runs: runs.map((run) => run.lost),
      target: { op: "=", value: 0 },
    },
  ] satisfies Measured[];
};

/**
 * S6: one worker drains a long queue with `--json`; its resident memory is read every few completions it
 * reports over a window from `memoryFirst` on, and again over the last window, up to the last completion
 * (see memory_windows.ts for why not once at each end). The growth is the difference of the windows'
 * medians. The worker runs without --until-empty, so that it is still there to be measured at the end;
 * SIGTERM then stops it.
 */
export async function drainMemory(ctx: BenchContext): Promise<Measured[]> {
  const { memoryFirst: first, memoryTotal: total, memoryWindow: window } = ctx.sizes;
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const readings = new MemoryWindows(first, total, window);
    const location = await ctx.db.create("s6");
    try {
      await seedQueue(location, total);
      await ctx.db.settle(location);
      return await withChildren(async (startChild) => {
        let completed = 0;
        let allReported!: () => void;
        const reported = new Promise<void>((resolve) => (allReported = resolve));
        const worker = startChild(ctx.binary, ["run", "--json", "--db", location], {
          cwd: ctx.dir,
          onLine(line) {
            // A substring test, not JSON.parse: the bench must read faster than the worker writes, or the
            // worker's unwritten output would count as its memory. The reporter writes JSON.stringify
            // output, so the event is spelt exactly so.
            if (!line.includes('"event":"completed"')) return;
            completed++;
            // The worker writes its events in groups: a reading is of the process at or just after it.
            if (readings.wants(completed)) readings.record(completed, residentKiB(worker.pid));
            if (completed === total) allReported();
          },
        });
        const exitedEarly = worker.done.then((exit) => {
          throw new Error(`the S6 worker exited early (code ${exit.code}): ${worker.stderr()}`);
        });
        exitedEarly.catch(() => {}); // Only an exit before the end matters; a later one is the SIGTERM.
        await within(
          Promise.race([reported, exitedEarly]),
          drainTimeoutMs(total),
          "the S6 worker's completions",
        );
        worker.signal("SIGTERM");
        const exit = await exitWithin(worker, 30_000, "the S6 worker after SIGTERM");
        assertClean(exit, worker, "prismq run --json");
        return readings.medians();
      });
    } finally {
      await ctx.db.remove(location);
    }
  });
  const at = (n: number) => n.toLocaleString("en");
  return [
    {
      id: "S6",
      label: `memory: RSS growth of one worker from ${at(first)} to ${at(total)} completed tasks ` +
        `(medians over ${at(window)} tasks at each end)`,
      unit: "MiB",
      runs: runs.map((run) => run.end - run.first),
      target: { op: "<", value: 20 },
    },
    {
      id: "S6.rssFirst",
      label: `memory: worker RSS from ${at(first)} to ${at(first + window)} completed, median`,
      unit: "MiB",
      runs: runs.map((run) => run.first),
      details: { from: first, to: first + window },
    },
    {
      id: "S6.rssEnd",
      label: `memory: worker RSS from ${at(total - window)} to ${at(total)} completed, median`,
      unit: "MiB",
      runs: runs.map((run) => run.end),
      details: { from: total - window, to: total },
    },
  ];
}

/** S7: from spawning `prismq run --json` on a queue holding one task to its first "claimed" event. */
export async function startToFirstClaim(ctx: BenchContext): Promise<Measured[]> {
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const location = await ctx.db.create("s7");
    try {
      await seedQueue(location, 1);
      return await withChildren(async (startChild) => {
        let claimedAt = 0;
        let claimed!: () => void;
        const firstClaim = new Promise<void>((resolve) => (claimed = resolve));
        const worker = startChild(ctx.binary, ["run", "--json", "--db", location], {
          cwd: ctx.dir,
          onLine(line) {
            if (claimedAt !== 0 || !line.startsWith("{")) return;
            if ((JSON.parse(line) as { event?: string }).event !== "claimed") return;
            claimedAt = performance.now();
            claimed();
          },
        });
        await within(Promise.race([firstClaim, worker.done]), 30_000, "the first claim");
        if (claimedAt === 0) {
          assertClean(await worker.done, worker, "prismq run");
          throw new Error("prismq run exited without claiming the task");
        }
        worker.signal("SIGTERM");
        const exit = await exitWithin(worker, 30_000, "prismq run after SIGTERM");
        assertClean(exit, worker, "prismq run after SIGTERM");
        return claimedAt - worker.startedAt;
      });
    } finally {
      await ctx.db.remove(location);
    }
  });
  return [{
    id: "S7",
    label: "start: spawning `prismq run` to its first claim",
    unit: "ms",
    runs,
    target: { op: "<=", value: 150 },
  }];
}
