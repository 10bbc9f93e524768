/**
 * Scenarios that run the compiled `prismq run` as worker processes: S3 and S4 drain a queue with one and
 * two processes, S6 watches one's memory through a long drain, S7 times its start to the first claim.
 *
 * @module
 */
import { type BenchContext, eachRun, type Measured, perSecond } from "./context.ts";
import { assertClean, type Child, exitWithin, residentKiB, withChildren, within } from "./processes.ts";
import { drainOutcome, removeDb, seedQueue } from "./queue_files.ts";

/** Long enough for a slow drain, short enough that a worker that never exits fails the scenario. */
function drainTimeoutMs(tasks: number): number {
  return 60_000 + 2 * tasks;
}

interface DrainRun {
  tasksPerSecond: number;
  completed: number;
  duplicates: number;
  lost: number;
}

/**
 * Starts `processes` workers with default settings on a queue of `tasks` no-op tasks, waits for them to exit,
 * and measures from the database: the first claim to the last completion.
 */
async function drainRun(ctx: BenchContext, processes: number, tasks: number): Promise<DrainRun> {
  const path = ctx.newPath(`drain-${processes}`);
  try {
    await seedQueue(path, tasks);
    await withChildren(async (startChild) => {
      const workers: Child[] = [];
      for (let n = 0; n < processes; n++) {
        workers.push(startChild(ctx.binary, ["run", "--until-empty", "--db", path], { cwd: ctx.dir }));
      }
      for (const [n, worker] of workers.entries()) {
        const exit = await exitWithin(worker, drainTimeoutMs(tasks), `worker ${n + 1}`);
        assertClean(exit, worker, `prismq run (worker ${n + 1} of ${processes})`);
      }
    });
    const outcome = drainOutcome(path);
    return {
      // The times are whole milliseconds: a window shorter than one reads as 0.
      tasksPerSecond: perSecond(outcome.completed, Math.max(outcome.windowMs, 1)),
      completed: outcome.completed,
      duplicates: outcome.duplicates,
      lost: outcome.lost + (tasks - outcome.tasks),
    };
  } finally {
    removeDb(path);
  }
}

export async function drainOneProcess(ctx: BenchContext): Promise<Measured[]> {
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
    target: { op: ">=", value: 30_000 },
    baselineIds: ["R3", "R3'"],
    details: { tasks, completed: runs.map((run) => run.completed) },
  }];
}

export async function drainTwoProcesses(ctx: BenchContext): Promise<Measured[]> {
  const tasks = ctx.sizes.drain;
  const runs = await eachRun(ctx.sizes.runs, () => drainRun(ctx, 2, tasks));
  for (const [n, run] of runs.entries()) {
    if (run.duplicates !== 0 || run.lost !== 0) {
      ctx.fail(`S4 run ${n + 1}: ${run.duplicates} duplicate executions, ${run.lost} tasks not completed`);
    }
  }
  return [
    {
      id: "S4",
      label: `drain, 2 processes on one file: ${tasks.toLocaleString("en")} no-op tasks, together`,
      unit: "tasks/s",
      runs: runs.map((run) => run.tasksPerSecond),
      target: { op: ">=", value: 30_000 },
      baselineIds: ["R3", "R3'"],
      requires: ["S4.duplicates", "S4.losses"],
      details: { tasks, completed: runs.map((run) => run.completed) },
    },
    {
      id: "S4.duplicates",
      label: "drain, 2 processes: duplicate executions",
      unit: "tasks",
      runs: runs.map((run) => run.duplicates),
      target: { op: "=", value: 0 },
    },
    {
      id: "S4.losses",
      label: "drain, 2 processes: tasks not completed",
      unit: "tasks",
      runs: runs.map((run) => run.lost),
      target: { op: "=", value: 0 },
    },
  ];
}

/**
 * S6: one worker drains a long queue with `--json`; its resident memory is read when the completions it
 * reports reach `memoryFirst`, and again once all are reported. The worker runs without --until-empty,
 * so that it is still there to be measured at the end; SIGTERM then stops it.
 */
export async function drainMemory(ctx: BenchContext): Promise<Measured[]> {
  const { memoryFirst: first, memoryTotal: total } = ctx.sizes;
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const path = ctx.newPath("s6");
    try {
      await seedQueue(path, total);
      return await withChildren(async (startChild) => {
        let completed = 0;
        let atFirst: number | undefined;
        let atEnd: number | undefined;
        let allReported!: () => void;
        const reported = new Promise<void>((resolve) => (allReported = resolve));
        const worker = startChild(ctx.binary, ["run", "--json", "--db", path], {
          cwd: ctx.dir,
          onLine(line) {
            // A substring test, not JSON.parse: the bench must read faster than the worker writes, or the
            // worker's unwritten output would count as its memory. The reporter writes JSON.stringify
            // output, so the event is spelt exactly so.
            if (!line.includes('"event":"completed"')) return;
            completed++;
            // The worker writes its events in groups, so the first sample lands at or just after `first`.
            if (completed >= first && atFirst === undefined) atFirst = residentKiB(worker.pid);
            if (completed === total) {
              atEnd = residentKiB(worker.pid);
              allReported();
            }
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
        if (atFirst === undefined || atEnd === undefined) {
          throw new Error("the worker's memory was not sampled");
        }
        return { first: atFirst / 1024, end: atEnd / 1024 };
      });
    } finally {
      removeDb(path);
    }
  });
  const at = (n: number) => n.toLocaleString("en");
  return [
    {
      id: "S6",
      label: `memory: RSS growth of one worker from ${at(first)} to ${at(total)} completed tasks`,
      unit: "MiB",
      runs: runs.map((run) => run.end - run.first),
      target: { op: "<", value: 20 },
    },
    {
      id: "S6.rssFirst",
      label: `memory: worker RSS at ${at(first)} completed`,
      unit: "MiB",
      runs: runs.map((run) => run.first),
      details: { completed: first },
    },
    {
      id: "S6.rssEnd",
      label: `memory: worker RSS at ${at(total)} completed`,
      unit: "MiB",
      runs: runs.map((run) => run.end),
      details: { completed: total },
    },
  ];
}

/** S7: from spawning `prismq run --json` on a queue holding one task to its first "claimed" event. */
export async function startToFirstClaim(ctx: BenchContext): Promise<Measured[]> {
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const path = ctx.newPath("s7");
    try {
      await seedQueue(path, 1);
      return await withChildren(async (startChild) => {
        let claimedAt = 0;
        let claimed!: () => void;
        const firstClaim = new Promise<void>((resolve) => (claimed = resolve));
        const worker = startChild(ctx.binary, ["run", "--json", "--db", path], {
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
      removeDb(path);
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
